//go:build !cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"io"

	"github.com/stellaops/signer-agent/internal/keys"
)

// Without cgo no module can be loaded: every operation fails with ErrNoCgo.

type module struct{}

// Key is a PKCS#11 key; without cgo none can be opened.
type Key struct{}

// Open fails with ErrNoCgo.
func (o *Opener) Open(ctx context.Context, uri string) (keys.Key, error) {
	return nil, ErrNoCgo
}

// OpenKey fails with ErrNoCgo.
func (o *Opener) OpenKey(ctx context.Context, uri string) (*Key, error) {
	return nil, ErrNoCgo
}

// GenerateKey fails with ErrNoCgo.
func (o *Opener) GenerateKey(ctx context.Context, moduleURI, tokenLabel, objectLabel string, curve elliptic.Curve) (string, crypto.PublicKey, error) {
	return "", nil, ErrNoCgo
}

// ListTokens fails with ErrNoCgo.
func (o *Opener) ListTokens(modulePath string) ([]TokenInfo, error) {
	return nil, ErrNoCgo
}

// Public returns nil.
func (k *Key) Public() crypto.PublicKey { return nil }

// Sign fails with ErrNoCgo.
func (k *Key) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) { return nil, ErrNoCgo }

// SignContext fails with ErrNoCgo.
func (k *Key) SignContext(context.Context, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, ErrNoCgo
}

// Close does nothing.
func (k *Key) Close() error { return nil }

// Stats returns zero counters.
func (k *Key) Stats() Stats { return Stats{} }

// CertificateChain fails with ErrNoCgo.
func (k *Key) CertificateChain(context.Context) ([][]byte, error) { return nil, ErrNoCgo }
