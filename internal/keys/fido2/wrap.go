package fido2

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/stellaops/signer-agent/internal/keys"
)

// ErrUnlock: no wrap in the file could be opened with the authenticator.
var ErrUnlock = errors.New("fido2: unlock failed")

// lp appends b to dst with a 4-byte big-endian length prefix.
func lp(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

// wrapKey derives the AES-256 key of one wrap:
// HKDF-SHA-256(ikm = hmac-secret output, salt = the wrap's salt,
// info = "signer-agent fido2 wrap v1" || len(rpId) || rpId || len(credId) || credId).
func wrapKey(secret []byte, rpID string, w *Wrap) ([]byte, error) {
	if len(secret) != hmacSecretSize {
		return nil, fmt.Errorf("hmac-secret output is %d bytes, want %d", len(secret), hmacSecretSize)
	}
	info := lp(lp([]byte(wrapContextInfo), []byte(rpID)), w.CredentialID)
	return hkdf.Key(sha256.New, secret, w.Salt, string(info), wrapKeySize)
}

// additionalData binds a wrap to the file's header: everything but the
// wraps themselves (the credential id is bound through the HKDF info).
func additionalData(f *File) []byte {
	var flags byte
	if f.Policy.UP {
		flags |= 1
	}
	if f.Policy.UV {
		flags |= 2
	}
	if f.Policy.PINRequired {
		flags |= 4
	}
	ad := lp(nil, []byte(wrapContextInfo))
	ad = binary.BigEndian.AppendUint32(ad, uint32(f.Version))
	ad = lp(ad, []byte(f.RPID))
	ad = lp(ad, []byte(f.Algorithm))
	ad = lp(ad, f.PublicKey)
	return append(ad, flags)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// seal asks auth for the hmac-secret of a new salt for credID and returns
// the wrap of pkcs8 under it.
func seal(auth Authenticator, f *File, credID, pkcs8 []byte, pin string) (*Wrap, error) {
	w := &Wrap{CredentialID: credID, Salt: make([]byte, saltSize), Nonce: make([]byte, nonceSize)}
	if _, err := rand.Read(w.Salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(w.Nonce); err != nil {
		return nil, err
	}
	if !f.Policy.passPIN() {
		pin = ""
	}
	secret, err := auth.HMACSecret(f.RPID, credID, w.Salt, pin, f.Policy.UP, f.Policy.UV)
	if err != nil {
		return nil, fmt.Errorf("fido2: hmac-secret assertion: %w", err)
	}
	defer clear(secret)
	key, err := wrapKey(secret, f.RPID, w)
	if err != nil {
		return nil, fmt.Errorf("fido2: %w", err)
	}
	defer clear(key)
	aead, err := newGCM(key)
	if err != nil {
		return nil, fmt.Errorf("fido2: %w", err)
	}
	w.Ciphertext = aead.Seal(nil, w.Nonce, pkcs8, additionalData(f))
	if l, ok := auth.(Labeler); ok {
		w.Label = truncate(l.Label(), maxLabelLen)
	}
	return w, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// open tries each wrap of f with auth and returns the private key of the
// first that opens and matches the file's public key. Errors name the
// wraps and the authenticator's answers, never key material.
func open(auth Authenticator, f *File, pin string) (*ecdsa.PrivateKey, error) {
	pub, err := f.validate()
	if err != nil {
		return nil, err
	}
	if f.Policy.PINRequired && pin == "" {
		return nil, fmt.Errorf("%w: %w", ErrUnlock, ErrPINRequired)
	}
	if !f.Policy.passPIN() {
		pin = ""
	}
	var errs []error
	for i := range f.Wraps {
		w := &f.Wraps[i]
		priv, err := openWrap(auth, f, w, pub, pin)
		if err == nil {
			return priv, nil
		}
		name := fmt.Sprintf("wrap %d", i)
		if w.Label != "" {
			name = fmt.Sprintf("wrap %d (%s)", i, w.Label)
		}
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return nil, fmt.Errorf("%w: %w", ErrUnlock, errors.Join(errs...))
}

var errNoOpen = errors.New("wrap does not decrypt (a different authenticator, or a modified file)")

func openWrap(auth Authenticator, f *File, w *Wrap, pub *ecdsa.PublicKey, pin string) (*ecdsa.PrivateKey, error) {
	secret, err := auth.HMACSecret(f.RPID, w.CredentialID, w.Salt, pin, f.Policy.UP, f.Policy.UV)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	key, err := wrapKey(secret, f.RPID, w)
	if err != nil {
		return nil, err
	}
	defer clear(key)
	aead, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, w.Nonce, w.Ciphertext, additionalData(f))
	if err != nil {
		return nil, errNoOpen
	}
	defer clear(plain)
	k, err := x509.ParsePKCS8PrivateKey(plain)
	if err != nil {
		return nil, errors.New("wrapped key does not parse")
	}
	priv, ok := k.(*ecdsa.PrivateKey)
	if !ok || priv.Curve != elliptic.P256() {
		zeroKey(k)
		return nil, errors.New("wrapped key is not ECDSA P-256")
	}
	if !priv.PublicKey.Equal(pub) {
		zeroKey(priv)
		return nil, errors.New("wrapped key does not match the file's public key")
	}
	return priv, nil
}

// zeroKey overwrites an ECDSA private scalar in place.
func zeroKey(k any) {
	if p, ok := k.(*ecdsa.PrivateKey); ok && p != nil && p.D != nil {
		clear(p.D.Bits())
		p.D.SetInt64(0)
	}
}

// Enroll creates a P-256 key wrapped by auth and writes it to path (mode
// 0600; path must not exist). It makes a credential for rpID (the PIN, if
// the authenticator has one, is needed for that whatever the policy), then
// runs one assertion to get the hmac-secret: a real authenticator asks for
// two touches. It returns the public key.
func Enroll(auth Authenticator, path, rpID string, policy Policy, pin string) (crypto.PublicKey, error) {
	if rpID == "" || len(rpID) > maxRPIDLen {
		return nil, fmt.Errorf("fido2: rpID must be 1 to %d bytes", maxRPIDLen)
	}
	if policy.PINRequired && pin == "" {
		return nil, fmt.Errorf("fido2: enrol: %w (the policy requires one)", ErrPINRequired)
	}
	userID := make([]byte, userIDSize)
	if _, err := rand.Read(userID); err != nil {
		return nil, err
	}
	credID, err := auth.MakeCredential(rpID, userID, pin, policy.UV)
	if err != nil {
		return nil, fmt.Errorf("fido2: make credential: %w", err)
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	defer zeroKey(priv)
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	defer clear(pkcs8)
	pubDER, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	f := &File{Version: FileVersion, RPID: rpID, Algorithm: keys.AlgECDSAP256, PublicKey: pubDER, Policy: policy}
	w, err := seal(auth, f, credID, pkcs8, pin)
	if err != nil {
		return nil, err
	}
	f.Wraps = []Wrap{*w}
	if err := writeFile(path, f, false); err != nil {
		return nil, err
	}
	pub := priv.PublicKey
	return &pub, nil
}

// AddAuthenticator unwraps the key in path with existing and adds a wrap
// for added (a new credential on it), rewriting the file atomically. The
// same PIN is given to both; see AddAuthenticatorPINs.
func AddAuthenticator(path string, existing, added Authenticator, pin string) error {
	return AddAuthenticatorPINs(path, existing, pin, added, pin)
}

// AddAuthenticatorPINs is AddAuthenticator for authenticators with
// different PINs. Concurrent changes to the same file are not detected:
// the last writer wins.
func AddAuthenticatorPINs(path string, existing Authenticator, existingPIN string, added Authenticator, addedPIN string) error {
	f, err := ReadFile(path)
	if err != nil {
		return err
	}
	if len(f.Wraps) >= maxWraps {
		return fmt.Errorf("fido2: %s already has %d wraps", path, len(f.Wraps))
	}
	priv, err := open(existing, f, existingPIN)
	if err != nil {
		return err
	}
	defer zeroKey(priv)
	if f.Policy.PINRequired && addedPIN == "" {
		return fmt.Errorf("fido2: new authenticator: %w (the policy requires one)", ErrPINRequired)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return err
	}
	defer clear(pkcs8)
	userID := make([]byte, userIDSize)
	if _, err := rand.Read(userID); err != nil {
		return err
	}
	credID, err := added.MakeCredential(f.RPID, userID, addedPIN, f.Policy.UV)
	if err != nil {
		return fmt.Errorf("fido2: new authenticator: make credential: %w", err)
	}
	for _, w := range f.Wraps {
		if bytes.Equal(w.CredentialID, credID) {
			return errors.New("fido2: new authenticator returned a credential id already in the file")
		}
	}
	w, err := seal(added, f, credID, pkcs8, addedPIN)
	if err != nil {
		return fmt.Errorf("fido2: new authenticator: %w", err)
	}
	f.Wraps = append(f.Wraps, *w)
	return writeFile(path, f, true)
}
