package agent

import (
	"context"
	"crypto/x509"
	"net/http"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/auth"
	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/internal/idempotency"
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
	gateIdempotency = "idempotency"
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
	// batch is the decoded body of /sign/batch; rc.req then holds only
	// the batch's effective poe and scannerImageDigest, for the
	// batch-level gates.
	batch *proto.DecodedBatch
	// batchStatements are the batch items' statements (or body denials),
	// built once by the batch's body gate.
	batchStatements []itemStatement

	// idem is the request's claim on its Idempotency-Key (nil without a
	// key); replay is the kept answer a retry gets instead, set by the
	// idempotency gate, which then ends the pipeline. idemKept says the
	// answer was journaled (not over idempotency.maxBytes).
	idem     *idempotency.Claim
	replay   *idempotency.Entry
	idemKept bool
	// encode, when set by the handler, builds the answer of a signed
	// request before its audit record is appended (so that it can be
	// journaled for retries); answer holds the bytes.
	encode func(*attest.Result) ([]byte, error)
	answer []byte
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
