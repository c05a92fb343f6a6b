package agent

import (
	"context"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/auth"
	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/internal/export"
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
	// gateAuditLimit marks the summary record of denials a peer sent
	// over its denial-record rate.
	gateAuditLimit = "audit-limit"
)

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
	// keyless is set when the request signs keylessly (with keys, if it
	// named any, signing too): gate_keyless.go.
	keyless *keylessBackend
	// export is the built manifest and provenance of an export request
	// (rc.statement is its statement; rc.req its members shared with a
	// sign request).
	export *export.Built

	// onDone run when the request has been answered (budget releases).
	onDone []func()

	// rec accumulates the audit record as gates learn facts.
	rec audit.Record
}
