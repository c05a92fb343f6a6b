package fido2

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// Authenticator is the small part of a FIDO2 authenticator the backend
// uses. OpenDevice returns one for a real device; SoftAuthenticator is a
// software stand-in for tests.
type Authenticator interface {
	// MakeCredential creates a non-discoverable credential with the
	// hmac-secret extension for rpID and returns its credential id.
	MakeCredential(rpID string, userID []byte, pin string, requireUV bool) (credID []byte, err error)
	// HMACSecret runs one assertion for credID with the hmac-secret
	// extension and returns the 32-byte output for salt (32 bytes).
	HMACSecret(rpID string, credID, salt []byte, pin string, requireUP, requireUV bool) ([]byte, error)
}

// Labeler is implemented by authenticators that can name themselves (a
// product name); the name is stored with the authenticator's wrap.
type Labeler interface {
	Label() string
}

// Errors an Authenticator returns.
var (
	// ErrNoCredential: the authenticator does not hold (cannot use) the
	// credential for this relying party: it is not the authenticator that
	// made the wrap.
	ErrNoCredential = errors.New("fido2: authenticator has no such credential")
	// ErrPINInvalid: the PIN was refused.
	ErrPINInvalid = errors.New("fido2: PIN invalid")
	// ErrPINRequired: the policy or the authenticator needs a PIN and none
	// was given.
	ErrPINRequired = errors.New("fido2: PIN required")
	// ErrUserPresence: the user did not confirm presence (no touch).
	ErrUserPresence = errors.New("fido2: user presence not confirmed")
	// ErrUserVerification: user verification was required and could not
	// be performed.
	ErrUserVerification = errors.New("fido2: user verification required")
)

const (
	credNonceSize = 16
	credTagSize   = 16
)

// SoftAuthenticator is a software FIDO2 authenticator FOR TESTS AND DEMOS
// ONLY. Its device secret lives in process memory, so wrapping a key with
// it protects nothing: anyone who can read the process (or who holds the
// SoftAuthenticator value) can unwrap. It exists so the wrap/unwrap logic
// can be tested on machines without a device (or /dev/uhid).
//
// It behaves like a real authenticator in the ways the backend relies on:
// credential ids are random and bound to the relying party id (stateless,
// like a non-discoverable credential), and the hmac-secret output is
// HMAC-SHA-256(deviceSecret, rpID || credID || salt) (each field length
// prefixed, and separate secrets with and without user verification, as in
// CTAP 2.1), so another SoftAuthenticator, another rpID or another
// credential id gives a different secret or an error.
//
// Present and PIN simulate the user: with Present false, operations that
// need user presence fail with ErrUserPresence; a PIN given must match PIN
// (ErrPINInvalid otherwise) and performs user verification; with PIN set,
// MakeCredential and user-verified assertions need it (ErrPINRequired). Set them before use; they are not guarded against
// concurrent change.
type SoftAuthenticator struct {
	// Present simulates the user touching the authenticator.
	Present bool
	// PIN is the authenticator's PIN; "" means none is set.
	PIN string
	// Name is returned by Label.
	Name string

	mu     sync.Mutex
	secret [32]byte
}

// NewSoftAuthenticator returns a SoftAuthenticator with a random device
// secret, no PIN, and a user present. For tests and demos only.
func NewSoftAuthenticator() (*SoftAuthenticator, error) {
	a := &SoftAuthenticator{Present: true, Name: "software authenticator (test only)"}
	if _, err := rand.Read(a.secret[:]); err != nil {
		return nil, fmt.Errorf("soft authenticator: %w", err)
	}
	return a, nil
}

// Label returns a.Name.
func (a *SoftAuthenticator) Label() string { return a.Name }

func (a *SoftAuthenticator) mac(parts ...[]byte) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	m := hmac.New(sha256.New, a.secret[:])
	for _, p := range parts {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write(p)
	}
	return m.Sum(nil)
}

// user checks the simulated user presence and verification. A PIN, when
// given, must match (and performs user verification); without one, user
// verification fails, and so does an operation that needs the PIN whenever
// one is set (needPIN: creating credentials). It reports whether user
// verification was performed.
func (a *SoftAuthenticator) user(pin string, requireUP, requireUV, needPIN bool) (uv bool, err error) {
	switch {
	case pin != "" && a.PIN == "":
		return false, fmt.Errorf("%w: the authenticator has no PIN set", ErrPINInvalid)
	case pin != "" && subtle.ConstantTimeCompare([]byte(pin), []byte(a.PIN)) != 1:
		return false, ErrPINInvalid
	case pin == "" && a.PIN == "" && requireUV:
		return false, fmt.Errorf("%w: the authenticator has no PIN set", ErrUserVerification)
	case pin == "" && a.PIN != "" && (requireUV || needPIN):
		return false, ErrPINRequired
	}
	if requireUP && !a.Present {
		return false, ErrUserPresence
	}
	return pin != "", nil
}

// MakeCredential returns a new credential id bound to rpID. Creating a
// credential always needs user presence.
func (a *SoftAuthenticator) MakeCredential(rpID string, userID []byte, pin string, requireUV bool) ([]byte, error) {
	if rpID == "" || len(userID) == 0 {
		return nil, errors.New("soft authenticator: rpID and userID are required")
	}
	if _, err := a.user(pin, true, requireUV, true); err != nil {
		return nil, err
	}
	id := make([]byte, credNonceSize, credNonceSize+credTagSize)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("soft authenticator: %w", err)
	}
	tag := a.mac([]byte("credential"), []byte(rpID), id)
	return append(id, tag[:credTagSize]...), nil
}

// HMACSecret returns the credential's hmac-secret output for salt.
func (a *SoftAuthenticator) HMACSecret(rpID string, credID, salt []byte, pin string, requireUP, requireUV bool) ([]byte, error) {
	if len(credID) != credNonceSize+credTagSize {
		return nil, ErrNoCredential
	}
	tag := a.mac([]byte("credential"), []byte(rpID), credID[:credNonceSize])
	if !hmac.Equal(tag[:credTagSize], credID[credNonceSize:]) {
		return nil, ErrNoCredential
	}
	if len(salt) != 32 {
		return nil, fmt.Errorf("soft authenticator: salt is %d bytes, want 32", len(salt))
	}
	uv, err := a.user(pin, requireUP, requireUV, false)
	if err != nil {
		return nil, err
	}
	// Like CTAP 2.1 authenticators, the output differs with and without
	// user verification.
	mode := []byte("uv=0")
	if uv {
		mode = []byte("uv=1")
	}
	return a.mac([]byte("hmac-secret"), mode, []byte(rpID), credID, salt), nil
}
