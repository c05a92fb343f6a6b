package proto

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"
)

// Export signing (SPEC §4.4): POST /api/v1/signer/sign/export.
const (
	// PredicateSLSAProvenanceV1 is the predicate type of an export's
	// provenance statement (cosign verify-blob-attestation --type).
	PredicateSLSAProvenanceV1 = "https://slsa.dev/provenance/v1"
	// ExportManifestName is the subject name of export.json in the
	// provenance statement. No file of an export may use this path: the
	// statement's subject names would otherwise be ambiguous.
	ExportManifestName = "export.json"
)

// Limits applied while validating an export request. Every refusal is
// invalid_request (400); a body over the transport cap is refused earlier
// (payload_too_large, 413) and a provenance statement over the plan's
// maxArtifactBytes later (artifact_too_large, 413).
const (
	// MaxExportFiles caps the files of one export. With it, a maximal
	// request (short paths) stays well inside the default 32 MiB body cap
	// and the agent builds its statement in a fraction of a second
	// (docs/perf.md §9); larger exports are split by the caller.
	MaxExportFiles = 100_000
	// MaxExportMaterials caps export.materials.
	MaxExportMaterials = 1024
	// MaxExportPathLen is Linux's PATH_MAX and MaxExportSegmentLen its
	// NAME_MAX: a path that validates can be written on Linux.
	MaxExportPathLen    = 4096
	MaxExportSegmentLen = 255
	// MaxExportIDLen caps export.id and export.profile.
	MaxExportIDLen = 256
	// MaxMaterialURILen caps materials[].uri.
	MaxMaterialURILen = 2048
	// MaxMediaTypeLen caps files[].mediaType.
	MaxMediaTypeLen = 255
	// MaxExportFileSize is the largest size a file may declare: 2^53-1,
	// the largest integer canonical JSON (RFC 8785) carries exactly.
	MaxExportFileSize = 1<<53 - 1
)

// ExportRequest is the body of POST /api/v1/signer/sign/export: the sign
// request's scannerImageDigest, poe and options, plus the export to sign.
type ExportRequest struct {
	Export             Export       `json:"export"`
	ScannerImageDigest string       `json:"scannerImageDigest,omitempty"`
	PoE                *PoE         `json:"poe,omitempty"`
	Options            *SignOptions `json:"options,omitempty"`
}

// Export describes one export: its identity, the caller's creation time
// (RFC 3339, UTC; the agent adds no clock) and its files.
type Export struct {
	ID        string       `json:"id"`
	Profile   string       `json:"profile"`
	CreatedAt string       `json:"createdAt"`
	Files     []ExportFile `json:"files"`
	Materials []Material   `json:"materials,omitempty"`
}

// ExportFile is one file of an export: its path relative to the export's
// root ("/"-separated), SHA-256 and size in bytes.
type ExportFile struct {
	Path      string     `json:"path"`
	Digest    FileDigest `json:"digest"`
	Size      int64      `json:"size"`
	MediaType string     `json:"mediaType,omitempty"`
}

// FileDigest is a file's digest set: SHA-256 only (the digest cosign
// computes for verify-blob-attestation).
type FileDigest struct {
	SHA256 string `json:"sha256"`
}

// Material is an input the export was made from (an SLSA resolved
// dependency): a URI and its digests (sha256 and/or sha512).
type Material struct {
	URI    string            `json:"uri"`
	Digest map[string]string `json:"digest"`
}

// ExportResponse is the 200 body of an export request: export.json (the
// manifest bytes, base64 on the wire) and its digest, plus every field of a
// sign response for the provenance statement.
type ExportResponse struct {
	// Manifest is export.json exactly as signed (canonical JSON).
	Manifest []byte `json:"manifest"`
	// ManifestDigest is "sha256:<hex>" of Manifest.
	ManifestDigest string `json:"manifestDigest"`
	SignResponse
}

// Mode returns the requested signing mode, keyful by default.
func (r *ExportRequest) Mode() string { return r.AsSignRequest().Mode() }

// KeyIDs returns the requested key ids (nil: the tenant's default key).
func (r *ExportRequest) KeyIDs() []string { return r.AsSignRequest().KeyIDs() }

// AsSignRequest returns the members an export shares with a sign request
// (scannerImageDigest, poe, options) as a sign request for the provenance
// predicate type, without subjects or predicate: what the gates after the
// body (entitlement, release, quota, policy) read for an export.
func (r *ExportRequest) AsSignRequest() *SignRequest {
	return &SignRequest{
		PredicateType:      PredicateSLSAProvenanceV1,
		ScannerImageDigest: r.ScannerImageDigest,
		PoE:                r.PoE,
		Options:            r.Options,
	}
}

