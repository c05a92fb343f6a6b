package agent

import (
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/proto"
)

// bypassRequest is the body of POST /admin/v1/entitlement/bypass.
type bypassRequest struct {
	Reason string `json:"reason"`
	For    string `json:"for"` // Go duration; "0s" turns the bypass off
}

// maxBypass bounds one emergency bypass.
const maxBypass = 24 * time.Hour

// handleBypass enables or ends the emergency entitlement bypass; the
// toggle itself is audited.
func (a *Agent) handleBypass(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	var br bypassRequest
	err := decodeAdminBody(rc.r, &br, false)
	var d time.Duration
	if err == nil {
		d, err = time.ParseDuration(br.For)
	}
	switch {
	case err != nil:
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeInvalidRequest, `want {"reason": "…", "for": "30m"}`, "bad bypass request"))
		return
	case d < 0 || d > maxBypass:
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeInvalidRequest, "for: between 0s and 24h", "bypass duration out of range"))
		return
	case d > 0 && len(br.Reason) < 3:
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeInvalidRequest, "reason: required", "bypass without reason"))
		return
	}
	now := a.now()
	var b *entitlement.Bypass
	if d > 0 {
		b = &entitlement.Bypass{Reason: br.Reason, Until: now.Add(d), SetAt: now}
		if rc.peer != nil {
			b.By = fmt.Sprintf("uid %d pid %d", rc.peer.UID, rc.peer.PID)
		}
	}
	reason := "bypass disabled"
	if b != nil {
		reason = fmt.Sprintf("bypass enabled until %s: %s", b.Until.UTC().Format(time.RFC3339), br.Reason)
	}
	// Audit first: an unaudited toggle must not take effect.
	if !a.auditAdmin(w, rc, "entitlement-bypass", reason, "the bypass could not be audited and was not changed") {
		return
	}
	rc.snap.ent.SetBypass(b)
	a.metrics.SetEntitlementBypass(b != nil)
	a.log.Warn("entitlement bypass changed", zap.String("requestId", rc.id), zap.String("change", rc.rec.Reason))
	out := map[string]any{"active": b != nil}
	if b != nil {
		out["until"], out["reason"] = b.Until.UTC(), b.Reason
	}
	writeJSON(w, http.StatusOK, out)
}
