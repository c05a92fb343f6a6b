package pkcs11

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"errors"
	"sync"
	"time"
)

// Errors callers branch on, besides keys.ErrBackendUnavailable and
// keys.ErrClosed.
var (
	// ErrTokenNotFound: no token matches the URI's token selectors. It is
	// joined with keys.ErrBackendUnavailable (a token can come back).
	ErrTokenNotFound = errors.New("PKCS#11 token not found")
	// ErrKeyNotFound: no private key (or no public key for it) matches.
	ErrKeyNotFound = errors.New("PKCS#11 key not found")
	// ErrPINIncorrect: the token refused the PIN (incorrect, locked,
	// expired or malformed).
	ErrPINIncorrect = errors.New("PKCS#11 login refused the PIN")
	// ErrNoCgo: the binary was built without cgo.
	ErrNoCgo = errors.New("PKCS#11 support needs cgo; this binary was built without it")
)

// DefaultWaitTimeout bounds how long Sign, which has no context, waits for
// a free session or a reconnection.
const DefaultWaitTimeout = 30 * time.Second

// Opener opens pkcs11: keys. Its zero value is ready to use; it must not
// be copied after first use. It owns the registry of loaded modules (see
// the package documentation): use one Opener per process.
type Opener struct {
	// ReadFile reads pin-source files. Nil means os.ReadFile.
	ReadFile func(name string) ([]byte, error)
	// WaitTimeout bounds Sign's wait for a session; 0 means
	// DefaultWaitTimeout. SignContext uses its context instead.
	WaitTimeout time.Duration

	mu      sync.Mutex
	modules map[string]*module // by module path; guarded by mu
}

// TokenInfo describes a token a module offers (ListTokens).
type TokenInfo struct {
	SlotID       uint
	Label        string
	Manufacturer string
	Model        string
	Serial       string
	// Initialized is false for a slot's free, uninitialised token
	// (SoftHSM2 always offers one).
	Initialized   bool
	LoginRequired bool
	// URI names the token (token, serial and module-path; add object=…
	// or id=… and a pin-source to name a key).
	URI string
}

// Stats counts what a Key did; see Key.Stats.
type Stats struct {
	Signatures     uint64 // successful signatures
	Failures       uint64 // Sign calls failed with keys.ErrBackendUnavailable
	SessionsOpened uint64 // sessions opened over the key's life
	Logins         uint64 // C_Login calls
	Reconnects     uint64 // connections re-established after a loss
	OpenSessions   int    // sessions open now
	InUse          int    // sessions lent to Sign calls now
	PeakInUse      int    // most sessions lent at once
}

func (o *Opener) waitTimeout() time.Duration {
	if o.WaitTimeout > 0 {
		return o.WaitTimeout
	}
	return DefaultWaitTimeout
}

// GenerateKey is Opener.GenerateKey on a fresh Opener: for a CLI, not for
// a process that holds keys of the same module open.
func GenerateKey(ctx context.Context, moduleURI, tokenLabel, objectLabel string, curve elliptic.Curve) (string, crypto.PublicKey, error) {
	var o Opener
	return o.GenerateKey(ctx, moduleURI, tokenLabel, objectLabel, curve)
}

// ListTokens is Opener.ListTokens on a fresh Opener: for a CLI, not for a
// process that holds keys of the same module open.
func ListTokens(modulePath string) ([]TokenInfo, error) {
	var o Opener
	return o.ListTokens(modulePath)
}
