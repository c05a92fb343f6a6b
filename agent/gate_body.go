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
// facts in the audit record and builds the canonical statement.
func useRequest(rc *requestContext, req *proto.SignRequest) *Denial {
	noteRequest(rc, req)
	st, d := buildStatement(req)
	if d != nil {
		return d
	}
	useStatement(rc, st)
	return nil
}

// noteRequest makes req rc's request and notes its facts in the audit
// record.
func noteRequest(rc *requestContext, req *proto.SignRequest) {
	rc.req = req
	rc.rec.PredicateType = req.PredicateType
	rc.rec.ScannerDigest = req.ScannerImageDigest
	for _, s := range req.Subject {
		for alg, d := range s.Digest {
			rc.rec.SubjectDigests = append(rc.rec.SubjectDigests, alg+":"+d)
		}
	}
}

// buildStatement builds req's canonical in-toto statement, or the denial
// of a predicate that has none.
func buildStatement(req *proto.SignRequest) ([]byte, *Denial) {
	st, err := attest.BuildStatement(req)
	if err != nil {
		if errors.Is(err, attest.ErrPolicyConflict) {
			return nil, deny(proto.CodeInvalidRequest, "predicate already has a policy member; do not also send policy", err.Error())
		}
		return nil, deny(proto.CodeInvalidRequest, "predicate cannot be canonicalised", err.Error())
	}
	return st, nil
}

// useStatement makes st rc's statement to sign.
func useStatement(rc *requestContext, st []byte) {
	rc.statement = st
	rc.rec.PayloadDigest = attest.Digest(st)
}
