package export

import (
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/stellaops/signer-agent/proto"
)

const (
	// BuildType is the SLSA buildDefinition.buildType of an export.
	BuildType = "https://stella-ops.org/export/v1"
	// BuilderIDPrefix prefixes the (path-escaped) installation in
	// runDetails.builder.id.
	BuilderIDPrefix = "https://stella-ops.org/signer-agent/installations/"
	// ScannerDependencyName names the scanner image among the resolved
	// dependencies (it has a digest but no URI: the request names no
	// repository).
	ScannerDependencyName = "scanner-image"
	// maxInstallationLen caps the installation identity.
	maxInstallationLen = 256
)

// Statement is an in-toto Statement v1 with an SLSA provenance v1
// predicate, as the agent builds it for an export.
type Statement struct {
	Type          string          `json:"_type"`
	Subject       []proto.Subject `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     Provenance      `json:"predicate"`
}

// Provenance is the SLSA provenance v1 predicate (the members an export
// uses; https://slsa.dev/spec/v1.0/provenance).
type Provenance struct {
	BuildDefinition BuildDefinition `json:"buildDefinition"`
	RunDetails      RunDetails      `json:"runDetails"`
}

// BuildDefinition says what was built from what.
type BuildDefinition struct {
	BuildType            string               `json:"buildType"`
	ExternalParameters   ExternalParameters   `json:"externalParameters"`
	ResolvedDependencies []ResourceDescriptor `json:"resolvedDependencies,omitempty"`
}

// ExternalParameters are the export's id and profile.
type ExternalParameters struct {
	ID      string `json:"id"`
	Profile string `json:"profile"`
}

// ResourceDescriptor is an in-toto ResourceDescriptor: a material (URI and
// digests) or the scanner image (name and digest).
type ResourceDescriptor struct {
	URI    string            `json:"uri,omitempty"`
	Name   string            `json:"name,omitempty"`
	Digest map[string]string `json:"digest"`
}

// RunDetails names the builder: the agent's installation.
type RunDetails struct {
	Builder Builder `json:"builder"`
}

// Builder is runDetails.builder.
type Builder struct {
	ID string `json:"id"`
}

// BuilderID is the runDetails.builder.id of an installation:
// BuilderIDPrefix plus the path-escaped installation identity. It fails
// with ErrNoInstallation for an empty identity and ErrInvalidInstallation
// for one that is not valid UTF-8 without control characters, or longer
// than 256 bytes.
func BuilderID(installation string) (string, error) {
	if installation == "" {
		return "", ErrNoInstallation
	}
	if len(installation) > maxInstallationLen || !utf8.ValidString(installation) ||
		strings.ContainsFunc(installation, func(r rune) bool { return r < 0x20 || (r >= 0x7f && r <= 0x9f) }) {
		return "", ErrInvalidInstallation
	}
	return BuilderIDPrefix + url.PathEscape(installation), nil
}

// NewStatement returns the provenance statement for a manifest and its
// canonical bytes: subjects export.json (manifestSHA256 is the hex SHA-256
// of those bytes) then every file in manifest order; the materials then the
// scanner image (when scannerDigest, "sha256:<hex>", is set) as resolved
// dependencies.
func NewStatement(m *Manifest, manifestSHA256, scannerDigest, builderID string) (*Statement, error) {
	subjects := make([]proto.Subject, 0, len(m.Files)+1)
	subjects = append(subjects, proto.Subject{Name: proto.ExportManifestName, Digest: map[string]string{"sha256": manifestSHA256}})
	for _, f := range m.Files {
		subjects = append(subjects, proto.Subject{Name: f.Path, Digest: map[string]string{"sha256": f.Digest.SHA256}})
	}
	var deps []ResourceDescriptor
	for _, mat := range m.Materials {
		deps = append(deps, ResourceDescriptor{URI: mat.URI, Digest: mat.Digest})
	}
	if scannerDigest != "" {
		alg, hex, ok := strings.Cut(scannerDigest, ":")
		if !ok {
			return nil, fmt.Errorf("%w: scanner digest %q", proto.ErrInvalidRequest, scannerDigest)
		}
		deps = append(deps, ResourceDescriptor{Name: ScannerDependencyName, Digest: map[string]string{alg: hex}})
	}
	return &Statement{
		Type:          proto.StatementType,
		Subject:       subjects,
		PredicateType: proto.PredicateSLSAProvenanceV1,
		Predicate: Provenance{
			BuildDefinition: BuildDefinition{
				BuildType:            BuildType,
				ExternalParameters:   ExternalParameters{ID: m.ID, Profile: m.Profile},
				ResolvedDependencies: deps,
			},
			RunDetails: RunDetails{Builder: Builder{ID: builderID}},
		},
	}, nil
}

// Canonical returns the statement's RFC 8785 bytes: the DSSE payload.
func (s *Statement) Canonical() ([]byte, error) {
	n := 1024
	for _, sub := range s.Subject {
		n += 96 + len(sub.Name)
	}
	return appendStatement(make([]byte, 0, n), s), nil
}
