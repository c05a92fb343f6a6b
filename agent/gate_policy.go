package agent

import (
	"context"
	"fmt"

	"github.com/stellaops/signer-agent/proto"
)

// policyGate checks the predicate type against the tenant's allowlist and
// chooses the signing keys.
func (a *Agent) policyGate(_ context.Context, rc *requestContext) *Denial {
	cfg := rc.snap.cfg
	if !rc.snap.predicates[rc.tenant][rc.req.PredicateType] {
		return deny(proto.CodePredicateNotAllowed, "predicate type not allowed for this tenant",
			fmt.Sprintf("predicate type %q not allowed for tenant %q", rc.req.PredicateType, rc.tenant))
	}
	if d := keylessPolicy(rc); d != nil {
		return d
	}
	ids := rc.req.KeyIDs()
	if len(ids) == 0 {
		if rc.keyless != nil {
			return nil // keyless alone
		}
		t := cfg.Tenant(rc.tenant)
		if t == nil || t.DefaultKey == "" {
			return deny(proto.CodeKeyUnavailable, "tenant has no default key; name one in options.keyIds", errNoDefaultKey.Error())
		}
		ids = []string{t.DefaultKey}
	}
	now := a.now()
	for _, id := range ids {
		k, ok := rc.snap.keys[id]
		if !ok {
			return deny(proto.CodeNotFound, "unknown key id", fmt.Sprintf("unknown key id %q", id))
		}
		if !k.serves(rc.tenant) {
			return deny(proto.CodeKeyUnavailable, "key not available to this tenant", fmt.Sprintf("key %q does not serve tenant %q", id, rc.tenant))
		}
		if why := k.usable(now); why != "" {
			return deny(proto.CodeKeyUnavailable, why, fmt.Sprintf("key %q: %s", id, why))
		}
		rc.keys = append(rc.keys, k)
		rc.rec.KeyIDs = append(rc.rec.KeyIDs, id)
		rc.rec.KeySources = append(rc.rec.KeySources, k.source)
		rc.rec.KeyFingerprints = append(rc.rec.KeyFingerprints, k.fingerprint)
	}
	return nil
}
