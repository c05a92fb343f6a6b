package fido2

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
)

// DefaultTTL is how long an unlocked key stays in memory when Options.TTL
// is zero.
const DefaultTTL = time.Hour

// ErrLocked: the key is not unlocked (never, or its TTL or signature
// budget ran out, or Lock was called). Sign wraps it together with
// keys.ErrBackendUnavailable.
var ErrLocked = errors.New("fido2 key is locked: run signerctl keys unlock")

// Options limit how long an unlocked key stays in memory.
type Options struct {
	// TTL after Unlock before the key is locked again; 0 means DefaultTTL.
	TTL time.Duration
	// MaxSignatures after Unlock before the key is locked again; 0 means
	// no budget (the TTL alone limits the key).
	MaxSignatures int
	// Now is the clock (nil: time.Now); for tests.
	Now func() time.Time
}

// Key is a keys.Key whose private key is wrapped in a file by FIDO2
// authenticators. It starts locked; see Unlock. It is safe for concurrent
// use.
type Key struct {
	path string
	pub  *ecdsa.PublicKey
	opts Options

	mu      sync.Mutex
	file    *File
	closed  bool
	priv    *ecdsa.PrivateKey // nil while locked
	expires time.Time
	used    int
	timer   *time.Timer
}

var _ keys.Key = (*Key)(nil)

// OpenFile reads the wrapped key file at path and returns the key, locked.
func OpenFile(path string, opts Options) (*Key, error) {
	if opts.TTL < 0 || opts.MaxSignatures < 0 {
		return nil, errors.New("fido2: TTL and MaxSignatures must not be negative")
	}
	if opts.TTL == 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	f, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, err := f.validate()
	if err != nil {
		return nil, err
	}
	return &Key{path: path, pub: pub, opts: opts, file: f}, nil
}

// Public returns the public key recorded in the file; it works while the
// key is locked and after Close.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Policy returns the file's unlock policy (whether to ask for a PIN).
func (k *Key) Policy() Policy { return k.file.Policy }

// Unlock runs the hmac-secret assertion for the file's wraps with auth
// until one opens, and keeps the private key in memory for the configured
// TTL or signature budget. Unlocking an unlocked key replaces its key and
// restarts its limits.
func (k *Key) Unlock(auth Authenticator, pin string) error {
	k.mu.Lock()
	closed, f := k.closed, k.file
	k.mu.Unlock()
	if closed {
		return keys.ErrClosed
	}
	priv, err := open(auth, f, pin)
	if err != nil {
		return fmt.Errorf("%s: %w", k.path, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		zeroKey(priv)
		return keys.ErrClosed
	}
	k.lockLocked()
	k.priv = priv
	k.used = 0
	k.expires = k.opts.Now().Add(k.opts.TTL)
	// The clock check in Sign is what enforces the TTL; the timer zeroes
	// an idle key when the TTL passes on the wall clock.
	k.timer = time.AfterFunc(k.opts.TTL, k.expire)
	return nil
}

func (k *Key) expire() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.priv != nil && !k.opts.Now().Before(k.expires) {
		k.lockLocked()
	}
}

// Unlocked reports whether the key can sign now.
func (k *Key) Unlocked() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.usableLocked()
}

// usableLocked checks the limits, locking the key if one is reached.
func (k *Key) usableLocked() bool {
	if k.priv == nil {
		return false
	}
	if !k.opts.Now().Before(k.expires) || (k.opts.MaxSignatures > 0 && k.used >= k.opts.MaxSignatures) {
		k.lockLocked()
		return false
	}
	return true
}

// Lock zeroes the private key; the key can be unlocked again.
func (k *Key) Lock() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lockLocked()
}

func (k *Key) lockLocked() {
	if k.timer != nil {
		k.timer.Stop()
		k.timer = nil
	}
	zeroKey(k.priv)
	k.priv = nil
}

// Close zeroes the private key; Sign and Unlock then fail with
// keys.ErrClosed. It is idempotent.
func (k *Key) Close() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.lockLocked()
	k.closed = true
	return nil
}

// Sign signs a SHA-256 digest (ASN.1 DER ECDSA). A locked key fails with
// an error wrapping keys.ErrBackendUnavailable and ErrLocked.
func (k *Key) Sign(random io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return nil, keys.ErrClosed
	}
	if opts == nil || opts.HashFunc() != crypto.SHA256 {
		return nil, fmt.Errorf("sign with %s: only SHA-256 digests are signed", keys.AlgECDSAP256)
	}
	if len(digest) != crypto.SHA256.Size() {
		return nil, fmt.Errorf("sign with %s: digest is %d bytes, want %d", keys.AlgECDSAP256, len(digest), crypto.SHA256.Size())
	}
	if !k.usableLocked() {
		return nil, fmt.Errorf("%w: %w", keys.ErrBackendUnavailable, ErrLocked)
	}
	if random == nil {
		random = rand.Reader
	}
	sig, err := ecdsa.SignASN1(random, k.priv, digest)
	if err != nil {
		return nil, fmt.Errorf("sign with %s: %w", keys.AlgECDSAP256, err)
	}
	k.used++
	if k.opts.MaxSignatures > 0 && k.used >= k.opts.MaxSignatures {
		k.lockLocked() // budget spent: do not keep the key until the next request
	}
	return sig, nil
}
