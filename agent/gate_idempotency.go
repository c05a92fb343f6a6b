package agent

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strconv"

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
// Keys are per tenant. A request is identified by what is signed and how,
// without its PoE (requestHash), so a client that re-encodes the same
// request (other member order, other whitespace) or refreshes its PoE
// still matches.
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

// requestHash identifies the request for its key, without its
// Proof-of-Entitlement. The PoE is a credential, like the OpTok and the
// DPoP proof, which travel in headers: a client that retries after
// refreshing it sends the same request (and the retry passes the
// entitlement gate with the new one).
//
// A sign request is identified by what the agent signs and how: SHA-256
// over the route, the canonical statement (subjects, predicate type,
// predicate and policy, in RFC 8785 form), the scanner digest and the
// options (mode, key ids); a batch by the same for each item in order (an
// item that failed validation by its raw bytes) and the batch's scanner
// digest. So a client that re-encodes the same request (member order,
// whitespace, number spelling) still matches, and the hash costs no
// second parse. Any other route is identified by the RFC 8785 form of its
// whole body (the raw body when it has none).
func requestHash(rc *requestContext) idempotency.Hash {
	switch {
	case rc.batch != nil:
		h := newFieldHash(rc.route)
		h.field([]byte(rc.batch.ScannerImageDigest))
		for i, it := range rc.batch.Items {
			if st := rc.batchStatements[i].statement; st != nil {
				h.field([]byte("item"))
				h.field(st)
				h.options(it.Request)
			} else {
				h.field([]byte("raw"))
				h.field(it.Raw)
			}
		}
		return h.sum()
	case rc.statement != nil && rc.req != nil:
		h := newFieldHash(rc.route)
		h.field([]byte(rc.req.ScannerImageDigest))
		h.field(rc.statement)
		h.options(rc.req)
		return h.sum()
	}
	if canon, err := attest.Canonicalize(rc.body); err == nil {
		return idempotency.RequestHash(rc.route, canon)
	}
	return idempotency.RequestHash(rc.route+" (raw)", rc.body)
}

// fieldHash hashes length-prefixed fields, so no two field lists hash
// alike by moving bytes between fields.
type fieldHash struct{ h hash.Hash }

func newFieldHash(route string) *fieldHash {
	f := &fieldHash{sha256.New()}
	f.field([]byte("signer-agent idempotency v1"))
	f.field([]byte(route))
	return f
}

func (f *fieldHash) field(b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	f.h.Write(n[:])
	f.h.Write(b)
}

// options hashes a request's signing mode and key ids.
func (f *fieldHash) options(r *proto.SignRequest) {
	f.field([]byte(r.Mode()))
	ids := r.KeyIDs()
	f.field([]byte(strconv.Itoa(len(ids))))
	for _, id := range ids {
		f.field([]byte(id))
	}
}

func (f *fieldHash) sum() idempotency.Hash {
	var out idempotency.Hash
	f.h.Sum(out[:0])
	return out
}
