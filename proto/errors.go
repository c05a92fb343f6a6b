package proto

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// Code is a stable machine-readable error code (SPEC §4.3).
type Code string

// Error codes. Each maps to exactly one HTTP status (see Status).
const (
	CodeInvalidRequest            Code = "invalid_request"
	CodePredicateNotAllowed       Code = "predicate_not_allowed"
	CodeNotFound                  Code = "not_found"
	CodeMethodNotAllowed          Code = "method_not_allowed"
	CodePayloadTooLarge           Code = "payload_too_large"
	CodeInvalidToken              Code = "invalid_token"
	CodeInvalidDPoPProof          Code = "invalid_dpop_proof"
	CodeUseDPoPNonce              Code = "use_dpop_nonce"
	CodePeerNotAllowed            Code = "peer_not_allowed"
	CodeInsufficientScope         Code = "insufficient_scope"
	CodeTenantMismatch            Code = "tenant_mismatch"
	CodeEntitlementDenied         Code = "entitlement_denied"
	CodeReleaseUntrusted          Code = "release_untrusted"
	CodeKeyUnavailable            Code = "key_unavailable"
	CodeArtifactTooLarge          Code = "artifact_too_large"
	CodePlanThrottled             Code = "plan_throttled"
	CodeQuotaExhausted            Code = "quota_exhausted"
	CodeEntitlementUnavailable    Code = "entitlement_unavailable"
	CodeSigningBackendUnavailable Code = "signing_backend_unavailable"
	CodeAuditUnavailable          Code = "audit_unavailable"
	CodeIdempotencyKeyReused      Code = "idempotency_key_reused"
	CodeAgentBusy                 Code = "agent_busy"
	CodeQuotaUnavailable          Code = "quota_unavailable"
	CodeInternalError             Code = "internal_error"
)

var codeInfo = map[Code]struct {
	status int
	title  string
}{
	CodeInvalidRequest:            {http.StatusBadRequest, "Invalid request"},
	CodePredicateNotAllowed:       {http.StatusBadRequest, "Predicate type not allowed"},
	CodeNotFound:                  {http.StatusNotFound, "Not found"},
	CodeMethodNotAllowed:          {http.StatusMethodNotAllowed, "Method not allowed"},
	CodePayloadTooLarge:           {http.StatusRequestEntityTooLarge, "Request body too large"},
	CodeInvalidToken:              {http.StatusUnauthorized, "Invalid token"},
	CodeInvalidDPoPProof:          {http.StatusUnauthorized, "Invalid DPoP proof"},
	CodeUseDPoPNonce:              {http.StatusUnauthorized, "DPoP nonce required"},
	CodePeerNotAllowed:            {http.StatusForbidden, "Peer not allowed"},
	CodeInsufficientScope:         {http.StatusForbidden, "Insufficient scope"},
	CodeTenantMismatch:            {http.StatusForbidden, "Tenant mismatch"},
	CodeEntitlementDenied:         {http.StatusForbidden, "Entitlement denied"},
	CodeReleaseUntrusted:          {http.StatusForbidden, "Scanner release not trusted"},
	CodeKeyUnavailable:            {http.StatusForbidden, "Key unavailable"},
	CodeArtifactTooLarge:          {http.StatusRequestEntityTooLarge, "Artifact too large for plan"},
	CodePlanThrottled:             {http.StatusTooManyRequests, "Plan rate limit reached"},
	CodeQuotaExhausted:            {http.StatusTooManyRequests, "Daily quota exhausted"},
	CodeEntitlementUnavailable:    {http.StatusServiceUnavailable, "Entitlement unavailable"},
	CodeSigningBackendUnavailable: {http.StatusServiceUnavailable, "Signing backend unavailable"},
	CodeAuditUnavailable:          {http.StatusServiceUnavailable, "Audit log unavailable"},
	CodeIdempotencyKeyReused:      {http.StatusUnprocessableEntity, "Idempotency key reused"},
	CodeAgentBusy:                 {http.StatusServiceUnavailable, "Agent busy"},
	CodeQuotaUnavailable:          {http.StatusServiceUnavailable, "Quota store unavailable"},
	CodeInternalError:             {http.StatusInternalServerError, "Internal error"},
}

// Codes returns every defined code, for tests and documentation.
func Codes() []Code {
	out := make([]Code, 0, len(codeInfo))
	for c := range codeInfo {
		out = append(out, c)
	}
	return out
}

// Status is the HTTP status for the code (500 for an unknown code).
func (c Code) Status() int {
	if i, ok := codeInfo[c]; ok {
		return i.status
	}
	return http.StatusInternalServerError
}

// Title is the short human title of the code.
func (c Code) Title() string {
	if i, ok := codeInfo[c]; ok {
		return i.title
	}
	return "Error"
}

// Known reports whether c is one of the spec's codes.
func (c Code) Known() bool { _, ok := codeInfo[c]; return ok }

// ProblemTypeBase prefixes the problem "type" URI; the code is appended.
const ProblemTypeBase = "https://stella-ops.org/problems/signer/"

// Problem is an RFC 9457 problem document with the agent's stable code.
type Problem struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail,omitempty"`
	Code      Code   `json:"code"`
	RequestID string `json:"requestId,omitempty"`
}

// NewProblem fills type, title and status from the code.
func NewProblem(code Code, detail, requestID string) *Problem {
	return &Problem{
		Type:      ProblemTypeBase + string(code),
		Title:     code.Title(),
		Status:    code.Status(),
		Detail:    detail,
		Code:      code,
		RequestID: requestID,
	}
}

// Error implements error so a Problem can travel as one.
func (p *Problem) Error() string {
	if p.Detail != "" {
		return fmt.Sprintf("signer-agent: %s (%d): %s", p.Code, p.Status, p.Detail)
	}
	return fmt.Sprintf("signer-agent: %s (%d)", p.Code, p.Status)
}

// DecodeProblem parses a problem document. Unknown fields are tolerated here
// (the client must accept problem documents from newer agents).
func DecodeProblem(b []byte) (*Problem, error) {
	var p Problem
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decode problem document: %w", err)
	}
	if p.Code == "" {
		return nil, fmt.Errorf("decode problem document: missing code")
	}
	return &p, nil
}
