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
	req, err := proto.DecodeSignRequest(body)
	if err != nil {
		return deny(proto.CodeInvalidRequest, trimInvalid(err), err.Error())
	}
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
