package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Errors of encrypted key files.
var (
	// ErrPasswordRequired: the key is encrypted and no password was given.
	ErrPasswordRequired = errors.New("encrypted private key needs a password (password-file= or password-env= in the key URI)")
	// ErrWrongPassword: decryption failed. The password is wrong or the
	// encrypted key is corrupted; the two cannot be told apart.
	ErrWrongPassword = errors.New("cannot decrypt private key: wrong password or corrupted key")
)

// PEM block types of private keys.
const (
	pemPKCS8          = "PRIVATE KEY"
	pemSEC1           = "EC PRIVATE KEY"
	pemEncryptedPKCS8 = "ENCRYPTED PRIVATE KEY"
	pemSigstore       = "ENCRYPTED SIGSTORE PRIVATE KEY" // cosign ≥ 2
	pemCosign         = "ENCRYPTED COSIGN PRIVATE KEY"   // older cosign
	pemPublicKey      = "PUBLIC KEY"
)

// ParsePrivateKeyPEM parses the one private key in a PEM file. Supported
// blocks: "PRIVATE KEY" (PKCS#8), "EC PRIVATE KEY" (SEC1), "ENCRYPTED
// PRIVATE KEY" (PKCS#8 PBES2 with AES-CBC), and cosign's "ENCRYPTED
// SIGSTORE PRIVATE KEY" / "ENCRYPTED COSIGN PRIVATE KEY" (scrypt and
// secretbox around PKCS#8). Keys must be ECDSA P-256, P-384 or Ed25519.
//
// password is needed only for encrypted blocks: nil means none was given
// (ErrPasswordRequired); an empty non-nil slice is the empty password, which
// cosign allows. Other PEM blocks (public keys, certificates, EC
// parameters) and text around the blocks are ignored, but more than one
// private key block is refused. Legacy OpenSSL encryption (Proc-Type:
// 4,ENCRYPTED) is refused as insecure.
//
// The result is an *ecdsa.PrivateKey or an ed25519.PrivateKey. Errors never
// contain the password or key bytes. data is not modified.
func ParsePrivateKeyPEM(data []byte, password []byte) (crypto.Signer, error) {
	block, err := privateKeyBlock(data)
	if err != nil {
		return nil, err
	}
	defer clear(block.Bytes)
	if isLegacyEncrypted(block) {
		return nil, fmt.Errorf("%w: legacy PEM encryption (Proc-Type: 4,ENCRYPTED) is deprecated and insecure; "+
			"convert the key to encrypted PKCS#8 (openssl pkcs8 -topk8 -v2 aes-256-cbc)", ErrUnsupportedKey)
	}
	var key any
	switch block.Type {
	case pemPKCS8:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case pemSEC1:
		key, err = x509.ParseECPrivateKey(block.Bytes)
	case pemEncryptedPKCS8:
		key, err = decryptPKCS8(block.Bytes, password)
	case pemSigstore, pemCosign:
		key, err = decryptSigstore(block.Bytes, password)
	default:
		return nil, fmt.Errorf("%w: PEM block %q", ErrUnsupportedKey, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	return supportedSigner(key)
}

// privateKeyBlock returns the single private key block in data.
func privateKeyBlock(data []byte) (*pem.Block, error) {
	var found *pem.Block
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if !strings.HasSuffix(b.Type, "PRIVATE KEY") {
			continue
		}
		n++
		if found == nil {
			found = b
		} else {
			clear(b.Bytes)
		}
	}
	switch {
	case n == 0:
		return nil, errors.New("no PEM private key block found")
	case n > 1:
		clear(found.Bytes)
		return nil, fmt.Errorf("%d PEM private key blocks found, want exactly one", n)
	}
	return found, nil
}

// isLegacyEncrypted reports RFC 1421 encryption (OpenSSL's traditional
// "Proc-Type: 4,ENCRYPTED" / "DEK-Info" headers).
func isLegacyEncrypted(b *pem.Block) bool {
	_, dek := b.Headers["DEK-Info"]
	return dek || strings.Contains(strings.ToUpper(b.Headers["Proc-Type"]), "ENCRYPTED")
}

// supportedSigner returns key as a crypto.Signer if its algorithm is one
// the agent signs with.
func supportedSigner(key any) (crypto.Signer, error) {
	var s crypto.Signer
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		s = k
	case ed25519.PrivateKey:
		s = k
	default:
		return nil, fmt.Errorf("%w: %T", ErrUnsupportedKey, key)
	}
	if _, _, err := Algorithm(s.Public()); err != nil {
		return nil, err
	}
	return s, nil
}

// MarshalPrivateKeyPEM encodes an *ecdsa.PrivateKey (P-256, P-384) or an
// ed25519.PrivateKey as an unencrypted PKCS#8 "PRIVATE KEY" PEM block. A
// Key opened from a backend cannot be exported.
func MarshalPrivateKeyPEM(priv crypto.Signer) ([]byte, error) {
	if _, err := supportedSigner(priv); err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: pemPKCS8, Bytes: der}), nil
}

// MarshalPublicKeyPEM encodes pub as a PKIX "PUBLIC KEY" PEM block (the
// format of cosign's .pub files).
func MarshalPublicKeyPEM(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("marshal public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemPublicKey, Bytes: der}), nil
}

// ErrNoPublicKey is returned by ParsePublicKeysPEM for data without a
// public key block.
var ErrNoPublicKey = errors.New("no PEM public key block")

// ParsePublicKeysPEM parses the public keys of a trust-root PEM file, in
// order: "PUBLIC KEY" (PKIX), "RSA PUBLIC KEY" (PKCS#1) and the subject key
// of "CERTIFICATE" blocks. Other blocks and text around them are ignored,
// but a private key block is refused: trust roots hold public keys only.
// Callers check the key types they accept.
func ParsePublicKeysPEM(data []byte) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var pub crypto.PublicKey
		var err error
		switch {
		case b.Type == pemPublicKey:
			pub, err = x509.ParsePKIXPublicKey(b.Bytes)
		case b.Type == "RSA PUBLIC KEY":
			pub, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case b.Type == "CERTIFICATE":
			var cert *x509.Certificate
			if cert, err = x509.ParseCertificate(b.Bytes); err == nil {
				pub = cert.PublicKey
			}
		case strings.Contains(b.Type, "PRIVATE KEY"):
			return nil, fmt.Errorf("a %q block: trust roots must hold public keys only", b.Type)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%q block: %w", b.Type, err)
		}
		out = append(out, pub)
	}
	if len(out) == 0 {
		return nil, ErrNoPublicKey
	}
	return out, nil
}
