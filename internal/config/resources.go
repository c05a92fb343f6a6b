package config

import (
	"crypto/sha256"
	"encoding/hex"
)

// Defaults of the resource limits (SPEC §3).
const (
	DefaultMaxConnections        = 1024
	DefaultMaxConnectionsPerPeer = 256
	DefaultAdminMaxConnections   = 32
	DefaultInflightBodyBytes     = 256 << 20
	// DefaultBodyMemoryFactor is measured (docs/perf.md §13): a 31 MiB
	// SBOM-shaped sign request holds about 8 times its body at its peak
	// (the body, the decoded predicate, the canonical statement, the
	// DSSE pre-authentication encoding, the base64 payload in the
	// envelope and in the bundle, the response). With the default budget
	// one request of the largest size (transport.maxBodyBytes) runs at a
	// time, next to any number of small ones.
	DefaultBodyMemoryFactor = 8
	DefaultDenialAuditRate  = 4.0
	DefaultDenialAuditBurst = 4
)

// Resources bounds what callers can make the agent hold (SPEC §3):
// connections, in-flight request memory, and audit records of denials.
// It is inlined in Limits, so its keys sit under limits:.
type Resources struct {
	// MaxConnections caps open api-socket (and TCP listener)
	// connections. At the cap the longest-idle connection is closed for
	// a new one; when none is idle the new one gets 503 agent_busy.
	MaxConnections int `yaml:"maxConnections,omitempty"`
	// MaxConnectionsPerPeer caps one peer's (uid's) api connections, the
	// same way.
	MaxConnectionsPerPeer int `yaml:"maxConnectionsPerPeer,omitempty"`
	// AdminMaxConnections caps the admin socket's connections; they are
	// counted apart from the api's, so the admin socket always answers.
	AdminMaxConnections int `yaml:"adminMaxConnections,omitempty"`
	// InflightBodyBytes is the memory budget of the request bodies in
	// flight, each charged BodyMemoryFactor times its size before it is
	// read (the declared Content-Length, or the bytes as they stream);
	// over it a request gets 503 agent_busy with Retry-After.
	InflightBodyBytes int64 `yaml:"inflightBodyBytes,omitempty"`
	// BodyMemoryFactor is what a request holds per body byte while it is
	// processed (decoded body, canonical statement, envelope, bundles,
	// response).
	BodyMemoryFactor int `yaml:"bodyMemoryFactor,omitempty"`
	// MemoryLimit is the Go runtime's soft memory limit in bytes
	// (GOMEMLIMIT; 0: 4 × InflightBodyBytes, -1: none). The GOMEMLIMIT
	// environment variable, when set, wins.
	MemoryLimit int64 `yaml:"memoryLimit,omitempty"`
	// DenialAuditRate and DenialAuditBurst bound the denial records one
	// peer (uid) adds to the audit log per second; the denials beyond are
	// counted and written as one summary record per burst. Allowed
	// requests are never suppressed.
	DenialAuditRate  float64 `yaml:"denialAuditRate,omitempty"`
	DenialAuditBurst int     `yaml:"denialAuditBurst,omitempty"`
}

func (r *Resources) applyDefaults() {
	if r.MaxConnections == 0 {
		r.MaxConnections = DefaultMaxConnections
	}
	if r.MaxConnectionsPerPeer == 0 {
		r.MaxConnectionsPerPeer = min(DefaultMaxConnectionsPerPeer, r.MaxConnections)
	}
	if r.AdminMaxConnections == 0 {
		r.AdminMaxConnections = DefaultAdminMaxConnections
	}
	if r.InflightBodyBytes == 0 {
		r.InflightBodyBytes = DefaultInflightBodyBytes
	}
	if r.BodyMemoryFactor == 0 {
		r.BodyMemoryFactor = DefaultBodyMemoryFactor
	}
	if r.MemoryLimit == 0 {
		r.MemoryLimit = 4 * r.InflightBodyBytes
	}
	if r.DenialAuditRate == 0 {
		r.DenialAuditRate = DefaultDenialAuditRate
	}
	if r.DenialAuditBurst == 0 {
		r.DenialAuditBurst = DefaultDenialAuditBurst
	}
}

// validate checks the limits against each other and the body cap.
func (r *Resources) validate(p *problems, maxBody int64) {
	bad := func(key, format string, args ...any) { p.add("limits."+key, format, args...) }
	if r.MaxConnections < 1 {
		bad("maxConnections", "at least 1")
	}
	if r.MaxConnectionsPerPeer < 1 || r.MaxConnectionsPerPeer > r.MaxConnections {
		bad("maxConnectionsPerPeer", "between 1 and maxConnections (%d)", r.MaxConnections)
	}
	if r.AdminMaxConnections < 1 {
		bad("adminMaxConnections", "at least 1")
	}
	if r.BodyMemoryFactor < 1 || r.BodyMemoryFactor > 64 {
		bad("bodyMemoryFactor", "between 1 and 64")
	}
	if r.InflightBodyBytes < maxBody*int64(max(r.BodyMemoryFactor, 1)) {
		bad("inflightBodyBytes", "at least transport.maxBodyBytes × bodyMemoryFactor (%d), or no request of the largest size could ever run", maxBody*int64(max(r.BodyMemoryFactor, 1)))
	}
	if r.MemoryLimit < -1 || (r.MemoryLimit > 0 && r.MemoryLimit < r.InflightBodyBytes) {
		bad("memoryLimit", "-1 (none) or at least inflightBodyBytes")
	}
	if r.DenialAuditRate <= 0 {
		bad("denialAuditRate", "above 0")
	}
	if r.DenialAuditBurst < 1 {
		bad("denialAuditBurst", "at least 1")
	}
}

// digestOf is "sha256:<hex>" of b.
func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