// exportWire is the request as decoded: size is a pointer so that a
// missing size is refused rather than read as 0.
type exportWire struct {
	Export struct {
		ID        string     `json:"id"`
		Profile   string     `json:"profile"`
		CreatedAt string     `json:"createdAt"`
		Files     []fileWire `json:"files"`
		Materials []Material `json:"materials"`
	} `json:"export"`
	ScannerImageDigest string       `json:"scannerImageDigest"`
	PoE                *PoE         `json:"poe"`
	Options            *SignOptions `json:"options"`
}

type fileWire struct {
	Path      string     `json:"path"`
	Digest    FileDigest `json:"digest"`
	Size      *int64     `json:"size"`
	MediaType string     `json:"mediaType"`
}

// DecodeExportRequest strictly decodes (DecodeStrict) and validates an
// export request. Every failure wraps ErrInvalidRequest.
func DecodeExportRequest(b []byte) (*ExportRequest, error) {
	// encoding/json replaces invalid UTF-8 with U+FFFD, which would sign a
	// path other than the one sent: refuse the body instead.
	if !utf8.Valid(b) {
		return nil, invalid("body is not valid UTF-8")
	}
	var w exportWire
	if err := DecodeStrict(b, &w); err != nil {
		return nil, err
	}
	r := &ExportRequest{
		Export: Export{
			ID:        w.Export.ID,
			Profile:   w.Export.Profile,
			CreatedAt: w.Export.CreatedAt,
			Materials: w.Export.Materials,
		},
		ScannerImageDigest: w.ScannerImageDigest,
		PoE:                w.PoE,
		Options:            w.Options,
	}
	if len(w.Export.Files) > MaxExportFiles {
		return nil, invalid("export.files: more than %d files", MaxExportFiles)
	}
	r.Export.Files = make([]ExportFile, len(w.Export.Files))
	for i, f := range w.Export.Files {
		if f.Size == nil {
			return nil, invalid("export.files[%d].size: required", i)
		}
		r.Export.Files[i] = ExportFile{Path: f.Path, Digest: f.Digest, Size: *f.Size, MediaType: f.MediaType}
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// Validate checks an export request (SPEC §4.4). Every failure wraps
// ErrInvalidRequest and names the offending member; errors never quote a
// path or other caller-chosen string, only its index.
//
// Rules beyond the SPEC's, decided here:
//   - paths must not contain control characters (C0, DEL, C1) or a
//     backslash (a separator on Windows), and "export.json" is reserved;
//   - no path may be both a file and a directory ("a" and "a/b");
//   - export.id and export.profile are 1–256 characters of
//     [A-Za-z0-9._:/@+-] starting with a letter or digit;
//   - createdAt is RFC 3339 in UTC with an upper-case "T" and "Z"
//     (2026-12-03T10:00:00Z, fractional seconds allowed), signed as sent;
//   - materials: an absolute URI without whitespace or control
//     characters, unique, with sha256 and/or sha512 digests.
func (r *ExportRequest) Validate() error {
	if err := r.AsSignRequest().validateCommon(); err != nil {
		return err
	}
	e := &r.Export
	if err := ValidateExportName(e.ID); err != nil {
		return invalid("export.id: %s", err)
	}
	if err := ValidateExportName(e.Profile); err != nil {
		return invalid("export.profile: %s", err)
	}
	if err := ValidateExportCreatedAt(e.CreatedAt); err != nil {
		return invalid("export.createdAt: %s", err)
	}
	if len(e.Files) == 0 {
		return invalid("export.files: at least one file is required")
	}
	if len(e.Files) > MaxExportFiles {
		return invalid("export.files: more than %d files", MaxExportFiles)
	}
	seen := make(map[string]int, len(e.Files))
	for i := range e.Files {
		f := &e.Files[i]
		if err := ValidateExportPath(f.Path); err != nil {
			return invalid("export.files[%d].path: %s", i, err)
		}
		if j, dup := seen[f.Path]; dup {
			return invalid("export.files[%d].path: duplicate of export.files[%d]", i, j)
		}
		seen[f.Path] = i
		if err := ValidateDigest("sha256", f.Digest.SHA256); err != nil {
			return invalid("export.files[%d].digest.sha256: %s", i, err)
		}
		if f.Size < 0 {
			return invalid("export.files[%d].size: negative", i)
		}
		if f.Size > MaxExportFileSize {
			return invalid("export.files[%d].size: over 2^53-1", i)
		}
		if f.MediaType != "" {
			if err := validateMediaType(f.MediaType); err != nil {
				return invalid("export.files[%d].mediaType: %s", i, err)
			}
		}
	}
	// A path that is a directory of another path cannot be a file too.
	for i := range e.Files {
		p := e.Files[i].Path
		for k := 0; k < len(p); k++ {
			if p[k] != '/' {
				continue
			}
			if j, ok := seen[p[:k]]; ok {
				return invalid("export.files[%d].path: export.files[%d] is a file where this path needs a directory", i, j)
			}
		}
	}
	if len(e.Materials) > MaxExportMaterials {
		return invalid("export.materials: more than %d materials", MaxExportMaterials)
	}
	uris := make(map[string]int, len(e.Materials))
	for i, m := range e.Materials {
		if err := validateMaterialURI(m.URI); err != nil {
			return invalid("export.materials[%d].uri: %s", i, err)
		}
		if j, dup := uris[m.URI]; dup {
			return invalid("export.materials[%d].uri: duplicate of export.materials[%d]", i, j)
		}
		uris[m.URI] = i
		if len(m.Digest) == 0 {
			return invalid("export.materials[%d].digest: at least one of sha256, sha512 is required", i)
		}
		for alg, hex := range m.Digest {
			if err := ValidateDigest(alg, hex); err != nil {
				return invalid("export.materials[%d].digest: %s", i, err)
			}
		}
	}
	return nil
}

// validateCommon checks scannerImageDigest, poe and options with exactly
// the rules of a sign request (SignRequest.Validate), by validating a sign
// request that carries them with a placeholder subject and predicate that
// are valid by construction.
func (r *SignRequest) validateCommon() error {
	probe := *r
	probe.Subject = []Subject{{Name: ExportManifestName, Digest: map[string]string{"sha256": strings.Repeat("0", 64)}}}
	probe.Predicate = json.RawMessage(`{}`)
	probe.Policy = nil
	return probe.Validate()
}

// ValidateExportPath checks one export path: relative, "/"-separated, no
// empty, "." or ".." segment, valid UTF-8 without control characters or
// backslashes, at most MaxExportPathLen bytes with segments of at most
// MaxExportSegmentLen bytes, and not the reserved ExportManifestName.
func ValidateExportPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty")
	case len(p) > MaxExportPathLen:
		return fmt.Errorf("longer than %d bytes", MaxExportPathLen)
	case !utf8.ValidString(p):
		return errors.New("not valid UTF-8")
	case p[0] == '/':
		return errors.New("absolute (starts with /)")
	case p == ExportManifestName:
		return fmt.Errorf("%q is reserved for the manifest", ExportManifestName)
	}
	for _, c := range p {
		if isControl(c) {
			return errors.New("contains a control character")
		}
		if c == '\\' {
			return errors.New(`contains a backslash (paths are "/"-separated)`)
		}
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch {
		case seg == "":
			return errors.New("empty segment (// or a trailing /)")
		case seg == "." || seg == "..":
			return fmt.Errorf("%q segment", seg)
		case len(seg) > MaxExportSegmentLen:
			return fmt.Errorf("segment longer than %d bytes", MaxExportSegmentLen)
		}
	}
	return nil
}

