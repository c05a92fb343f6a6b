package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/stellaops/signer-agent/internal/release"
	"github.com/stellaops/signer-agent/proto"
)

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
