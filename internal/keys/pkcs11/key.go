//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	p11 "github.com/miekg/pkcs11"

	"github.com/stellaops/signer-agent/internal/keys"
)

// Key is an ECDSA private key on a PKCS#11 token. It implements keys.Key
// and is safe for concurrent use.
type Key struct {
	o    *Opener
	mod  *module
	uri  *URI   // token and object selectors; no PIN
	desc string // "pkcs11 key token=… object=…", for errors
	pin  string
	auth bool // log in with pin

	pub  *ecdsa.PublicKey
	alg  string
	hash crypto.Hash

	sessions chan struct{} // a slot per session that may be lent: max-sessions
	dialing  chan struct{} // held while connecting to the token
	done     chan struct{} // closed by Close

	mu      sync.Mutex
	conn    *conn // the live connection; nil until the next Sign reconnects
	closed  bool
	fatal   error  // a refused PIN: final
	dials   uint64 // connection attempts finished
	dialErr error  // the latest attempt's error, nil if it succeeded
	inUse   int
	peak    int
	busy    sync.WaitGroup // Sign calls in progress; Close waits for them

	signatures, failures, opened, logins, reconnects atomic.Uint64
}

// conn is one connection of a key to its token: the module generation, the
// slot and key handle it found, and its sessions. A lost connection is
// marked broken and replaced whole.
type conn struct {
	gen  uint64
	slot uint
	priv p11.ObjectHandle

	// Guarded by Key.mu.
	idle   []p11.SessionHandle
	open   int // sessions of this connection not yet closed (idle or lent)
	broken bool
}

var _ keys.Key = (*Key)(nil)

// Open opens the key a pkcs11: URI names (see the package documentation).
// It loads the module if this Opener has not, finds the token and the key,
// logs in and reads the public key. Errors name the token and key but
// never the PIN; a token that cannot be found wraps ErrTokenNotFound and
// keys.ErrBackendUnavailable.
func (o *Opener) Open(ctx context.Context, uri string) (keys.Key, error) {
	k, err := o.OpenKey(ctx, uri)
	if err != nil {
		return nil, err
	}
	return k, nil
}

// OpenKey is Open returning the concrete *Key (for Stats and SignContext).
func (o *Opener) OpenKey(ctx context.Context, uri string) (*Key, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	u, err := ParseURI(uri)
	if err != nil {
		return nil, err
	}
	if err := checkKeyURI(u); err != nil {
		return nil, err
	}
	safe := *u
	safe.pinValue = ""
	n := u.MaxSessions
	if n == 0 {
		n = DefaultMaxSessions
	}
	k := &Key{
		o:        o,
		uri:      &safe,
		desc:     "pkcs11 key " + u.label(),
		sessions: make(chan struct{}, n),
		dialing:  make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	k.pin, k.auth, err = o.pin(u)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k.desc, err)
	}
	if k.mod, err = o.acquire(u.ModulePath); err != nil {
		if isTransient(err) {
			return nil, fmt.Errorf("%w: %s: %w", keys.ErrBackendUnavailable, k.desc, err)
		}
		return nil, fmt.Errorf("%s: %w", k.desc, err)
	}
	c, s, pub, err := k.dial()
	if isCode(err, p11.CKR_CRYPTOKI_NOT_INITIALIZED) {
		// Finalised behind the Opener's back since another key loaded
		// it: dial has marked it so; this attempt re-initialises it.
		c, s, pub, err = k.dial()
	}
	if err != nil {
		o.release(k.mod)
		if isTransient(err) {
			return nil, fmt.Errorf("%w: %s: %w", keys.ErrBackendUnavailable, k.desc, err)
		}
		return nil, fmt.Errorf("%s: %w", k.desc, err)
	}
	k.pub = pub
	if k.alg, k.hash, err = keys.Algorithm(pub); err != nil {
		k.closeSession(c, s)
		o.release(k.mod)
		return nil, fmt.Errorf("%s: %w", k.desc, err)
	}
	c.idle = append(c.idle, s)
	k.conn = c
	return k, nil
}

