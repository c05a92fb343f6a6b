package config

import (
	"path/filepath"
	"time"
)

// Idempotency configures the answers kept for retried requests (SPEC §4.6).
// Read at start: a change needs a restart.
type Idempotency struct {
	// Dir holds the journal that keeps the answers across a restart
	// (default <stateDir>/idempotency). It holds signed statements: keep
	// it as private as the state directory (the agent creates it 0700).
	Dir string `yaml:"dir,omitempty"`
	// Window is how long an answer is kept for a retry (default 10m).
	Window time.Duration `yaml:"window,omitempty"`
	// MaxEntries and MaxBytes bound each tenant's kept answers in memory
	// (defaults 10000 and 64 MiB); the oldest go first, and a retry after
	// its answer went is served (and signed, and counted) afresh.
	MaxEntries int   `yaml:"maxEntries,omitempty"`
	MaxBytes   int64 `yaml:"maxBytes,omitempty"`
}

// Defaults of the idempotency section.
const (
	DefaultIdempotencyWindow     = 10 * time.Minute
	DefaultIdempotencyMaxEntries = 10000
	DefaultIdempotencyMaxBytes   = 64 << 20
)

func (i *Idempotency) applyDefaults(base, stateDir string) {
	if i.Dir == "" {
		i.Dir = filepath.Join(stateDir, "idempotency")
	}
	i.Dir = resolve(base, i.Dir)
	if i.Window == 0 {
		i.Window = DefaultIdempotencyWindow
	}
	if i.MaxEntries == 0 {
		i.MaxEntries = DefaultIdempotencyMaxEntries
	}
	if i.MaxBytes == 0 {
		i.MaxBytes = DefaultIdempotencyMaxBytes
	}
}

func (i *Idempotency) validate(p *problems) {
	if i.Window < time.Second {
		p.add("idempotency.window", "must be at least 1s, got %v", i.Window)
	}
	if i.MaxEntries < 1 {
		p.add("idempotency.maxEntries", "must be at least 1")
	}
	if i.MaxBytes < 1<<20 {
		p.add("idempotency.maxBytes", "must be at least 1 MiB (1048576)")
	}
}
