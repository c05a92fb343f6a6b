package agent

import (
	"context"
	"errors"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
)

// bodyGate reads the body under the cap, decodes and validates the sign
// request strictly and builds the canonical statement.
func (a *Agent) bodyGate(_ context.Context, rc *requestContext) *Denial {
	if d := a.readBody(rc); d != nil {
		return d
	}
	req, err := proto.DecodeSignRequest(rc.body)
	if err != nil {
		return deny(proto.CodeInvalidRequest, trimInvalid(err), err.Error())
	}
	return useRequest(rc, req)
}

// readBody reads the request body into rc.body, under the transport cap
// and the in-flight memory budget (whose charge is given back when the
// request is answered).
func (a *Agent) readBody(rc *requestContext) *Denial {
	max := rc.snap.cfg.Transport.MaxBodyBytes
	body, release, err := a.budget.read(rc.r, max)
	rc.onDone = append(rc.onDone, release)
	if err != nil {
		if errors.Is(err, errBodyBudget) {
			a.metrics.BodyBudgetRefused()
		}
		return bodyDenial(err, max)
	}
	rc.body = body
	return nil
}

// useRequest makes a decoded sign request rc's: it notes the request's
// facts in the audit record and builds the canonical statement. A batch
// item goes through it as a /sign/dsse body does.
func useRequest(rc *requestContext, req *proto.SignRequest) *Denial {
	rc.req = req
	rc.rec.PredicateType = req.PredicateType
	rc.rec.ScannerDigest = req.ScannerImageDigest
	for _, s := range req.Subject {
		for alg, d := range s.Digest {
			rc.rec.SubjectDigests = append(rc.rec.SubjectDigests, alg+":"+d)
		}
	}
	st, err := attest.BuildStatement(req)
	if err != nil {
		if errors.Is(err, attest.ErrPolicyConflict) {
			return deny(proto.CodeInvalidRequest, "predicate already has a policy member; do not also send policy", err.Error())
		}
		return deny(proto.CodeInvalidRequest, "predicate cannot be canonicalised", err.Error())
	}
	rc.statement = st
	rc.rec.PayloadDigest = attest.Digest(st)
	return nil
}