// checkKeyURI checks that u names a module, a token and a key.
func checkKeyURI(u *URI) error {
	switch {
	case u.ModulePath == "":
		return fmt.Errorf("%w: module-path=/absolute/path/to/module.so is required", ErrInvalidURI)
	case u.Token == "" && u.Serial == "" && u.SlotID == nil:
		return fmt.Errorf("%w: name the token with token=, serial= or slot-id=", ErrInvalidURI)
	case u.Object == "" && len(u.ID) == 0:
		return fmt.Errorf("%w: name the key with object= and/or id=", ErrInvalidURI)
	}
	return nil
}

// pin returns the PIN u gives, from pin-value or the pin-source file
// (trailing line breaks trimmed), and whether there is one.
func (o *Opener) pin(u *URI) (string, bool, error) {
	if u.pinValue != "" {
		return u.pinValue, true, nil
	}
	if u.PINSource == "" {
		return "", false, nil
	}
	path, err := pinSourcePath(u.PINSource)
	if err != nil {
		return "", false, fmt.Errorf("%w: pin-source: %v", ErrInvalidURI, err)
	}
	read := o.ReadFile
	if read == nil {
		read = os.ReadFile
	}
	data, err := read(path)
	if err != nil {
		return "", false, fmt.Errorf("read pin-source: %w", err)
	}
	defer clear(data)
	pin := strings.TrimRight(string(data), "\r\n")
	switch {
	case pin == "":
		return "", false, fmt.Errorf("pin-source %s is empty", path)
	case strings.ContainsAny(pin, "\r\n\x00"):
		return "", false, fmt.Errorf("pin-source %s holds more than one line", path)
	}
	return pin, true, nil
}

// Public returns the public key read at Open; it stays available after
// Close.
func (k *Key) Public() crypto.PublicKey { return k.pub }

// Sign signs a SHA-256 digest (the key's algorithm: see keys.Algorithm)
// and returns an ASN.1 DER ECDSA signature. It waits at most the Opener's
// WaitTimeout for a session; SignContext takes a context instead.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), k.o.waitTimeout())
	defer cancel()
	return k.SignContext(ctx, digest, opts)
}

// SignContext is Sign bounded by ctx: it gives up waiting for a free
// session or a reconnection when ctx ends. A call already inside the
// module (C_Sign) cannot be interrupted. Failures of the token wrap
// keys.ErrBackendUnavailable; after a lost session or token the next call
// reconnects.
func (k *Key) SignContext(ctx context.Context, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil, keys.ErrClosed
	}
	k.busy.Add(1)
	k.mu.Unlock()
	defer k.busy.Done()

	if err := checkSignerOpts(k.alg, k.hash, digest, opts); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case k.sessions <- struct{}{}:
	case <-k.done:
		return nil, keys.ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: waiting for a free session: %w", k.desc, ctx.Err())
	}
	defer func() { <-k.sessions }()

	c, s, err := k.borrow(ctx)
	if err != nil {
		if errors.Is(err, keys.ErrBackendUnavailable) {
			k.failures.Add(1)
		}
		return nil, err
	}
	var raw []byte
	err = k.mod.with(c.gen, func(p *p11.Ctx) error {
		if err := p.SignInit(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}, c.priv); err != nil {
			return err
		}
		var err error
		raw, err = p.Sign(s, digest)
		return err
	})
	k.giveBack(c, s, err)
	if err != nil {
		k.failures.Add(1)
		return nil, fmt.Errorf("%w: %s: sign: %w", keys.ErrBackendUnavailable, k.desc, err)
	}
	sig, err := rawToDER(raw, k.pub.Curve)
	if err != nil {
		k.failures.Add(1)
		return nil, fmt.Errorf("%w: %s: %w", keys.ErrBackendUnavailable, k.desc, err)
	}
	k.signatures.Add(1)
	return sig, nil
}

// borrow lends the caller a session: an idle one, a new one on the live
// connection, or the first of a new connection.
func (k *Key) borrow(ctx context.Context) (*conn, p11.SessionHandle, error) {
	for {
		k.mu.Lock()
		if k.fatal != nil {
			err := k.fatal
			k.mu.Unlock()
			return nil, 0, err
		}
		if c := k.conn; c != nil {
			if n := len(c.idle); n > 0 {
				s := c.idle[n-1]
				c.idle = c.idle[:n-1]
				k.lendLocked()
				k.mu.Unlock()
				return c, s, nil
			}
			c.open++
			k.lendLocked()
			k.mu.Unlock()
			s, err := k.openSession(c)
			if err != nil {
				k.mu.Lock()
				c.open--
				k.inUse--
				k.mu.Unlock()
				if isLost(err) {
					k.drop(c, err)
				}
				return nil, 0, fmt.Errorf("%w: %s: open session: %w", keys.ErrBackendUnavailable, k.desc, err)
			}
			return c, s, nil
		}
		seen := k.dials
		k.mu.Unlock()

		c, s, retry, err := k.reconnect(ctx, seen)
		if retry {
			continue // another caller connected while this one waited
		}
		return c, s, err
	}
}

