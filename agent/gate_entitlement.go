package agent

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/proto"
)

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
		return entitlementDenial(err, v)
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
