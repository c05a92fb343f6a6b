package agent

import (
	"time"

	"github.com/stellaops/signer-agent/internal/quota"
	"github.com/stellaops/signer-agent/proto"
)

// readiness checks what signing needs: an active key (or keyless
// signing), the Authority's keys, a writable audit log; it notes an active
// entitlement bypass and the keyless backend's health.
func (a *Agent) readiness(snap *snapshot) proto.Health {
	h := proto.Health{Status: "ok", Version: Version, Checks: map[string]string{"config": "ok"}}
	down := func(check, why string) {
		h.Checks[check] = why
		h.Status = "unavailable"
	}
	active := 0
	for id, k := range snap.keys {
		if k.cfg.Status != proto.KeyStatusActive {
			continue
		}
		active++
		if k.pending != nil {
			down("key:"+id, "backend unavailable, retrying: "+oneLine(k.pending.Error()))
			continue
		}
		if l, ok := k.key.(interface{ Unlocked() bool }); ok && !l.Unlocked() {
			down("key:"+id, "locked (POST /admin/v1/keys/"+id+"/unlock)")
		}
		if why := k.certificateProblem(a.now()); why != "" {
			down("key:"+id, why)
		}
	}
	switch {
	case active > 0:
		h.Checks["keys"] = "ok"
	case snap.keyless != nil:
		h.Checks["keys"] = "ok (no keyful key; keyless signing only)"
	default:
		down("keys", "no active key")
	}
	if snap.keyless != nil {
		a.keylessReadiness(snap, active, h.Checks, down)
	}
	if snap.auth != nil {
		st := snap.auth.Status()
		switch {
		case st.Published == 0:
			down("authority", "no usable JWKS key")
		case st.LastError != nil:
			// Still serving from the cached key set.
			h.Checks["authority"] = "ok (last refresh failed; serving cached keys)"
		default:
			h.Checks["authority"] = "ok"
		}
	}
	if err := a.auditor.Ready(); err != nil {
		down("audit", oneLine(err.Error()))
	} else {
		h.Checks["audit"] = "ok"
	}
	if qs, ok := a.quota.(quotaStatus); ok {
		switch st := qs.Status(); st.Mode {
		case quota.ModeShared:
			h.Checks["quota"] = "ok (shared store)"
		case quota.ModeLocalShare:
			h.Checks["quota"] = "ok (store unreachable since " + st.Since.UTC().Format(time.RFC3339) + "; serving this node's share: " + oneLine(st.Err) + ")"
		default:
			down("quota", "shared store unreachable, requests refused (quota_unavailable): "+oneLine(st.Err))
		}
	}
	if snap.ent != nil {
		if b := snap.ent.ActiveBypass(); b != nil {
			h.Checks["entitlement"] = "bypass active until " + b.Until.UTC().Format(time.RFC3339)
		} else {
			h.Checks["entitlement"] = "ok"
		}
	}
	return h
}
