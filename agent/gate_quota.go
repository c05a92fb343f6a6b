package agent

import (
	"context"

	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/internal/quota"
	"github.com/stellaops/signer-agent/proto"
)

// planFor returns the plan whose quotas apply: the one the PoE names, with
// the PoE's overrides; under an emergency bypass (no PoE verdict) the
// tenant's configured plan; no plan means no plan limits.
func planFor(rc *requestContext) (quota.Plan, bool) {
	name := ""
	var over *entitlement.Quotas
	if v := rc.entitlement; v != nil && v.State != entitlement.StateBypass {
		name, over = v.Plan, v.Quotas
	} else if t := rc.snap.cfg.Tenant(rc.tenant); t != nil {
		name = t.Plan
	}
	p := rc.snap.cfg.PlanByName(name)
	if p == nil {
		return quota.Plan{}, false
	}
	return applyOverrides(quota.Plan{Name: p.Name, QPS: p.QPS, Burst: p.Burst, Concurrency: p.Concurrency,
		MaxArtifactBytes: p.MaxArtifactBytes, ArtifactsPerDay: p.ArtifactsPerDay}, over), true
}

// quotaGate applies the plan's limits (SPEC §1 step 6) to the canonical
// statement; the ticket is committed when the signature is audited and
// released on every other outcome.
func (a *Agent) quotaGate(ctx context.Context, rc *requestContext) *Denial {
	p, ok := planFor(rc)
	if ok {
		rc.rec.Plan = p.Name
	}
	t, err := a.quota.AdmitN(ctx, rc.tenant, p, int64(len(rc.statement)), 1)
	if err != nil {
		d, kind := quotaDenial(err)
		if kind != "" {
			a.metrics.QuotaHit(rc.tenant, p.Name, kind)
		}
		return d
	}
	rc.ticket = t
	if ok && p.ArtifactsPerDay > 0 {
		rc.quota = &proto.Quota{Plan: p.Name, RemainingToday: t.Remaining}
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
