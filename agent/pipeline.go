package agent

import (
	"context"
	"time"
)

// commonGates run for every request on a socket, before routing.
func (a *Agent) commonGates(sock socketKind) []gate {
	if sock == socketTCP {
		return []gate{{gateTransport, transportGate}, {gatePeer, tcpPeerGate}}
	}
	return []gate{{gateTransport, transportGate}, {gatePeer, a.peerGate}}
}

// bindingGate is the token's proof of possession on sock: DPoP on the
// Unix socket, the client certificate (mTLS) on the TCP listener.
func (a *Agent) bindingGate(sock socketKind) gate {
	if sock == socketTCP {
		return gate{gateMTLS, mtlsGate}
	}
	return gate{gateDPoP, a.dpopGate}
}

// signGates is the sign pipeline after transport and peer (SPEC §15):
// OpTok → DPoP → body → entitlement → release → quotas → policy. On the
// TCP listener the certificate binding (mTLS) takes DPoP's place.
func (a *Agent) signGates(sock socketKind) []gate {
	return []gate{
		{gateOpTok, a.optokGate},
		a.bindingGate(sock),
		{gateBody, a.bodyGate},
		{gateEntitlement, a.entitlementGate},
		{gateRelease, a.releaseGate},
		{gateIdempotency, a.idempotencyGate},
		{gateQuota, a.quotaGate},
		{gatePolicy, a.policyGate},
	}
}

// batchGates is the /sign/batch pipeline after transport and peer (SPEC
// §4.5): the token, the binding, the batch's body, its entitlement and its
// release are checked once for the batch, then its Idempotency-Key is
// looked up; body validation, quotas, policy, signing and audit then run
// per item (handleBatch).
func (a *Agent) batchGates(sock socketKind) []gate {
	return []gate{
		{gateOpTok, a.optokGate},
		a.bindingGate(sock),
		{gateBody, a.batchBodyGate},
		{gateEntitlement, a.entitlementGate},
		{gateRelease, a.releaseGate},
		{gateIdempotency, a.idempotencyGate},
	}
}

// exportGates is the export pipeline (SPEC §4.4): signGates with the
// export body gate in place of the sign body gate.
func (a *Agent) exportGates(sock socketKind) []gate {
	gs := a.signGates(sock)
	for i := range gs {
		if gs[i].name == gateBody {
			gs[i].check = a.exportBodyGate
		}
	}
	return gs
}

// runGates runs gates in order and returns the first denial and its gate;
// each gate's latency goes to the metrics. A gate that found a kept answer
// for the request (rc.replay, the idempotency gate) ends the run: the
// route answers with it.
func (a *Agent) runGates(ctx context.Context, rc *requestContext, gates []gate) (string, *Denial) {
	for _, g := range gates {
		t := time.Now()
		d := g.check(ctx, rc)
		a.metrics.Gate(g.name, time.Since(t))
		if d != nil {
			return g.name, d
		}
		if rc.replay != nil {
			break
		}
	}
	return "", nil
}
