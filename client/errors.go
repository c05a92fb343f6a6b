package client

import (
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stellaops/signer-agent/proto"
)

// Error is a non-2xx answer from the agent.
//
// When the agent sends an RFC 9457 problem document (every error it makes
// itself), Code is the document's stable code. When the answer is not a
// problem document (a proxy, a crashed handler, a foreign server on the
// socket), Code is empty and Detail describes the status and content type.
//
// Use errors.Is with the sentinels below to branch on the code, and
// errors.As to read the status, detail or Retry-After.
type Error struct {
	// Status is the HTTP status code of the response.
	Status int
	// Code is the problem document's code, or "" when the response was
	// not a problem document. A newer agent may send codes this package
	// does not know; they are kept as sent.
	Code proto.Code
	// Title is the problem document's short title.
	Title string
	// Detail explains this occurrence. Agent details never contain
	// tokens, PINs or payload contents.
	Detail string
	// RequestID is the problem's requestId, else the X-Request-Id
	// response header.
	RequestID string
	// RetryAfter is the Retry-After response header (delay-seconds or an
	// HTTP date), zero when absent or unparsable.
	RetryAfter time.Duration
	// Header holds the response headers (for example DPoP-Nonce,
	// WWW-Authenticate or Allow). Nil for the sentinels.
	Header http.Header
}

// Error formats the code, status, detail and request id.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("signer-agent: ")
	switch {
	case e.Code != "" && e.Status != 0:
		fmt.Fprintf(&b, "%s (HTTP %d)", e.Code, e.Status)
	case e.Code != "":
		b.WriteString(string(e.Code))
	default:
		fmt.Fprintf(&b, "HTTP %d", e.Status)
		if t := http.StatusText(e.Status); t != "" {
			b.WriteString(" " + t)
		}
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request %s)", e.RequestID)
	}
	return b.String()
}

// Is reports whether target is a code-only *Error (such as the sentinels
// ErrPeerNotAllowed, ErrPlanThrottled, …) with the same code as e. It makes
// errors.Is(err, client.ErrPlanThrottled) true for any throttling error.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok || t == nil || t.Code == "" {
		return false
	}
	if t.Status != 0 || t.Title != "" || t.Detail != "" || t.RequestID != "" || t.RetryAfter != 0 || t.Header != nil {
		return false
	}
	return e.Code == t.Code
}

// Sentinels, one per proto code (SPEC §4.3), for errors.Is.
// Do not modify them.
var (
	ErrInvalidRequest            = &Error{Code: proto.CodeInvalidRequest}
	ErrPredicateNotAllowed       = &Error{Code: proto.CodePredicateNotAllowed}
	ErrNotFound                  = &Error{Code: proto.CodeNotFound}
	ErrMethodNotAllowed          = &Error{Code: proto.CodeMethodNotAllowed}
	ErrPayloadTooLarge           = &Error{Code: proto.CodePayloadTooLarge}
	ErrInvalidToken              = &Error{Code: proto.CodeInvalidToken}
	ErrInvalidDPoPProof          = &Error{Code: proto.CodeInvalidDPoPProof}
	ErrUseDPoPNonce              = &Error{Code: proto.CodeUseDPoPNonce}
	ErrPeerNotAllowed            = &Error{Code: proto.CodePeerNotAllowed}
	ErrInsufficientScope         = &Error{Code: proto.CodeInsufficientScope}
	ErrTenantMismatch            = &Error{Code: proto.CodeTenantMismatch}
	ErrEntitlementDenied         = &Error{Code: proto.CodeEntitlementDenied}
	ErrReleaseUntrusted          = &Error{Code: proto.CodeReleaseUntrusted}
	ErrKeyUnavailable            = &Error{Code: proto.CodeKeyUnavailable}
	ErrArtifactTooLarge          = &Error{Code: proto.CodeArtifactTooLarge}
	ErrPlanThrottled             = &Error{Code: proto.CodePlanThrottled}
	ErrQuotaExhausted            = &Error{Code: proto.CodeQuotaExhausted}
	ErrEntitlementUnavailable    = &Error{Code: proto.CodeEntitlementUnavailable}
	ErrSigningBackendUnavailable = &Error{Code: proto.CodeSigningBackendUnavailable}
	ErrAuditUnavailable          = &Error{Code: proto.CodeAuditUnavailable}
	ErrIdempotencyKeyReused      = &Error{Code: proto.CodeIdempotencyKeyReused}
	ErrAgentBusy                 = &Error{Code: proto.CodeAgentBusy}
	ErrQuotaUnavailable          = &Error{Code: proto.CodeQuotaUnavailable}
	ErrInternalError             = &Error{Code: proto.CodeInternalError}
)

