package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
)

// softKey is a Key whose private key lives in process memory: the file and
// memory backends.
type softKey struct {
	pub  crypto.PublicKey
	alg  string
	hash crypto.Hash // digest the algorithm signs; 0 for Ed25519

	mu   sync.RWMutex
	priv crypto.Signer // nil once closed
}

func newSoftKey(priv crypto.Signer) (*softKey, error) {
	pub := priv.Public()
	alg, h, err := Algorithm(pub)
	if err != nil {
		return nil, err
	}
	return &softKey{pub: pub, alg: alg, hash: h, priv: priv}, nil
}

// Public returns the public key; it stays available after Close.
func (k *softKey) Public() crypto.PublicKey { return k.pub }

// Sign signs digest with the key's own algorithm only; see checkSignerOpts.
// It is safe for concurrent use.
func (k *softKey) Sign(random io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if k.priv == nil {
		return nil, ErrClosed
	}
	if err := checkSignerOpts(k.alg, k.hash, digest, opts); err != nil {
		return nil, err
	}
	if k.hash == 0 {
		// Pure Ed25519: never Ed25519ph or Ed25519ctx.
		opts = crypto.Hash(0)
	}
	return k.priv.Sign(random, digest, opts)
}

// Close drops the private key (and zeroes Ed25519 key bytes, which the key
// owns). ECDSA scalars cannot be wiped reliably; dropping the last
// reference is the best that can be done. Close is idempotent.
func (k *softKey) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if p, ok := k.priv.(ed25519.PrivateKey); ok {
		clear(p)
	}
	k.priv = nil
	return nil
}

// checkSignerOpts refuses a signing request that does not match the key's
// algorithm: every backend must sign with exactly one hash (none, for
// Ed25519) and a digest of that hash's size.
func checkSignerOpts(alg string, want crypto.Hash, digest []byte, opts crypto.SignerOpts) error {
	if opts == nil {
		return fmt.Errorf("sign with %s: no signer options", alg)
	}
	if got := opts.HashFunc(); got != want {
		return fmt.Errorf("sign with %s: digest hash %v does not match the key's algorithm", alg, hashName(got))
	}
	if want == 0 {
		if o, ok := opts.(*ed25519.Options); ok && o.Context != "" {
			return fmt.Errorf("sign with %s: Ed25519ctx is not supported", alg)
		}
		return nil
	}
	if len(digest) != want.Size() {
		return fmt.Errorf("sign with %s: digest is %d bytes, want %d", alg, len(digest), want.Size())
	}
	return nil
}

func hashName(h crypto.Hash) string {
	if h == 0 {
		return "none"
	}
	return h.String()
}

// generatePrivateKey creates a new software key for alg ("" means
// AlgECDSAP256).
func generatePrivateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "", AlgECDSAP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case AlgECDSAP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case AlgEd25519:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("%w: algorithm %q (want %s, %s or %s)",
		ErrUnsupportedKey, alg, AlgECDSAP256, AlgECDSAP384, AlgEd25519)
}
