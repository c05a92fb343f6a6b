package proto

import "time"

// ReleaseVerdict is the body of GET /api/v1/signer/verify/referrers
// ?digest=sha256:…: the release-integrity verdict for a scanner image
// digest (SPEC §7). A 200 answer may say Trusted: false; the sign gate
// then refuses with release_untrusted.
type ReleaseVerdict struct {
	Digest  string `json:"digest"`
	Trusted bool   `json:"trusted"`
	// Source is what trusted the digest: "referrers", "tag",
	// "allowlist", "offline-bundle", or "cache" for a cached verdict
	// (OriginalSource then names the lookup that made it); "" for a fresh
	// untrusted verdict.
	Source         string `json:"source,omitempty"`
	OriginalSource string `json:"originalSource,omitempty"`
	// KeyHint is the base64 SHA-256 of the PKIX DER of the release key
	// that verified the signature ("" for the allowlist).
	KeyHint string `json:"keyHint,omitempty"`
	// Version is the release version, "" when unknown.
	Version string `json:"version,omitempty"`
	// ManualApproval is set for allowlist entries that carry an approver.
	ManualApproval *ReleaseApproval `json:"manualApproval,omitempty"`
	// Reason says why the digest is untrusted.
	Reason string `json:"reason,omitempty"`
	// CheckedAt is when the lookup ran (for a cached verdict, the
	// original lookup).
	CheckedAt time.Time `json:"checkedAt"`
}

// ReleaseApproval records who approved an allowlisted release and when.
type ReleaseApproval struct {
	ApprovedBy string     `json:"approvedBy"`
	ApprovedAt *time.Time `json:"approvedAt,omitempty"`
	Note       string     `json:"note,omitempty"`
}
