package agent

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"

	"github.com/stellaops/signer-agent/internal/auth"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/internal/keystate"
	"github.com/stellaops/signer-agent/internal/release"
)

// snapshot is one configuration with everything built from it: the
// verifier, the entitlement and release checkers, the TLS material and the
// opened keys. Requests acquire the current snapshot for their whole life;
// a reload publishes a new one and retires the old, whose keys are closed
// (by the retirer) once its last request releases it.
type snapshot struct {
	cfg        *config.Config
	auth       *auth.Verifier
	ent        *entitlement.Checker
	entKeys    []byte // the licensing keys file the checker was built from
	rel        *release.Checker
	tls        *tls.Config // mTLS listener material (nil: listener off)
	keys       map[string]*keyEntry
	keyless    *keylessBackend            // nil: keyless signing is off (snapshot_keyless.go)
	predicates map[string]map[string]bool // tenant -> allowed predicate types
	defaultFor map[string]bool            // key ids that are some tenant's default

	mu      sync.Mutex
	refs    int
	retired bool
	done    chan struct{}
}

// loadConfig loads the operator's configuration and lays the key rotations
// made through the admin API over it.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := keystate.ApplyRotations(cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("after key rotations: %w", err)
	}
	return cfg, nil
}

// buildSnapshot builds everything a configuration needs, reusing from prev
// (nil at start) what did not change: the verifier (and its caches), the
// entitlement checker (its verdicts and bypass), and keys whose URI is
// unchanged. On error, whatever it opened is closed and nothing of prev is
// touched.
func (a *Agent) buildSnapshot(ctx context.Context, cfg *config.Config, prev *snapshot) (s *snapshot, err error) {
	s = &snapshot{
		cfg:        cfg,
		predicates: map[string]map[string]bool{},
		defaultFor: map[string]bool{},
		done:       make(chan struct{}),
	}
	defer func() {
		if err != nil {
			s.closeKeys(prev)
			s = nil
		}
	}()
	for _, t := range cfg.Tenants {
		set := map[string]bool{}
		for _, p := range t.PredicateTypes {
			set[p] = true
		}
		s.predicates[t.ID] = set
		if t.DefaultKey != "" {
			s.defaultFor[t.DefaultKey] = true
		}
	}
	if s.tls, err = loadTLS(cfg); err != nil {
		return s, err
	}
	if s.ent, s.entKeys, err = a.entitlementFor(cfg, prev); err != nil {
		return s, err
	}
	if s.rel, err = newRelease(cfg, a.now); err != nil {
		return s, err
	}
	if s.auth, err = a.verifierFor(ctx, cfg, prev); err != nil {
		return s, err
	}
	rev, err := keystate.LoadRevocations(cfg.RevocationList)
	if err != nil {
		return s, err
	}
	var prevKeys map[string]*keyEntry
	if prev != nil {
		prevKeys = prev.keys
	}
	if s.keys, err = openKeys(ctx, a.opener, cfg, prevKeys); err != nil {
		return s, err
	}
	if err = loadKeyChains(ctx, cfg, s.keys); err != nil {
		return s, err
	}
	if s.keyless, err = a.keylessFor(cfg, prev); err != nil {
		return s, err
	}
	applyRevocations(s.keys, rev)
	a.warnKeys(s.keys)
	return s, nil
}

func (s *snapshot) acquire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired {
		return false
	}
	s.refs++
	return true
}

func (s *snapshot) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refs--
	if s.retired && s.refs == 0 {
		close(s.done)
	}
}

// retire marks the snapshot old; done closes when no request holds it.
func (s *snapshot) retire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.retired {
		return
	}
	s.retired = true
	if s.refs == 0 {
		close(s.done)
	}
}

// closeKeys closes the snapshot's keys, verifier and keyless signer that
// next does not reuse (next nil: all of them).
func (s *snapshot) closeKeys(next *snapshot) {
	if s.auth != nil && (next == nil || next.auth != s.auth) {
		_ = s.auth.Close()
	}
	if s.keyless != nil && (next == nil || next.keyless != s.keyless) {
		s.keyless.close()
	}
	keep := map[any]bool{}
	if next != nil {
		for _, e := range next.keys {
			keep[e.key] = true
		}
	}
	for _, e := range s.keys {
		if e.key != nil && !keep[e.key] {
			_ = e.key.Close()
		}
	}
}

// acquire returns the current snapshot, held until release, or nil when
// the agent has stopped serving (its last snapshot is retired).
func (a *Agent) acquire() *snapshot {
	for {
		s := a.snap.Load()
		if s.acquire() {
			return s
		}
		if a.snap.Load() == s {
			return nil // retired and not replaced: the agent is closing
		}
	}
}

// Config returns the configuration in force.
func (a *Agent) Config() *config.Config { return a.snap.Load().cfg }
