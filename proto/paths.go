package proto

import "net/url"

// API socket paths.
const (
	PathSignDSSE   = "/api/v1/signer/sign/dsse"
	PathSignExport = "/api/v1/signer/sign/export"
	PathSignBatch  = "/api/v1/signer/sign/batch"
	PathReferrers  = "/api/v1/signer/verify/referrers"
	PathKeys       = "/api/v1/signer/keys"
	PathHealthz    = "/healthz"
	PathReadyz     = "/readyz"
)

// Admin socket paths.
const (
	PathAdminAudit = "/admin/v1/audit"
	// PathAdminAuditExport copies closed audit segments out for shipping.
	PathAdminAuditExport = "/admin/v1/audit/export"
	PathAdminReload      = "/admin/v1/reload"
	PathAdminKeys        = "/admin/v1/keys/" // + {id}/rotate|revoke|unlock
	// The key actions, as net/http patterns; AdminKeyPath fills in {id}.
	PathAdminKeyRotate = "/admin/v1/keys/{id}/rotate"
	PathAdminKeyRevoke = "/admin/v1/keys/{id}/revoke"
	PathAdminKeyUnlock = "/admin/v1/keys/{id}/unlock"
	PathAdminBypass    = "/admin/v1/entitlement/bypass"
	PathAdminMetrics   = "/metrics"
)

// AdminKeyPath is the admin path of a key action ("rotate", "revoke",
// "unlock") on key id; the id is path-escaped.
func AdminKeyPath(id, action string) string {
	return PathAdminKeys + url.PathEscape(id) + "/" + action
}

// Header names used on the wire.
const (
	HeaderAuthorization   = "Authorization"
	HeaderDPoP            = "DPoP"
	HeaderDPoPNonce       = "DPoP-Nonce"
	HeaderWWWAuthenticate = "WWW-Authenticate"
	HeaderRequestID       = "X-Request-Id"
	HeaderTraceparent     = "traceparent"
	HeaderIdempotencyKey  = "Idempotency-Key"
	// HeaderIdempotentReplayed is "true" on a response replayed for a
	// repeated Idempotency-Key (SPEC §4.6).
	HeaderIdempotentReplayed = "Idempotent-Replayed"
	HeaderRetryAfter         = "Retry-After"
	HeaderAllow              = "Allow"
)

// Host is the pseudo host name every request must carry (Host: signer-agent).
// It keeps browsers and DNS-rebinding pages away from the socket.
const Host = "signer-agent"

// Media types.
const (
	MediaTypeJSON    = "application/json"
	MediaTypeProblem = "application/problem+json"
	MediaTypeNDJSON  = "application/x-ndjson"
	// PayloadTypeInToto is the DSSE payloadType of every envelope.
	PayloadTypeInToto = "application/vnd.in-toto+json"
	// MediaTypeBundle is the sigstore bundle media type the agent emits.
	MediaTypeBundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
	// StatementType is the in-toto Statement v1 _type.
	StatementType = "https://in-toto.io/Statement/v1"
)

// Environment variables the client and signerctl read.
const (
	EnvSocket      = "SIGNER_AGENT_SOCKET"
	EnvAdminSocket = "SIGNER_AGENT_ADMIN_SOCKET"
)

// Default socket locations on a systemd host.
const (
	DefaultSocket      = "/run/signer-agent/api.sock"
	DefaultAdminSocket = "/run/signer-agent/admin.sock"
)
