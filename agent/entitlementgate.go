package agent

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/quota"
	"github.com/stellaops/signer-agent/proto"
)

const gateEntitlement = "entitlement"

// entitlementFor reuses prev's checker (and its verdict cache and bypass)
// when the entitlement settings did not change; a new checker inherits the
// bypass in force.
func (a *Agent) entitlementFor(cfg *config.Config, prev *snapshot) (*entitlement.Checker, []byte, error) {
	en := cfg.Entitlement
	var keysPEM []byte
	if en.LicensingKeysFile != "" {
		var err error
		if keysPEM, err = os.ReadFile(en.LicensingKeysFile); err != nil {
			return nil, nil, fmt.Errorf("entitlement.licensingKeysFile: %w", err)
		}
	}
	// Keep the checker (verdict cache, bypass) unless the settings or the
	// licensing keys themselves changed (the file is watched).
	if prev != nil && prev.ent != nil && reflect.DeepEqual(prev.cfg.Entitlement, cfg.Entitlement) && bytes.Equal(prev.entKeys, keysPEM) {
		return prev.ent, keysPEM, nil
	}
	var licensing []crypto.PublicKey
	if keysPEM != nil {
		var err error
		if licensing, err = keys.ParsePublicKeysPEM(keysPEM); err != nil {
			return nil, nil, fmt.Errorf("entitlement.licensingKeysFile: %w", err)
		}
	}
	c, err := entitlement.New(entitlement.Config{
		LicensingKeys: licensing, Issuer: en.Issuer, IntrospectionURL: en.IntrospectionURL,
		HTTPClient: &http.Client{}, Timeout: en.Timeout, Retries: en.Retries,
		CacheTTL: en.CacheTTL, Grace: en.Grace, Now: a.now,
	})
	if err != nil {
		return nil, nil, err
	}
	if prev != nil && prev.ent != nil {
		c.SetBypass(prev.ent.ActiveBypass())
	}
	return c, keysPEM, nil
}

// entitlementGate checks the request's PoE (SPEC §1 step 4) for the token's
// tenant and installation, and fixes the plan whose quotas apply.
func (a *Agent) entitlementGate(ctx context.Context, rc *requestContext) *Denial {
	inst := ""
	if rc.claims != nil {
		inst = rc.claims.Installation
	}
	v, err := rc.snap.ent.Check(ctx, rc.req.PoE, rc.tenant, inst)
	rc.rec.PoEState, rc.rec.PoEHash = v.State, v.PoEHash
	a.metrics.PoE(v.State)
	if err != nil {
		var e *entitlement.Error
		code := proto.CodeEntitlementDenied
		if errors.As(err, &e) {
			code = e.Code()
		}
		d := deny(code, "Proof-of-Entitlement not accepted", v.Reason)
		if code == proto.CodeEntitlementUnavailable {
			d.Detail = "licensing is unavailable and no recent verdict is cached; retry later"
			d.RetryAfter = 30 * time.Second
		}
		return d
	}
	rc.entitlement = &v
	if v.State == entitlement.StateBypass {
		a.log.Warn("signing under entitlement bypass", zap.String("requestId", rc.id), zap.String("reason", v.BypassReason))
		return nil
	}
	if rc.snap.cfg.PlanByName(v.Plan) == nil {
		return deny(proto.CodeEntitlementDenied, "Proof-of-Entitlement names a plan this agent does not know",
			fmt.Sprintf("unknown plan %q", v.Plan))
	}
	return nil
}

// applyOverrides lays a PoE's quota overrides over its plan.
func applyOverrides(p quota.Plan, q *entitlement.Quotas) quota.Plan {
	if q == nil {
		return p
	}
	if q.QPS != nil {
		p.QPS = *q.QPS
	}
	if q.Burst != nil {
		p.Burst = *q.Burst
	}
	if q.Concurrency != nil {
		p.Concurrency = *q.Concurrency
	}
	if q.MaxArtifactBytes != nil {
		p.MaxArtifactBytes = *q.MaxArtifactBytes
	}
	if q.ArtifactsPerDay != nil {
		p.ArtifactsPerDay = *q.ArtifactsPerDay
	}
	return p
}

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
