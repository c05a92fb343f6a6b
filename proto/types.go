package proto

import (
	"encoding/json"
	"time"
)

// SignRequest is the body of POST /api/v1/signer/sign/dsse (SPEC §4.1).
type SignRequest struct {
	Subject            []Subject       `json:"subject"`
	PredicateType      string          `json:"predicateType"`
	Predicate          json.RawMessage `json:"predicate"`
	ScannerImageDigest string          `json:"scannerImageDigest,omitempty"`
	PoE                *PoE            `json:"poe,omitempty"`
	Policy             *Policy         `json:"policy,omitempty"`
	Options            *SignOptions    `json:"options,omitempty"`
}

// Subject is one in-toto subject: a name and its digests (lowercase hex).
type Subject struct {
	Name   string            `json:"name"`
	Digest map[string]string `json:"digest"`
}

// PoE carries the caller's Proof-of-Entitlement.
type PoE struct {
	Format string `json:"format"` // "jwt" or "opaque"
	Value  string `json:"value"`
}

// Policy names the policy a report was evaluated under; the agent places it
// in the statement's predicate as "policy".
type Policy struct {
	Digest  string   `json:"digest"`
	ViewSet []string `json:"viewSet,omitempty"`
}

// Signing modes.
const (
	ModeKeyful  = "keyful"
	ModeKeyless = "keyless"
)

// SignOptions selects the signing mode and keys.
type SignOptions struct {
	Mode   string   `json:"mode,omitempty"`
	KeyIDs []string `json:"keyIds,omitempty"`
}

// SignResponse is the 200 body of a sign request (SPEC §4.2). Fields whose
// gate is not configured (auditId, quota) are omitted, never faked.
type SignResponse struct {
	RequestID       string            `json:"requestId"`
	AuditID         string            `json:"auditId,omitempty"`
	Envelope        Envelope          `json:"envelope"`
	Bundles         []json.RawMessage `json:"bundles"`
	SigningIdentity []SigningIdentity `json:"signingIdentity"`
	PayloadDigest   string            `json:"payloadDigest"`
	BundleHash      string            `json:"bundleHash"`
	Quota           *Quota            `json:"quota,omitempty"`
	// Replayed is not on the wire: the client sets it when the agent
	// answered with the kept answer to an earlier request with the same
	// Idempotency-Key (Idempotent-Replayed: true, SPEC §4.6).
	Replayed bool `json:"-"`
}

// Envelope is a DSSE envelope. Payload and signatures are standard base64
// on the wire (encoding/json's []byte encoding), as DSSE specifies.
type Envelope struct {
	PayloadType string      `json:"payloadType"`
	Payload     []byte      `json:"payload"`
	Signatures  []Signature `json:"signatures"`
}

// Signature is one DSSE signature; KeyID is the agent's key id.
type Signature struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

// SigningIdentity describes how one signature was made.
type SigningIdentity struct {
	Mode          string `json:"mode"`
	KeyID         string `json:"keyId"`
	KeySource     string `json:"keySource"`
	Algorithm     string `json:"algorithm"`
	PublicKeyHint string `json:"publicKeyHint"`
	// CertificateChain is the key's X.509 chain as PEM, leaf first (the
	// Fulcio leaf, its intermediates and root for keyless); empty for a
	// key without certificates.
	CertificateChain []string `json:"certificateChain"`
	BundleHash       string   `json:"bundleHash"`
	// CertificateIdentity is the leaf's subject alternative name (what
	// cosign --certificate-identity matches) and CertificateIssuer its
	// Fulcio OIDC issuer extension (--certificate-oidc-issuer); omitted
	// when the certificate has none, or there is no certificate.
	CertificateIdentity string `json:"certificateIdentity,omitempty"`
	CertificateIssuer   string `json:"certificateIssuer,omitempty"`
}

// Quota reports the plan and what is left of today's allowance.
type Quota struct {
	Plan           string `json:"plan"`
	RemainingToday int64  `json:"remainingToday"`
}

// Key statuses.
const (
	KeyStatusActive     = "active"
	KeyStatusVerifyOnly = "verify-only"
	KeyStatusRevoked    = "revoked"
)

// KeysResponse is the body of GET /api/v1/signer/keys.
type KeysResponse struct {
	Keys []KeyInfo `json:"keys"`
}

// KeyInfo is a key's public half and metadata.
type KeyInfo struct {
	ID            string     `json:"id"`
	Algorithm     string     `json:"algorithm"`
	PublicKey     string     `json:"publicKey"` // PEM, PKIX
	PublicKeyHint string     `json:"publicKeyHint"`
	Source        string     `json:"source"`
	Status        string     `json:"status"`
	NotBefore     *time.Time `json:"notBefore,omitempty"`
	NotAfter      *time.Time `json:"notAfter,omitempty"`
	Tenants       []string   `json:"tenants"`
	Default       bool       `json:"default,omitempty"`
	// CertificateChain is the key's X.509 chain as PEM, leaf first, for
	// keys that come with certificates (PKCS#11 certificate objects,
	// certificateChainFile); trust export puts its root in the trusted
	// root.
	CertificateChain []string `json:"certificateChain,omitempty"`
}

// Health is the body of /healthz and /readyz.
type Health struct {
	Status  string            `json:"status"` // "ok" or "unavailable"
	Version string            `json:"version,omitempty"`
	Checks  map[string]string `json:"checks,omitempty"`
}
