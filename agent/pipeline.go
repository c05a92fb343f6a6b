package agent

import (
	"context"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/auth"
	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/internal/peercred"
	"github.com/stellaops/signer-agent/internal/quota"
	"github.com/stellaops/signer-agent/proto"
)

// Gate names, in pipeline order (SPEC §15). They name the gate in audit
// records (Record.Gate) and metrics.
const (
	gateTransport   = "transport"
	gatePeer        = "peer"
	gateRoute       = "route"
	gateOpTok       = "optok"
	gateDPoP        = "dpop"
	gateMTLS        = "mtls"
	gateBody        = "body"
	gateEntitlement = "entitlement"
	gateRelease     = "release"
	gateQuota       = "quota"
	gatePolicy      = "policy"
	gateSign        = "sign"
	gateAudit       = "audit"
	gateAdmin       = "admin"
)

// Denial is a gate's refusal.
type Denial struct {
	Code proto.Code
	// Detail is safe to show the caller; it never echoes tokens or payloads.
	Detail string
	// Reason is the precise cause, for the audit record and logs only.
	Reason     string
	RetryAfter time.Duration
	// Header holds extra response headers (WWW-Authenticate, DPoP-Nonce…).
	Header http.Header
}

func deny(code proto.Code, detail, reason string) *Denial {
	if reason == "" {
		reason = detail
	}
	return &Denial{Code: code, Detail: detail, Reason: reason}
}

// gate is one step of a pipeline: a per-request check.
type gate struct {
	name  string
	check func(ctx context.Context, rc *requestContext) *Denial
}

// socketKind tells which socket a request came in on.
type socketKind string

const (
	socketAPI   socketKind = "api"
	socketAdmin socketKind = "admin"
	// socketTCP marks requests from the optional mTLS listener.
	socketTCP socketKind = "tcp"
)

// requestContext is the state one request carries through the gates.
type requestContext struct {
	id      string
	traceID string
	route   string
	socket  socketKind
	start   time.Time
	r       *http.Request
	peer    *peercred.Cred
	snap    *snapshot
	tenant  string
	token   string
	claims  *auth.Claims
	// ticket is the quota admission, released unless the signature is
	// committed; quota is the response's quota field.
	ticket *quota.Ticket
	// entitlement is the PoE verdict that admitted the request.
	entitlement *entitlement.Verdict
	quota       *proto.Quota
	// clientCert is the verified client certificate on the TCP listener.
	clientCert *x509.Certificate

	body      []byte
	req       *proto.SignRequest
	statement []byte
	keys      []*keyEntry

	// rec accumulates the audit record as gates learn facts.
	rec audit.Record
}

// commonGates run for every request on a socket, before routing.
func (a *Agent) commonGates(sock socketKind) []gate {
	if sock == socketTCP {
		return []gate{{gateTransport, transportGate}, {gatePeer, tcpPeerGate}}
	}
	return []gate{{gateTransport, transportGate}, {gatePeer, a.peerGate}}
}

// signGates is the sign pipeline after transport and peer (SPEC §15):
// OpTok → DPoP → body → entitlement → release → quotas → policy. On the
// TCP listener the certificate binding (mTLS) takes DPoP's place.
func (a *Agent) signGates(sock socketKind) []gate {
	binding := gate{gateDPoP, a.dpopGate}
	if sock == socketTCP {
		binding = gate{gateMTLS, mtlsGate}
	}
	return []gate{
		{gateOpTok, a.optokGate},
		binding,
		{gateBody, bodyGate},
		{gateEntitlement, a.entitlementGate},
		{gateRelease, a.releaseGate},
		{gateQuota, a.quotaGate},
		{gatePolicy, a.policyGate},
	}
}

// runGates runs gates in order and returns the first denial and its gate;
// each gate's latency goes to the metrics.
func (a *Agent) runGates(ctx context.Context, rc *requestContext, gates []gate) (string, *Denial) {
	for _, g := range gates {
		t := time.Now()
		d := g.check(ctx, rc)
		a.metrics.Gate(g.name, time.Since(t))
		if d != nil {
			return g.name, d
		}
	}
	return "", nil
}
