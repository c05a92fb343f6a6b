package agent

import (
	"context"
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
// and its body's RFC 8785 canonical form, so a client that re-encodes the
// same request (other member order, other whitespace) still matches.
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

// requestHash identifies the request for its key: its route and its
// body's canonical form (the raw body when it has none, which the body
// gates have already refused for every route that takes a key).
func requestHash(rc *requestContext) idempotency.Hash {
	if canon, err := attest.Canonicalize(rc.body); err == nil {
		return idempotency.RequestHash(rc.route, canon)
	}
	return idempotency.RequestHash(rc.route+" (raw)", rc.body)
}
