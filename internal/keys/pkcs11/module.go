//go:build cgo

package pkcs11

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	p11 "github.com/miekg/pkcs11"
)

// module is one loaded PKCS#11 module, shared by every key of an Opener
// that names its path.
type module struct {
	path string
	refs int // users: keys, GenerateKey and ListTokens calls; guarded by Opener.mu

	// mu is held for writing to initialise or finalise the module and for
	// reading around every other call: PKCS#11 forbids C_Finalize while
	// other calls run, and a session handle must never outlive the
	// initialisation that opened it (handles are reused afterwards).
	mu    sync.RWMutex
	lib   *p11.Ctx
	gen   uint64 // counts C_Initialize calls; sessions record the one they belong to
	live  bool   // initialised and not known to be finalised
	owned bool   // we initialised it, so we finalise it
}

// errStale marks a session or object handle from an earlier
// initialisation of the module, or a module known to be finalised.
var errStale = errors.New("PKCS#11 module was re-initialised or finalised since the session was opened")

// errModuleInit marks a failed C_Initialize.
var errModuleInit = errors.New("initialise PKCS#11 module")

// checkModulePath checks that path can name a module: absolute and a
// regular file (or a link to one).
func checkModulePath(path string) error {
	if path == "" {
		return fmt.Errorf("%w: module-path is required", ErrInvalidURI)
	}
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%w: module-path %q must be an absolute path", ErrInvalidURI, path)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("PKCS#11 module %s does not exist (is the module installed?)", path)
	case err != nil:
		return fmt.Errorf("PKCS#11 module: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("PKCS#11 module %s is not a regular file", path)
	}
	return nil
}

// acquire returns the module at path, loading and initialising it for its
// first user. Every successful acquire needs one release.
func (o *Opener) acquire(path string) (*module, error) {
	if err := checkModulePath(path); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	m := o.modules[path]
	if m == nil {
		lib := p11.New(path)
		if lib == nil {
			return nil, fmt.Errorf("PKCS#11 module %s: cannot load it (not a shared library, a missing dependency, or no C_GetFunctionList)", path)
		}
		m = &module{path: path, lib: lib}
		if o.modules == nil {
			o.modules = make(map[string]*module)
		}
		o.modules[path] = m
	}
	m.refs++
	if _, err := m.ensure(); err != nil {
		o.releaseLocked(m)
		return nil, err
	}
	return m, nil
}

// release drops one reference; the last finalises and unloads the module.
func (o *Opener) release(m *module) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.releaseLocked(m)
}

func (o *Opener) releaseLocked(m *module) {
	m.refs--
	if m.refs > 0 {
		return
	}
	delete(o.modules, m.path)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live && m.owned {
		_ = m.lib.Finalize() // nothing to do about a failure: the module is going away
	}
	m.live = false
	m.lib.Destroy()
	m.lib = nil
}

// ensure initialises the module if it is not (first use, or finalised
// behind our back) and returns the current generation.
func (m *module) ensure() (uint64, error) {
	m.mu.RLock()
	live, gen := m.live, m.gen
	m.mu.RUnlock()
	if live {
		return gen, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live {
		return m.gen, nil
	}
	if m.lib == nil {
		return 0, errStale
	}
	owned := true
	if err := m.lib.Initialize(); err != nil {
		if !isCode(err, p11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
			return 0, fmt.Errorf("%w %s: %w", errModuleInit, m.path, err)
		}
		owned = false // someone else in the process initialised it
	}
	m.gen++
	m.live, m.owned = true, owned
	return m.gen, nil
}

// lost records that the module was found finalised (CKR_CRYPTOKI_NOT_-
// INITIALIZED) while at generation gen; the next ensure re-initialises it.
func (m *module) lost(gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen == gen {
		m.live = false
	}
}

// with runs f on the module if it is still at generation gen.
func (m *module) with(gen uint64, f func(*p11.Ctx) error) error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.live || m.gen != gen {
		return errStale
	}
	return f(m.lib)
}

func isCode(err error, codes ...uint) bool {
	var e p11.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if uint(e) == c {
			return true
		}
	}
	return false
}

// isLost reports whether err means the session, key handle, login, token
// or module is gone: the key's sessions must be dropped and the next call
// must reconnect.
func isLost(err error) bool {
	return errors.Is(err, errStale) || isCode(err,
		p11.CKR_SESSION_HANDLE_INVALID,
		p11.CKR_SESSION_CLOSED,
		p11.CKR_DEVICE_REMOVED,
		p11.CKR_DEVICE_ERROR,
		p11.CKR_TOKEN_NOT_PRESENT,
		p11.CKR_TOKEN_NOT_RECOGNIZED,
		p11.CKR_USER_NOT_LOGGED_IN,
		p11.CKR_CRYPTOKI_NOT_INITIALIZED,
		p11.CKR_OBJECT_HANDLE_INVALID,
		p11.CKR_KEY_HANDLE_INVALID,
		p11.CKR_SLOT_ID_INVALID,
		p11.CKR_GENERAL_ERROR,
	)
}

// isTransient reports whether an error opening a key may go away by
// itself (device, token or module trouble) rather than need a change of
// configuration: such errors wrap keys.ErrBackendUnavailable.
func isTransient(err error) bool {
	return isLost(err) || errors.Is(err, ErrTokenNotFound) || errors.Is(err, errModuleInit)
}

// isPINRefused reports whether a C_Login error is about the PIN itself:
// retrying it cannot help and may lock the token.
func isPINRefused(err error) bool {
	return isCode(err,
		p11.CKR_PIN_INCORRECT,
		p11.CKR_PIN_INVALID,
		p11.CKR_PIN_LEN_RANGE,
		p11.CKR_PIN_EXPIRED,
		p11.CKR_PIN_LOCKED,
		p11.CKR_USER_PIN_NOT_INITIALIZED,
	)
}
