package agent

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stellaops/signer-agent/internal/auth"
	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/internal/idempotency"
	"github.com/stellaops/signer-agent/internal/keys/keyless"
	"github.com/stellaops/signer-agent/internal/metrics"
	"github.com/stellaops/signer-agent/internal/quota"
	"github.com/stellaops/signer-agent/proto"
)

// This file maps the errors of the gates' libraries to SPEC §4.3 codes:
// the one place where a library error becomes a wire code.

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

// retryBackend is the Retry-After of signing_backend_unavailable and
// audit_unavailable.
const retryBackend = 5 * time.Second

// authDenial maps an auth error to a denial with WWW-Authenticate.
func authDenial(err error) *Denial {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		return &Denial{Code: proto.CodeInvalidToken, Detail: "token could not be verified", Reason: err.Error(),
			Header: wwwAuthenticate(proto.CodeInvalidToken)}
	}
	d := &Denial{Code: ae.Code, Detail: ae.Detail, Reason: ae.Reason}
	if d.Detail == "" {
		d.Detail = ae.Code.Title()
	}
	switch ae.Code.Status() {
	case http.StatusUnauthorized, http.StatusForbidden:
		if ae.Code == proto.CodeTenantMismatch {
			break
		}
		d.Header = wwwAuthenticate(ae.Code)
	}
	return d
}

// wwwAuthenticate is the DPoP challenge (RFC 9449 §7.1) for a code.
func wwwAuthenticate(code proto.Code) http.Header {
	h := http.Header{}
	h.Set(proto.HeaderWWWAuthenticate, fmt.Sprintf(`DPoP error=%q, algs="ES256 EdDSA"`, string(code)))
	return h
}

// quotaDenial maps a quota refusal to its code, and names the limit for
// the metrics ("" when no plan limit was hit: the shared store is down, or
// the request's context ended).
func quotaDenial(err error) (*Denial, string) {
	d := quota.DenialOf(err)
	if d == nil {
		den := deny(proto.CodeQuotaUnavailable, "quota could not be checked; retry later", "quota: "+err.Error())
		den.RetryAfter = retryBackend
		return den, ""
	}
	if errors.Is(d, quota.ErrUnavailable) {
		den := deny(proto.CodeQuotaUnavailable, "the shared quota store is unreachable; retry later", d.Reason)
		den.RetryAfter = d.RetryAfter
		return den, ""
	}
	code, kind := proto.CodePlanThrottled, metrics.QuotaRate
	switch {
	case errors.Is(d, quota.ErrTooLarge):
		code, kind = proto.CodeArtifactTooLarge, metrics.QuotaSize
	case errors.Is(d, quota.ErrExhausted):
		code, kind = proto.CodeQuotaExhausted, metrics.QuotaDaily
	case errors.Is(d, quota.ErrConcurrency) || errors.Is(d, quota.ErrOverloaded):
		code, kind = proto.CodePlanThrottled, metrics.QuotaConcurrency
	}
	den := deny(code, d.Err.Error(), d.Reason)
	den.RetryAfter = d.RetryAfter
	return den, kind
}

// entitlementDenial maps a refused or unavailable PoE verdict.
func entitlementDenial(err error, v entitlement.Verdict) *Denial {
	var e *entitlement.Error
	code := proto.CodeEntitlementDenied
	if errors.As(err, &e) {
		code = e.Code()
	}
	d := deny(code, "Proof-of-Entitlement not accepted", v.Reason)
	if code == proto.CodeEntitlementUnavailable {
		d.Detail = "licensing is unavailable and no recent verdict is cached; retry later"
		d.RetryAfter = 30 * time.Second
	}
	return d
}

// signingDenial is the refusal when every key (and the fallback) failed.
// A keyless failure names its cause and carries its own Retry-After
// (Fulcio's or the TSA's, else 5 s; 30 s for the identity token).
func signingDenial(err error) *Denial {
	d := deny(proto.CodeSigningBackendUnavailable, "the signing backend failed; retry later", err.Error())
	d.RetryAfter = retryBackend
	if ra := keyless.RetryAfter(err); ra > 0 {
		d.RetryAfter = ra
		switch {
		case errors.Is(err, keyless.ErrFulcioUnavailable):
			d.Detail = "keyless signing is unavailable: Fulcio did not issue a certificate; retry later"
		case errors.Is(err, keyless.ErrTSAUnavailable):
			d.Detail = "keyless signing is unavailable: the timestamp authority did not answer; retry later"
		case errors.Is(err, keyless.ErrIdentityUnavailable):
			d.Detail = "keyless signing is unavailable: the agent has no usable identity token; retry later"
		}
	}
	return d
}

// auditDenial is the refusal when the allow record could not be made
// durable: the signature is discarded.
func auditDenial(err error) *Denial {
	d := deny(proto.CodeAuditUnavailable, "the audit log is unavailable; nothing was signed", err.Error())
	d.RetryAfter = retryBackend
	return d
}

// trimInvalid drops the "invalid request: " prefix of a proto validation
// error, for the problem detail.
func trimInvalid(err error) string {
	s := err.Error()
	p := proto.ErrInvalidRequest.Error() + ": "
	if len(s) > len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// bodyDenial maps a failure to read the request body.
func bodyDenial(err error, max int64) *Denial {
	switch {
	case errors.Is(err, errBodyBudget):
		d := deny(proto.CodeAgentBusy, "the agent is busy with other large requests; retry later", "body does not fit the in-flight memory budget")
		d.RetryAfter = time.Second
		return d
	case errors.Is(err, errBodyTooLarge):
		return deny(proto.CodePayloadTooLarge, fmt.Sprintf("request body over %d bytes", max), "body over cap while reading")
	}
	return deny(proto.CodeInvalidRequest, "could not read request body", "read body: "+err.Error())
}

// idempotencyDenial maps an idempotency lookup failure: a key reused with
// another request, or the caller's context ending while it waited for the
// first request with its key.
func idempotencyDenial(err error) *Denial {
	if errors.Is(err, idempotency.ErrKeyReused) {
		return deny(proto.CodeIdempotencyKeyReused, "this Idempotency-Key was used with a different request",
			"idempotency key reused with a different request")
	}
	d := deny(proto.CodeAgentBusy, "a request with this Idempotency-Key is still being served; retry later", err.Error())
	d.RetryAfter = time.Second
	return d
}

// journalDenial is the refusal when a signed answer could not be made
// durable in the idempotency journal: the signature is discarded (nothing
// was audited as allowed), and a retry with the same key may try again.
func journalDenial(err error) *Denial {
	d := deny(proto.CodeAuditUnavailable, "the idempotency journal is unavailable; nothing was signed", err.Error())
	d.RetryAfter = retryBackend
	return d
}

// exportDenial maps an error of decoding or building an export request
// (export.Code): invalid_request for a request defect, tenant_mismatch
// when the agent has no usable installation identity to name as the
// builder, internal_error otherwise (details only in the audit record).
func exportDenial(err error) *Denial {
	switch code := export.Code(err); code {
	case proto.CodeInvalidRequest:
		return deny(code, trimInvalid(err), err.Error())
	case proto.CodeTenantMismatch:
		return deny(code, "this agent has no installation identity to name as the export's builder", "export builder: "+err.Error())
	default:
		return deny(code, "", "export build: "+err.Error())
	}
}