// reconnect connects to the token again after a loss. Callers that wait
// while another attempt runs share its failure rather than repeat it;
// retry asks the caller to borrow from the connection another made.
func (k *Key) reconnect(ctx context.Context, seen uint64) (*conn, p11.SessionHandle, bool, error) {
	select {
	case k.dialing <- struct{}{}:
	case <-k.done:
		return nil, 0, false, keys.ErrClosed
	case <-ctx.Done():
		return nil, 0, false, fmt.Errorf("%s: waiting for the reconnection: %w", k.desc, ctx.Err())
	}
	defer func() { <-k.dialing }()

	k.mu.Lock()
	switch {
	case k.closed:
		k.mu.Unlock()
		return nil, 0, false, keys.ErrClosed
	case k.conn != nil:
		k.mu.Unlock()
		return nil, 0, true, nil
	case k.dials != seen && k.dialErr != nil:
		err := k.dialErr
		k.mu.Unlock()
		return nil, 0, false, err
	}
	k.mu.Unlock()

	c, s, pub, err := k.dial()
	if err == nil && !k.pub.Equal(pub) {
		k.closeSession(c, s)
		err = errors.New("the key on the token is not the one opened: its public key changed")
	}

	k.mu.Lock()
	k.dials++
	if err != nil {
		err = fmt.Errorf("%w: %s: reconnect: %w", keys.ErrBackendUnavailable, k.desc, err)
		if errors.Is(err, ErrPINIncorrect) {
			k.fatal = err
		}
		k.dialErr = err
		k.mu.Unlock()
		return nil, 0, false, err
	}
	k.dialErr = nil
	if k.closed {
		k.mu.Unlock()
		k.closeSession(c, s)
		return nil, 0, false, keys.ErrClosed
	}
	k.reconnects.Add(1)
	k.conn = c
	k.lendLocked()
	k.mu.Unlock()
	return c, s, false, nil
}

// dial makes a connection: it initialises the module if needed, finds the
// token, opens a session, logs in and finds the key. The session is
// returned lent to the caller.
func (k *Key) dial() (*conn, p11.SessionHandle, *ecdsa.PublicKey, error) {
	gen, err := k.mod.ensure()
	if err != nil {
		return nil, 0, nil, err
	}
	var (
		c   *conn
		s   p11.SessionHandle
		pub *ecdsa.PublicKey
	)
	err = k.mod.with(gen, func(p *p11.Ctx) error {
		slot, err := findToken(p, k.uri)
		if err != nil {
			return err
		}
		if s, err = p.OpenSession(slot, p11.CKF_SERIAL_SESSION); err != nil {
			return fmt.Errorf("open session: %w", err)
		}
		k.opened.Add(1)
		if k.auth {
			k.logins.Add(1)
			if err := login(p, s, k.pin); err != nil {
				_ = p.CloseSession(s)
				return err
			}
		}
		priv, found, err := findKey(p, s, k.uri)
		if err == nil {
			err = probe(p, s, priv, found)
		}
		if err != nil {
			_ = p.CloseSession(s)
			return err
		}
		c = &conn{gen: gen, slot: slot, priv: priv, open: 1}
		pub = found
		return nil
	})
	if err != nil {
		if isCode(err, p11.CKR_CRYPTOKI_NOT_INITIALIZED) {
			k.mod.lost(gen)
		}
		return nil, 0, nil, err
	}
	return c, s, pub, nil
}

