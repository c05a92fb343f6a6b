// Package keys opens signing keys named by URI. Every backend ends as a Key:
// a crypto.Signer that can be closed. One backend per URI scheme:
//
//	file:/path/key.pem[?password-file=/path|password-env=NAME]
//	memory:NAME[?alg=ecdsa-p256-sha256|ecdsa-p384-sha256|ed25519]
//	              (an in-process key generated at start; dev mode and tests)
//
//	pkcs11:token=…;object=…?module-path=…&pin-source=file:…   (package keys/pkcs11)
//	tpm:/path/key.blob[?sim=host:port|device=…]             (package keys/tpm)
//	fido2:/path/key.json[?ttl=…]                            (package keys/fido2)
//	awskms://…, gcpkms://…, azurekms://…, hashivault://…    (package keys/kms)
//
// Opener.Open dispatches on the scheme. The PKCS#11, TPM, FIDO2 and KMS
// backends import this package, so they plug into Opener's PKCS11, TPM,
// FIDO2 and KMS fields (the agent sets all four). There is no global
// registry.
//
// A Key signs only with its own algorithm (see Algorithm): a digest whose
// crypto.SignerOpts names another hash, or whose length does not match, is
// refused. The keystest package holds the conformance suite every backend
// runs. Backends do not log, and no error carries a password or key bytes.
package keys

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Key is a signing key held by a backend.
type Key interface {
	crypto.Signer
	// Close releases the backend's resources. It is idempotent; Sign after
	// Close fails with ErrClosed.
	Close() error
}

// ContextSigner is implemented by keys whose Sign can wait (a TPM command
// queue, an HSM session pool); SignMessage passes the caller's context.
type ContextSigner interface {
	SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error)
}

// Errors callers branch on.
var (
	ErrClosed            = errors.New("key is closed")
	ErrUnsupportedScheme = errors.New("unsupported key URI scheme")
	ErrUnsupportedKey    = errors.New("unsupported key type")
	// ErrBackendUnavailable marks a backend failure that may be transient
	// (device gone, session lost); the agent maps it to
	// signing_backend_unavailable and may fall back to another key.
	ErrBackendUnavailable = errors.New("signing backend unavailable")
)

// Algorithm names used in key metadata and signing identities.
const (
	AlgECDSAP256 = "ecdsa-p256-sha256"
	// AlgECDSAP384 hashes with SHA-256, not SHA-384: the cosign CLI verifies
	// key-based bundles with SHA-256 whatever the curve (it has no flag to
	// choose), and every signature the agent makes must verify with stock
	// cosign. P-384 with SHA-256 is a valid FIPS 186 pairing.
	AlgECDSAP384 = "ecdsa-p384-sha256"
	AlgEd25519   = "ed25519"
)

// Algorithm returns the signing algorithm name and digest for a public key.
// Ed25519 signs the message itself (hash 0).
func Algorithm(pub crypto.PublicKey) (string, crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return AlgECDSAP256, crypto.SHA256, nil
		case elliptic.P384():
			return AlgECDSAP384, crypto.SHA256, nil
		}
		return "", 0, fmt.Errorf("%w: ECDSA curve %s", ErrUnsupportedKey, k.Curve.Params().Name)
	case ed25519.PublicKey:
		return AlgEd25519, 0, nil
	}
	return "", 0, fmt.Errorf("%w: %T", ErrUnsupportedKey, pub)
}

// SignMessage signs msg with s using the key's algorithm: ECDSA keys hash
// with SHA-256 (P-256 and P-384, see AlgECDSAP384) and return ASN.1 DER
// signatures;
// Ed25519 signs msg directly.
func SignMessage(ctx context.Context, s crypto.Signer, msg []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, h, err := Algorithm(s.Public())
	if err != nil {
		return nil, err
	}
	if cs, ok := s.(ContextSigner); ok && h == crypto.SHA256 {
		// Backends that queue (TPM, HSM sessions) honour the request's
		// deadline instead of a fixed one.
		d := sha256.Sum256(msg)
		return cs.SignContext(ctx, d[:], h)
	}
	switch h {
	case 0:
		return s.Sign(nil, msg, crypto.Hash(0))
	case crypto.SHA256:
		d := sha256.Sum256(msg)
		return s.Sign(nil, d[:], h)
	case crypto.SHA384:
		d := sha512.Sum384(msg)
		return s.Sign(nil, d[:], h)
	}
	return nil, fmt.Errorf("%w: hash %v", ErrUnsupportedKey, h)
}

// PublicKeyHint is base64(SHA-256(PKIX DER)) of pub: the sigstore bundle's
// verificationMaterial.publicKey.hint.
func PublicKeyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// Scheme returns the URI scheme of a key URI ("file", "memory", "pkcs11", …),
// which is also the key's source in metadata.
func Scheme(uri string) string {
	s, _, ok := strings.Cut(uri, ":")
	if !ok {
		return ""
	}
	return strings.ToLower(s)
}
