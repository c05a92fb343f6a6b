package agent

import (
	"crypto/tls"
	"sync"

	"github.com/stellaops/signer-agent/internal/auth"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/internal/release"
)

// snapshot is one configuration with its opened keys. Requests acquire the
// current snapshot for their whole life; a reload publishes a new one and
// retires the old, whose keys are closed once its last request releases it.
type snapshot struct {
	cfg        *config.Config
	auth       *auth.Verifier
	ent        *entitlement.Checker
	entKeys    []byte // the licensing keys file the checker was built from
	rel        *release.Checker
	tls        *tls.Config // mTLS listener material (nil: listener off)
	keys       map[string]*keyEntry
	predicates map[string]map[string]bool // tenant -> allowed predicate types
	defaultFor map[string]bool            // key ids that are some tenant's default

	mu      sync.Mutex
	refs    int
	retired bool
	done    chan struct{}
}

func newSnapshot(cfg *config.Config, v *auth.Verifier, ks map[string]*keyEntry) *snapshot {
	s := &snapshot{
		cfg:        cfg,
		auth:       v,
		keys:       ks,
		predicates: map[string]map[string]bool{},
		defaultFor: map[string]bool{},
		done:       make(chan struct{}),
	}
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
	return s
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

// closeKeys closes the snapshot's keys (and verifier) that next does not
// reuse.
func (s *snapshot) closeKeys(next *snapshot) {
	if s.auth != nil && (next == nil || next.auth != s.auth) {
		_ = s.auth.Close()
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
