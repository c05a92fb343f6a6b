package proto

import (
	"errors"
	"net/url"
	"strconv"
	"time"
)

// The admin socket's wire contract (SPEC §4): request and response bodies
// of every admin endpoint. The agent decodes these with DecodeStrict;
// client.Admin and signerctl send them.

// ReloadResponse is the 200 body of POST /admin/v1/reload: the agent's
// health, with checks.config naming the configuration file now in force.
type ReloadResponse = Health

// RevokeRequest is the body of POST /admin/v1/keys/{id}/revoke.
type RevokeRequest struct {
	// Reason is required (at least 3 characters); it is audited and kept
	// in the revocation list.
	Reason string `json:"reason"`
}

// RevokeResponse is its 200 body.
type RevokeResponse struct {
	ID     string `json:"id"`
	Status string `json:"status"` // KeyStatusRevoked
}

// RotateRequest is the body of POST /admin/v1/keys/{id}/rotate.
type RotateRequest struct {
	// NewID is the new key's id; it must not be a key id already.
	NewID string `json:"newId"`
	// URI names the new key; optional when the old key is a file: key (a
	// key of the same algorithm is then generated in the state directory).
	URI string `json:"uri,omitempty"`
}

// RotateResponse is its 200 body: the old key is now verify-only, the new
// one active and default where the old one was.
type RotateResponse struct {
	Old       string  `json:"old"`
	OldStatus string  `json:"oldStatus"`
	New       KeyInfo `json:"new"`
}

// UnlockRequest is the body of POST /admin/v1/keys/{id}/unlock (an empty
// body means no PIN). Call Zero once the PIN has been used.
type UnlockRequest struct {
	PIN Secret `json:"pin,omitempty"`
}

// Zero wipes the PIN.
func (u *UnlockRequest) Zero() { u.PIN.Zero() }

// UnlockResponse is its 200 body.
type UnlockResponse struct {
	ID       string `json:"id"`
	Unlocked bool   `json:"unlocked"`
}

// BypassRequest is the body of POST /admin/v1/entitlement/bypass.
type BypassRequest struct {
	// Reason is required to enable a bypass (at least 3 characters).
	Reason string `json:"reason"`
	// For is a Go duration between 0s and 24h; "0s" ends the bypass.
	For string `json:"for"`
}

// BypassResponse is its 200 body.
type BypassResponse struct {
	Active bool       `json:"active"`
	Until  *time.Time `json:"until,omitempty"`
	Reason string     `json:"reason,omitempty"`
}

// AuditExportRequest is the body of POST /admin/v1/audit/export.
type AuditExportRequest struct {
	// Dir is an absolute directory on the agent's host.
	Dir string `json:"dir"`
	// Rotate closes the active segment first, so its records are
	// included.
	Rotate bool `json:"rotate,omitempty"`
}

// AuditExportResponse is its 200 body: the manifest written next to the
// exported segments.
type AuditExportResponse = AuditManifest

// AuditQuery holds the filters of GET /admin/v1/audit (query parameters).
// Zero fields match everything.
type AuditQuery struct {
	// Since (inclusive) and Until (exclusive) bound the record time.
	Since, Until time.Time
	Tenant       string
	Decision     string
	Code         string
	// AfterSeq skips records up to and including this seq (paging).
	AfterSeq uint64
	// Limit caps the answer: 1 to MaxAuditQueryLimit, 0 meaning
	// DefaultAuditQueryLimit.
	Limit int
}

// Limits of an audit query.
const (
	DefaultAuditQueryLimit = 1000
	MaxAuditQueryLimit     = 100000
)

// Values encodes q as query parameters (times with their fraction of a
// second: Since and Until bound records to the nanosecond).
func (q AuditQuery) Values() url.Values {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	for k, s := range map[string]string{"tenant": q.Tenant, "decision": q.Decision, "code": q.Code} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.AfterSeq > 0 {
		v.Set("afterSeq", strconv.FormatUint(q.AfterSeq, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	return v
}

// ParseAuditQuery decodes query parameters; Limit defaults to
// DefaultAuditQueryLimit. Errors wrap ErrInvalidRequest and name the
// parameter.
func ParseAuditQuery(v url.Values) (AuditQuery, error) {
	q := AuditQuery{Tenant: v.Get("tenant"), Decision: v.Get("decision"), Code: v.Get("code"), Limit: DefaultAuditQueryLimit}
	for name, dst := range map[string]*time.Time{"since": &q.Since, "until": &q.Until} {
		if s := v.Get(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return AuditQuery{}, invalid("%s: want RFC 3339", name)
			}
			*dst = t
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxAuditQueryLimit {
			return AuditQuery{}, invalid("limit: 1 to %d", MaxAuditQueryLimit)
		}
		q.Limit = n
	}
	if s := v.Get("afterSeq"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return AuditQuery{}, invalid("afterSeq: a record sequence number")
		}
		q.AfterSeq = n
	}
	return q, nil
}

// Secret is a JSON string held as bytes the holder owns and can wipe:
// decoding never makes an immutable Go string of it. It never encodes its
// value back (MarshalJSON gives "").
type Secret []byte

// UnmarshalJSON decodes a JSON string into fresh bytes.
func (s *Secret) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*s = nil
		return nil
	}
	v, err := unquoteBytes(b)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalJSON never reveals the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`""`), nil }

// Zero overwrites the secret's bytes.
func (s Secret) Zero() { clear(s) }

// String never reveals the secret.
func (s Secret) String() string { return "[redacted]" }

// unquoteBytes decodes one JSON string literal into a new byte slice with
// the strict scanner (valid UTF-8, no lone surrogates), without going
// through a Go string.
func unquoteBytes(b []byte) ([]byte, error) {
	sc := &scanner{data: b, maxDepth: 1}
	if len(b) == 0 || b[0] != '"' {
		return nil, errors.New("want a JSON string")
	}
	start, end, escaped, err := sc.scanString()
	if err != nil {
		return nil, err
	}
	if sc.pos != len(b) {
		return nil, errors.New("want one JSON string")
	}
	if !escaped {
		return append([]byte(nil), b[start:end]...), nil
	}
	return appendUnescaped(nil, b[start:end]), nil
}
