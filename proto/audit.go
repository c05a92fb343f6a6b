package proto

import "time"

// Audit records (SPEC §10) as the admin socket streams them (GET
// /admin/v1/audit, JSON lines) and as the durable log stores them: the
// internal audit package's Record is this type. Records never hold tokens,
// PINs, key material or payloads: only hashes and identifiers.

// Audit decisions.
const (
	DecisionAllow = "allow"
	DecisionDeny  = "deny"
	// DecisionNotice marks a record the log writes about itself (a
	// recovery), not a decision on a request.
	DecisionNotice = "notice"
)

// AuditRecord is one audited decision.
//
// Seq, PrevHash, Recovered and Hash belong to the hash chain: the log
// assigns them. Their order in the struct is part of the on-disk format
// (the hash preimage): Seq, PrevHash and Recovered come first and Hash
// last.
type AuditRecord struct {
	// Seq numbers the records of a log from 1, across segments.
	Seq uint64 `json:"seq,omitempty"`
	// PrevHash is the Hash of the record before, the genesis hash for seq 1.
	PrevHash string `json:"prevHash,omitempty"`
	// Recovered is set on the notice record the log writes after it had to
	// repair or abandon the end of a segment (crash, I/O error).
	Recovered []AuditRecovery `json:"recovered,omitempty"`

	Time           time.Time `json:"time"`
	AuditID        string    `json:"auditId"`
	RequestID      string    `json:"requestId"`
	TraceID        string    `json:"traceId,omitempty"`
	Route          string    `json:"route"`
	Peer           *PeerCred `json:"peer,omitempty"`
	Tenant         string    `json:"tenant,omitempty"`
	Installation   string    `json:"installation,omitempty"`
	TokenSubject   string    `json:"tokenSubject,omitempty"`
	TokenIssuer    string    `json:"tokenIssuer,omitempty"`
	TokenJTIHash   string    `json:"tokenJtiHash,omitempty"`
	PoEState       string    `json:"poeState,omitempty"`
	PoEHash        string    `json:"poeHash,omitempty"`
	Plan           string    `json:"plan,omitempty"`
	ScannerDigest  string    `json:"scannerImageDigest,omitempty"`
	ReleaseVerdict string    `json:"releaseVerdict,omitempty"`
	PredicateType  string    `json:"predicateType,omitempty"`
	SubjectDigests []string  `json:"subjectDigests,omitempty"`
	KeyIDs         []string  `json:"keyIds,omitempty"`
	KeySources     []string  `json:"keySources,omitempty"`
	// KeyFingerprints are "sha256:<hex>" of each key's PKIX public key,
	// in KeyIDs order: which key material signed (or was loaded), not just
	// its id.
	KeyFingerprints []string `json:"keyFingerprints,omitempty"`
	PayloadDigest   string   `json:"payloadDigest,omitempty"`
	BundleHash      string   `json:"bundleHash,omitempty"`
	Decision        string   `json:"decision"`
	Code            string   `json:"code,omitempty"`
	// Gate is the gate that denied, or "sign"/"admin" for allowed records.
	Gate string `json:"gate,omitempty"`
	// Reason is the precise, operator-facing cause of a denial. It is never
	// shown to the caller.
	Reason    string  `json:"reason,omitempty"`
	LatencyMS float64 `json:"latencyMs"`
	// Admin describes an admin change (reload, rotate, revoke, bypass).
	Admin string `json:"admin,omitempty"`
	// ConfigDigest is "sha256:<hex>" of the configuration file a load or
	// reload put in force.
	ConfigDigest string `json:"configDigest,omitempty"`
	// Certificates describe the certificates of the signatures made with
	// one (keyless Fulcio leaves, keyful keys with X.509 chains), in
	// KeyIDs order.
	Certificates []AuditCertificate `json:"certificates,omitempty"`
	// ExportID, ManifestDigest ("sha256:<hex>" of export.json) and
	// ExportFiles (its number of files) describe an export request (SPEC
	// §4.4); its SubjectDigests hold only the manifest digest, which
	// covers every file.
	ExportID       string `json:"exportId,omitempty"`
	ManifestDigest string `json:"manifestDigest,omitempty"`
	ExportFiles    int    `json:"exportFiles,omitempty"`

	// Hash chains this record to PrevHash; it must stay the last field.
	Hash string `json:"hash,omitempty"`
}

// AuditCertificate is the certificate one signature was made under.
type AuditCertificate struct {
	// KeyID is the signature's key id ("keyless" for keyless).
	KeyID string `json:"keyId"`
	// Identity is the leaf's subject alternative name and Issuer its
	// Fulcio OIDC issuer extension (either may be empty).
	Identity string `json:"identity,omitempty"`
	Issuer   string `json:"issuer,omitempty"`
	// Fingerprint is "sha256:<hex>" of the leaf certificate's DER.
	Fingerprint string `json:"fingerprint"`
}

// AuditRecovery describes one repair of a segment's end.
type AuditRecovery struct {
	// Segment is the file name of the repaired segment.
	Segment string `json:"segment"`
	// Offset is where the valid records of Segment end.
	Offset int64 `json:"offset"`
	// TruncatedBytes were cut off the end of Segment.
	TruncatedBytes int64 `json:"truncatedBytes,omitempty"`
	// AbandonedBytes follow Offset in Segment and are not part of the chain.
	AbandonedBytes int64  `json:"abandonedBytes,omitempty"`
	Reason         string `json:"reason"`
	Detail         string `json:"detail,omitempty"`
}

// PeerCred is the caller's identity on a Unix socket (SO_PEERCRED).
type PeerCred struct {
	UID uint32 `json:"uid"`
	GID uint32 `json:"gid"`
	PID int32  `json:"pid"`
	// Groups are the peer's supplementary groups (SO_PEERGROUPS).
	Groups []uint32 `json:"groups,omitempty"`
	// Exe is the peer's executable path, best effort.
	Exe string `json:"exe,omitempty"`
}

// AuditManifest describes the segments of one audit export, so the
// receiving side can check each file and link the segments into one chain.
type AuditManifest struct {
	Version   int            `json:"version"`
	CreatedAt time.Time      `json:"createdAt"`
	Segments  []AuditSegment `json:"segments"`
}

// AuditSegment describes one closed segment.
type AuditSegment struct {
	Name string `json:"name"`
	// Records in the segment's chain; FirstSeq, PrevHash, LastSeq and
	// LastHash are empty when there are none. PrevHash is the first
	// record's prevHash: the previous segment's LastHash.
	Records  int    `json:"records"`
	FirstSeq uint64 `json:"firstSeq,omitempty"`
	PrevHash string `json:"prevHash,omitempty"`
	LastSeq  uint64 `json:"lastSeq,omitempty"`
	LastHash string `json:"lastHash,omitempty"`
	// Bytes and SHA256 ("sha256:" + hex) cover the whole file.
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}
