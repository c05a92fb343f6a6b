package agent

import (
	"fmt"
	"time"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/release"
)

// newRelease builds the release checker of a config (rebuilt on every
// reload, so allowlist and key edits take effect; its cache starts empty).
func newRelease(cfg *config.Config, now func() time.Time) (*release.Checker, error) {
	rl := cfg.Release
	rc := release.Config{
		Repository: rl.Repository, OfflineDir: rl.OfflineDir, CacheTTL: rl.CacheTTL,
		Insecure: rl.Insecure, Now: now,
	}
	if len(rl.KeyFiles) > 0 {
		keys, err := release.LoadKeys(rl.KeyFiles...)
		if err != nil {
			return nil, fmt.Errorf("release.keyFiles: %w", err)
		}
		rc.PublicKeys = keys
	}
	if rl.AllowlistFile != "" {
		al, err := release.LoadAllowlist(rl.AllowlistFile)
		if err != nil {
			return nil, fmt.Errorf("release.allowlistFile: %w", err)
		}
		rc.Allowlist = al
	}
	c, err := release.New(rc)
	if err != nil {
		return nil, fmt.Errorf("release: %w", err)
	}
	return c, nil
}
