package agent

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/release"
	"github.com/stellaops/signer-agent/proto"
)

const gateRelease = "release"

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

// releaseGate requires the calling scanner's image digest to be a trusted
// release (SPEC §1 step 5) and enforces the PoE's version window.
func (a *Agent) releaseGate(ctx context.Context, rc *requestContext) *Denial {
	d := rc.req.ScannerImageDigest
	if d == "" {
		rc.rec.ReleaseVerdict = "untrusted"
		return deny(proto.CodeReleaseUntrusted, "scannerImageDigest is required", "request names no scanner image digest")
	}
	v, err := rc.snap.rel.Check(ctx, d)
	if err != nil {
		rc.rec.ReleaseVerdict = "untrusted"
		return deny(proto.CodeReleaseUntrusted, "scanner release could not be checked", err.Error())
	}
	src := v.Source
	if v.OriginalSource != "" {
		src = v.OriginalSource + " (cached)"
	}
	a.metrics.Release(v.Source, v.Trusted)
	if !v.Trusted {
		rc.rec.ReleaseVerdict = "untrusted"
		return deny(proto.CodeReleaseUntrusted, "scanner image is not a trusted release", v.Reason)
	}
	rc.rec.ReleaseVerdict = "trusted via " + src
	if v.ManualApproval != nil {
		rc.rec.ReleaseVerdict += fmt.Sprintf("; manually approved by %s", v.ManualApproval.ApprovedBy)
		if v.ManualApproval.ApprovedAt != nil {
			rc.rec.ReleaseVerdict += " at " + v.ManualApproval.ApprovedAt.UTC().Format(time.RFC3339)
		}
	}
	if e := rc.entitlement; e != nil && e.VersionWindow != nil {
		if err := release.CheckVersionWindow(v.Version, e.VersionWindow.Earliest, e.VersionWindow.Latest); err != nil {
			return deny(proto.CodeEntitlementDenied, "scanner release is outside the entitlement's version window",
				fmt.Sprintf("release %q: %v", v.Version, err))
		}
	}
	return nil
}

// handleReferrers is GET /api/v1/signer/verify/referrers?digest=…: the
// release-integrity verdict, its source and the key that signed it.
func (a *Agent) handleReferrers(w http.ResponseWriter, rc *requestContext) {
	d := rc.r.URL.Query().Get("digest")
	if err := release.ValidateDigest(d); err != nil {
		a.refuse(rc.r.Context(), w, rc, gateRoute, deny(proto.CodeInvalidRequest, "digest: want sha256:<64 lowercase hex>", "bad digest query"))
		return
	}
	v, err := rc.snap.rel.Check(rc.r.Context(), d)
	if err != nil {
		a.refuse(rc.r.Context(), w, rc, gateRelease, deny(proto.CodeInvalidRequest, "digest could not be checked", err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, v)
}
