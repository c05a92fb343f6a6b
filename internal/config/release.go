package config

import "time"

// Release configures release-integrity checks of the calling scanner's
// image digest: online through the OCI Referrers API of Repository, offline
// through an allowlist and/or a directory of signatures and bundles.
type Release struct {
	Repository    string        `yaml:"repository,omitempty"`    // e.g. registry.example/stella/scanner
	KeyFiles      []string      `yaml:"keyFiles,omitempty"`      // trusted release public keys (PEM)
	AllowlistFile string        `yaml:"allowlistFile,omitempty"` // YAML: entries: [{digest, version, approvedBy, approvedAt, note}]
	OfflineDir    string        `yaml:"offlineDir,omitempty"`    // signatures/bundles per digest
	CacheTTL      time.Duration `yaml:"cacheTTL,omitempty"`      // default 10m
	// Insecure allows a plain-HTTP registry (tests on loopback only).
	Insecure bool `yaml:"insecure,omitempty"`
}

func (r *Release) applyDefaults(base string) {
	for i := range r.KeyFiles {
		r.KeyFiles[i] = resolve(base, r.KeyFiles[i])
	}
	r.AllowlistFile = resolve(base, r.AllowlistFile)
	r.OfflineDir = resolve(base, r.OfflineDir)
	setDefault(&r.CacheTTL, 10*time.Minute)
}

func (r *Release) validate(p *problems) {
	if r.Repository == "" && r.AllowlistFile == "" && r.OfflineDir == "" {
		p.add("release", "set repository (online), allowlistFile and/or offlineDir; no scanner release can be trusted without one")
	} else if (r.Repository != "" || r.OfflineDir != "") && len(r.KeyFiles) == 0 {
		p.add("release.keyFiles", "required to verify signatures from repository or offlineDir")
	}
}