// maxErrorBody caps how much of an error response is read.
const maxErrorBody = 1 << 20

// newError builds the *Error for a non-2xx response whose body (at most
// maxErrorBody bytes) has been read; truncated reports that the body was
// longer than that.
func newError(resp *http.Response, body []byte, truncated bool) *Error {
	e := &Error{
		Status:     resp.StatusCode,
		RequestID:  resp.Header.Get(proto.HeaderRequestID),
		RetryAfter: parseRetryAfter(resp.Header.Get(proto.HeaderRetryAfter), time.Now()),
		Header:     resp.Header,
	}
	ct := mediaType(resp.Header)
	if ct != proto.MediaTypeProblem {
		e.Detail = describeForeignBody(ct, body)
		return e
	}
	if truncated {
		e.Detail = fmt.Sprintf("problem document longer than %d bytes", maxErrorBody)
		return e
	}
	p, err := proto.DecodeProblem(body)
	if err != nil {
		e.Detail = "malformed problem document: " + err.Error()
		return e
	}
	e.Code, e.Title, e.Detail = p.Code, p.Title, p.Detail
	if p.RequestID != "" {
		e.RequestID = p.RequestID
	}
	return e
}

// describeForeignBody summarises a non-problem error body. Only the first
// line of a text/plain body is kept (trimmed, printable ASCII), so a
// proxy's message helps debugging without flooding logs.
func describeForeignBody(ct string, body []byte) string {
	if ct == "" {
		ct = "no content type"
	}
	msg := "not a problem document (" + ct + ")"
	if ct != "text/plain" {
		return msg
	}
	line, _, _ := strings.Cut(string(body), "\n")
	line = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return -1
		}
		return r
	}, strings.TrimSpace(line))
	if len(line) > 200 {
		line = line[:200] + "…"
	}
	if line != "" {
		msg += ": " + line
	}
	return msg
}

// healthError describes a non-2xx /healthz or /readyz answer that carried a
// Health body: its status and the checks that are not "ok".
func healthError(resp *http.Response, path string, h *proto.Health) *Error {
	var bad []string
	for name, v := range h.Checks {
		if v != "ok" {
			bad = append(bad, name+"="+v)
		}
	}
	sort.Strings(bad)
	detail := fmt.Sprintf("%s reports %q", path, h.Status)
	if len(bad) > 0 {
		detail += " (" + strings.Join(bad, ", ") + ")"
	}
	return &Error{
		Status:     resp.StatusCode,
		Detail:     detail,
		RequestID:  resp.Header.Get(proto.HeaderRequestID),
		RetryAfter: parseRetryAfter(resp.Header.Get(proto.HeaderRetryAfter), time.Now()),
		Header:     resp.Header,
	}
}

// parseRetryAfter reads delay-seconds or an HTTP date (RFC 9110 §10.2.3).
// Anything else, and dates in the past, give zero.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		const maxSeconds = int64(1<<63-1) / int64(time.Second)
		if n > maxSeconds {
			n = maxSeconds
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// mediaType returns the lower-case media type of the Content-Type header
// without parameters, or "" when absent or malformed.
func mediaType(h http.Header) string {
	ct := h.Get("Content-Type")
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return ""
	}
	return mt
}
