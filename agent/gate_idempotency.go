package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/idempotency"
	"github.com/stellaops/signer-agent/internal/metrics"
	"github.com/stellaops/signer-agent/proto"
)

// idempotencyGate looks a request's Idempotency-Key up (SPEC §4.6). It
// runs after release and before quotas, so a retry passes the token, proof,
// body, entitlement and release checks again but is never counted again:
//
//   - no key: nothing to do;
//   - a malformed key (or several): 400 invalid_request;
//   - a kept answer to the same request: rc.replay is set and the pipeline
//     ends there (the route writes the replay);
//   - the same key with another request, kept or in flight: 422
//     idempotency_key_reused;
//   - the same request in flight: the gate waits for it, then replays
//     its answer (or, if it failed, serves this one);
//   - otherwise rc.idem claims the key until the request ends; the
//     handler journals a successful answer before its audit record and
//     publishes it once the record is durable.
//
// Keys are per tenant. A request is identified by SHA-256 over its route
// and its body's RFC 8785 canonical form without the PoE (requestHash), so
// a client that re-encodes the same request (other member order, other
// whitespace) or refreshes its PoE still matches.
func (a *Agent) idempotencyGate(ctx context.Context, rc *requestContext) *Denial {
	vals := rc.r.Header.Values(proto.HeaderIdempotencyKey)
	if len(vals) == 0 {
		return nil
	}
	if len(vals) > 1 {
		return deny(proto.CodeInvalidRequest, "send at most one Idempotency-Key header", fmt.Sprintf("%d Idempotency-Key headers", len(vals)))
	}
	if err := proto.ValidateIdempotencyKey(vals[0]); err != nil {
		return deny(proto.CodeInvalidRequest, err.Error(), err.Error())
	}
	c, e, err := a.idem.Begin(ctx, rc.tenant, vals[0], requestHash(rc))
	if err != nil {
		if errors.Is(err, idempotency.ErrKeyReused) {
			a.metrics.Idempotency(rc.route, metrics.IdemReused)
		}
		return idempotencyDenial(err)
	}
	if e != nil {
		rc.replay = e
		return nil
	}
	rc.idem = c
	rc.onDone = append(rc.onDone, c.Abort) // nothing once published
	return nil
}

// requestHash identifies the request for its key: its route and the RFC
// 8785 canonical form of its body without its "poe" members (see
// withoutPoE). It falls back to the raw body when the body has no
// canonical form, which the body gates have already refused for every
// route that takes a key.
func requestHash(rc *requestContext) idempotency.Hash {
	if canon, err := attest.Canonicalize(withoutPoE(rc.body)); err == nil {
		return idempotency.RequestHash(rc.route, canon)
	}
	return idempotency.RequestHash(rc.route+" (raw)", rc.body)
}

// withoutPoE drops the Proof-of-Entitlement from a request body: the top
// level's "poe" and each batch item's. The PoE is a credential, like the
// OpTok and the DPoP proof, which travel in headers: a client that retries
// after refreshing it sends the same request, and the retry still passes
// the entitlement gate with the new one. Anything that does not decode is
// left as it is.
func withoutPoE(body []byte) []byte {
	var top map[string]json.RawMessage
	if json.Unmarshal(body, &top) != nil {
		return body
	}
	delete(top, "poe")
	if raw, ok := top["requests"]; ok {
		var items []json.RawMessage
		if json.Unmarshal(raw, &items) == nil {
			for i, it := range items {
				var m map[string]json.RawMessage
				if json.Unmarshal(it, &m) != nil {
					continue
				}
				if _, ok := m["poe"]; !ok {
					continue
				}
				delete(m, "poe")
				if b, err := json.Marshal(m); err == nil {
					items[i] = b
				}
			}
			if b, err := json.Marshal(items); err == nil {
				top["requests"] = b
			}
		}
	}
	out, err := json.Marshal(top)
	if err != nil {
		return body
	}
	return out
}
