package config

import (
	"path/filepath"
	"time"
)

// Audit configures the audit log.
type Audit struct {
	Dir string `yaml:"dir,omitempty"` // default <stateDir>/audit
	// SegmentBytes rotates segment files past this size (default 64 MiB).
	SegmentBytes int64 `yaml:"segmentBytes,omitempty"`
	// PreallocateBytes is the zero-filled space kept ahead of the records
	// in the active segment, so that a commit's fdatasync has no
	// allocation or size change to persist (default 1 MiB; -1 turns it
	// off, which suits copy-on-write file systems such as btrfs or ZFS).
	PreallocateBytes int64 `yaml:"preallocateBytes,omitempty"`
	// MinFreeBytes is the room the audit volume must have for readyz to
	// report the audit log ready (default 1 MiB, one full write of the
	// log; -1 turns the check off). Below it readyz is not ok before any
	// write has failed.
	MinFreeBytes int64 `yaml:"minFreeBytes,omitempty"`
	// Journal also sends every durable record to the systemd journal
	// (best effort, asynchronous; the log stays the record). Read at start.
	Journal   bool           `yaml:"journal,omitempty"`
	Retention AuditRetention `yaml:"retention,omitempty"`
}

// AuditRetention says which closed segments may be deleted. Segments not
// yet exported are kept unless DeleteUnexported.
type AuditRetention struct {
	MaxAge           time.Duration `yaml:"maxAge,omitempty"`   // 0: keep
	MaxBytes         int64         `yaml:"maxBytes,omitempty"` // 0: no limit
	DeleteUnexported bool          `yaml:"deleteUnexported,omitempty"`
}

// applyDefaults puts the log under stateDir (already resolved) unless a
// directory is given. The segment and preallocation sizes default in
// package audit (0 there means its default).
func (a *Audit) applyDefaults(base, stateDir string) {
	if a.Dir == "" {
		a.Dir = filepath.Join(stateDir, "audit")
	}
	a.Dir = resolve(base, a.Dir)
}

func (a *Audit) validate(p *problems) {
	if a.SegmentBytes < 0 {
		p.add("audit.segmentBytes", "must not be negative")
	}
	if a.PreallocateBytes < -1 {
		p.add("audit.preallocateBytes", "must be -1 (off), 0 (default) or a size in bytes")
	}
	if a.MinFreeBytes < -1 {
		p.add("audit.minFreeBytes", "must be -1 (off), 0 (default) or a size in bytes")
	}
}