// probe signs a fixed digest with priv and verifies it with pub: the
// public key read from the token (a public key object or a certificate,
// found by CKA_ID or label) must be the private key's own.
func probe(p *p11.Ctx, s p11.SessionHandle, priv p11.ObjectHandle, pub *ecdsa.PublicKey) error {
	digest := sha256.Sum256([]byte("signer-agent pkcs11 key check"))
	if err := p.SignInit(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}, priv); err != nil {
		return fmt.Errorf("test signature: %w", err)
	}
	raw, err := p.Sign(s, digest[:])
	if err != nil {
		return fmt.Errorf("test signature: %w", err)
	}
	sig, err := rawToDER(raw, pub.Curve)
	if err != nil {
		return fmt.Errorf("test signature: %w", err)
	}
	if !ecdsa.VerifyASN1(pub, digest[:], sig) {
		return errors.New("the public key found on the token does not match the private key")
	}
	return nil
}

// login logs the application in as the token's user. A token already
// logged in (by another key, or another session) is fine.
func login(p *p11.Ctx, s p11.SessionHandle, pin string) error {
	err := p.Login(s, p11.CKU_USER, pin)
	switch {
	case err == nil, isCode(err, p11.CKR_USER_ALREADY_LOGGED_IN):
		return nil
	case isPINRefused(err):
		return fmt.Errorf("log in: %w (%w)", ErrPINIncorrect, err)
	}
	return fmt.Errorf("log in: %w", err)
}

func (k *Key) openSession(c *conn) (p11.SessionHandle, error) {
	var s p11.SessionHandle
	err := k.mod.with(c.gen, func(p *p11.Ctx) error {
		var err error
		s, err = p.OpenSession(c.slot, p11.CKF_SERIAL_SESSION)
		return err
	})
	if err == nil {
		k.opened.Add(1)
	}
	return s, err
}

// closeSession closes s unless its module generation has passed (its
// handle may then belong to someone else).
func (k *Key) closeSession(c *conn, s p11.SessionHandle) {
	_ = k.mod.with(c.gen, func(p *p11.Ctx) error { return p.CloseSession(s) })
}

func (k *Key) lendLocked() {
	k.inUse++
	k.peak = max(k.peak, k.inUse)
}

// giveBack returns a lent session after a Sign: to the idle list if all
// went well, closed otherwise. A lost session or token drops the whole
// connection.
func (k *Key) giveBack(c *conn, s p11.SessionHandle, err error) {
	k.mu.Lock()
	k.inUse--
	if err == nil && !c.broken && k.conn == c && !k.closed {
		c.idle = append(c.idle, s)
		k.mu.Unlock()
		return
	}
	c.open--
	k.mu.Unlock()
	if isLost(err) {
		k.drop(c, err)
	}
	k.closeSession(c, s)
}

// drop marks c lost: its idle sessions are closed, lent ones are closed
// when they come back, and the next Sign reconnects.
func (k *Key) drop(c *conn, err error) {
	if isCode(err, p11.CKR_CRYPTOKI_NOT_INITIALIZED) {
		k.mod.lost(c.gen)
	}
	k.mu.Lock()
	if c.broken {
		k.mu.Unlock()
		return
	}
	c.broken = true
	if k.conn == c {
		k.conn = nil
	}
	idle := c.idle
	c.idle = nil
	c.open -= len(idle)
	k.mu.Unlock()
	for _, s := range idle {
		k.closeSession(c, s)
	}
}

// Close waits for Sign calls in progress, closes the key's sessions and
// releases the module (the last key of a module finalises it). It is
// idempotent; Sign after Close fails with keys.ErrClosed.
func (k *Key) Close() error {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil
	}
	k.closed = true
	close(k.done)
	k.mu.Unlock()

	k.busy.Wait()
	k.mu.Lock()
	c := k.conn
	k.conn = nil
	var idle []p11.SessionHandle
	if c != nil {
		idle, c.idle = c.idle, nil
		c.open -= len(idle)
		c.broken = true
	}
	k.pin = ""
	k.mu.Unlock()
	for _, s := range idle {
		k.closeSession(c, s)
	}
	k.o.release(k.mod)
	return nil
}

// Stats returns the key's counters: a snapshot, safe to call at any time.
func (k *Key) Stats() Stats {
	k.mu.Lock()
	open := 0
	if k.conn != nil {
		open = k.conn.open
	}
	st := Stats{OpenSessions: open, InUse: k.inUse, PeakInUse: k.peak}
	k.mu.Unlock()
	st.Signatures = k.signatures.Load()
	st.Failures = k.failures.Load()
	st.SessionsOpened = k.opened.Load()
	st.Logins = k.logins.Load()
	st.Reconnects = k.reconnects.Load()
	return st
}