// isControl reports C0 and C1 control characters and DEL.
func isControl(c rune) bool {
	return c < 0x20 || (c >= 0x7f && c <= 0x9f)
}

// ValidateExportName checks export.id or export.profile: 1–256 characters
// of [A-Za-z0-9._:/@+-] starting with a letter or digit.
func ValidateExportName(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if len(s) > MaxExportIDLen {
		return fmt.Errorf("longer than %d characters", MaxExportIDLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return errors.New("must start with a letter or digit")
		}
		if !alnum && !strings.ContainsRune("._:/@+-", rune(c)) {
			return errors.New("allowed characters are A-Z a-z 0-9 . _ : / @ + -")
		}
	}
	return nil
}

// ValidateExportCreatedAt accepts RFC 3339 timestamps in UTC ("Z") only. The
// string is signed as sent, so it must also be exactly what time.Parse
// read (no lower-case "t"/"z", which RFC 3339 permits but Go refuses).
func ValidateExportCreatedAt(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if len(s) > 40 || !strings.HasSuffix(s, "Z") || strings.Trim(s, "0123456789-:.TZ") != "" {
		return errors.New("want RFC 3339 in UTC, e.g. 2026-12-03T10:00:00Z")
	}
	if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
		return errors.New("want RFC 3339 in UTC, e.g. 2026-12-03T10:00:00Z")
	}
	if s[10] != 'T' {
		return errors.New("want an upper-case T between date and time")
	}
	return nil
}

// validateMediaType accepts type/subtype of RFC 6838 restricted names, with
// no parameters.
func validateMediaType(s string) error {
	if len(s) > MaxMediaTypeLen {
		return fmt.Errorf("longer than %d bytes", MaxMediaTypeLen)
	}
	typ, sub, ok := strings.Cut(s, "/")
	if !ok || !restrictedName(typ) || !restrictedName(sub) {
		return errors.New("want type/subtype (RFC 6838), no parameters")
	}
	return nil
}

func restrictedName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("!#$&^_.+-", rune(c))) {
			return false
		}
	}
	return true
}

func validateMaterialURI(s string) error {
	if s == "" {
		return errors.New("required")
	}
	if len(s) > MaxMaterialURILen {
		return fmt.Errorf("longer than %d bytes", MaxMaterialURILen)
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, c := range s {
		if isControl(c) || c == ' ' {
			return errors.New("contains whitespace or a control character")
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return errors.New("want an absolute URI (scheme:…)")
	}
	return nil
}
