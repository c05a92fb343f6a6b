package agent

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/auth"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/internal/peercred"
	"github.com/stellaops/signer-agent/internal/quota"
	"github.com/stellaops/signer-agent/proto"
)

// Gate names, in pipeline order (SPEC §15). Gates added by later issues
// (optok, dpop, entitlement, release, quota) slot in between.
const (
	gateTransport = "transport"
	gatePeer      = "peer"
	gateBody      = "body"
	gatePolicy    = "policy"
	gateRoute     = "route"
	gateSign      = "sign"
	gateAudit     = "audit"
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

// gate is one step of a pipeline.
type gate struct {
	name  string
	check func(ctx context.Context, rc *requestContext) *Denial
}

// socketKind tells which socket a request came in on.
type socketKind string

const (
	socketAPI   socketKind = "api"
	socketAdmin socketKind = "admin"
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

// transportGate enforces the pseudo Host, refuses browser-originated
// requests and bodies declared over the cap.
func transportGate(_ context.Context, rc *requestContext) *Denial {
	r := rc.r
	if r.Host != proto.Host {
		return deny(proto.CodeInvalidRequest, "Host must be "+proto.Host, fmt.Sprintf("wrong Host header (%d bytes)", len(r.Host)))
	}
	if r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "" {
		return deny(proto.CodePeerNotAllowed, "browser-originated requests are refused", "request carries Origin or Referer")
	}
	max := rc.snap.cfg.Transport.MaxBodyBytes
	if r.ContentLength > max {
		return deny(proto.CodePayloadTooLarge, fmt.Sprintf("request body over %d bytes", max), fmt.Sprintf("Content-Length %d over cap %d", r.ContentLength, max))
	}
	return nil
}

// peerGate checks the SO_PEERCRED identity against the socket's allowlist.
func (a *Agent) peerGate(_ context.Context, rc *requestContext) *Denial {
	if rc.peer == nil {
		return deny(proto.CodePeerNotAllowed, "caller identity unknown", "no peer credentials on connection")
	}
	allow := a.peerAllow(rc.snap.cfg, rc.socket)
	if !allow.Allows(rc.peer.UID, rc.peer.GID, rc.peer.Groups) {
		return deny(proto.CodePeerNotAllowed, "caller is not allowed on this socket",
			fmt.Sprintf("uid %d gid %d groups %v pid %d not in %s allowlist", rc.peer.UID, rc.peer.GID, rc.peer.Groups, rc.peer.PID, rc.socket))
	}
	return nil
}

// defaultPeers allows root and the agent's own uid.
func (a *Agent) peerAllow(cfg *config.Config, s socketKind) *config.PeerAllow {
	p := cfg.Peers.Allow
	if s == socketAdmin {
		p = cfg.Peers.Admin
	}
	if p != nil {
		return p
	}
	return &config.PeerAllow{UIDs: []uint32{0, uint32(selfUID)}}
}

// bodyGate reads the body under the cap, decodes and validates the sign
// request strictly and builds the canonical statement.
func bodyGate(_ context.Context, rc *requestContext) *Denial {
	max := rc.snap.cfg.Transport.MaxBodyBytes
	body, err := readBody(rc.r, max)
	if err != nil {
		return deny(proto.CodeInvalidRequest, "could not read request body", "read body: "+err.Error())
	}
	if int64(len(body)) > max {
		return deny(proto.CodePayloadTooLarge, fmt.Sprintf("request body over %d bytes", max), "body over cap while reading")
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

func trimInvalid(err error) string {
	s := err.Error()
	p := proto.ErrInvalidRequest.Error() + ": "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// policyGate checks the predicate type against the tenant's allowlist and
// chooses the signing keys.
func (a *Agent) policyGate(_ context.Context, rc *requestContext) *Denial {
	cfg := rc.snap.cfg
	if !rc.snap.predicates[rc.tenant][rc.req.PredicateType] {
		return deny(proto.CodePredicateNotAllowed, "predicate type not allowed for this tenant",
			fmt.Sprintf("predicate type %q not allowed for tenant %q", rc.req.PredicateType, rc.tenant))
	}
	if rc.req.Mode() == proto.ModeKeyless {
		return deny(proto.CodeKeyUnavailable, "keyless signing is not configured on this agent", "keyless requested; no Fulcio configured")
	}
	ids := rc.req.KeyIDs()
	if len(ids) == 0 {
		t := cfg.Tenant(rc.tenant)
		if t == nil || t.DefaultKey == "" {
			return deny(proto.CodeKeyUnavailable, "tenant has no default key; name one in options.keyIds", errNoDefaultKey.Error())
		}
		ids = []string{t.DefaultKey}
	}
	now := a.now()
	for _, id := range ids {
		k, ok := rc.snap.keys[id]
		if !ok {
			return deny(proto.CodeNotFound, "unknown key id", fmt.Sprintf("unknown key id %q", id))
		}
		if !k.serves(rc.tenant) {
			return deny(proto.CodeKeyUnavailable, "key not available to this tenant", fmt.Sprintf("key %q does not serve tenant %q", id, rc.tenant))
		}
		if why := k.usable(now); why != "" {
			return deny(proto.CodeKeyUnavailable, why, fmt.Sprintf("key %q: %s", id, why))
		}
		rc.keys = append(rc.keys, k)
		rc.rec.KeyIDs = append(rc.rec.KeyIDs, id)
		rc.rec.KeySources = append(rc.rec.KeySources, k.source)
	}
	return nil
}

// maxAdminBody caps admin request bodies.
const maxAdminBody = 64 << 10

// decodeAdminBody strictly decodes an admin request's JSON body into v. An
// empty body is an error unless allowEmpty (then v keeps its zero value).
func decodeAdminBody(r *http.Request, v any, allowEmpty bool) error {
	b, err := readBody(r, maxAdminBody)
	if err != nil {
		return err
	}
	if allowEmpty && len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return proto.DecodeStrict(b, v)
}

// readBody reads at most max+1 bytes of the body, in one allocation when
// the request declares its length.
func readBody(r *http.Request, max int64) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= max {
		buf := make([]byte, n)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(io.LimitReader(r.Body, max+1))
}
