package export

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
)

// Checked is what CheckProvenance established about a statement.
type Checked struct {
	// BuilderID is runDetails.builder.id: the installation that signed.
	BuilderID string
	// ScannerDigest is the scanner image's digest ("sha256:<hex>") among
	// the resolved dependencies, if any.
	ScannerDigest string
	// Subjects is the number of subjects (files + 1).
	Subjects int
}

// CheckProvenance checks a statement whose signature has been verified
// against the export.json it must describe (manifest, its exact bytes, and
// m, those bytes parsed by ParseManifest):
//   - an in-toto Statement v1 with predicate type SLSA provenance v1 and
//     buildType BuildType;
//   - subjects are exactly export.json (the SHA-256 of manifest) and every
//     file of m (name = path, sha256 = digest), each once, nothing else;
//   - externalParameters are m's id and profile;
//   - every material of m is a resolved dependency with the same digests.
//
// Failures wrap ErrProvenance and name at most one subject or path.
func CheckProvenance(payload, manifest []byte, m *Manifest) (*Checked, error) {
	var st Statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: statement: %v", ErrProvenance, err)
	}
	switch {
	case st.Type != proto.StatementType:
		return nil, fmt.Errorf("%w: statement _type %q", ErrProvenance, st.Type)
	case st.PredicateType != proto.PredicateSLSAProvenanceV1:
		return nil, fmt.Errorf("%w: predicateType %q, want %s", ErrProvenance, st.PredicateType, proto.PredicateSLSAProvenanceV1)
	case st.Predicate.BuildDefinition.BuildType != BuildType:
		return nil, fmt.Errorf("%w: buildType %q, want %s", ErrProvenance, st.Predicate.BuildDefinition.BuildType, BuildType)
	}
	if p := st.Predicate.BuildDefinition.ExternalParameters; p.ID != m.ID || p.Profile != m.Profile {
		return nil, fmt.Errorf("%w: externalParameters id/profile %q/%q, manifest has %q/%q", ErrProvenance, p.ID, p.Profile, m.ID, m.Profile)
	}
	want := make(map[string]string, len(m.Files)+1)
	want[proto.ExportManifestName] = strings.TrimPrefix(attest.Digest(manifest), "sha256:")
	for _, f := range m.Files {
		want[f.Path] = f.Digest.SHA256
	}
	seen := make(map[string]bool, len(want))
	otherManifest := false
	for _, s := range st.Subject {
		d, ok := want[s.Name]
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: subject %q is not in the manifest", ErrProvenance, s.Name)
		case seen[s.Name]:
			return nil, fmt.Errorf("%w: subject %q appears twice", ErrProvenance, s.Name)
		case len(s.Digest) != 1 || s.Digest["sha256"] != d:
			if s.Name != proto.ExportManifestName {
				return nil, fmt.Errorf("%w: subject %q: digest differs from the manifest", ErrProvenance, s.Name)
			}
			// Reported last: every other difference also changes it.
			otherManifest = true
		}
		seen[s.Name] = true
	}
	if len(seen) != len(want) {
		for name := range want {
			if !seen[name] {
				return nil, fmt.Errorf("%w: %q is in the manifest but not a subject", ErrProvenance, name)
			}
		}
	}
	out := &Checked{BuilderID: st.Predicate.RunDetails.Builder.ID, Subjects: len(st.Subject)}
	deps := map[string]map[string]string{}
	for _, d := range st.Predicate.BuildDefinition.ResolvedDependencies {
		if d.URI != "" {
			deps[d.URI] = d.Digest
		}
		if d.Name == ScannerDependencyName && d.URI == "" && len(d.Digest) == 1 {
			for alg, hex := range d.Digest {
				out.ScannerDigest = alg + ":" + hex
			}
		}
	}
	for _, mat := range m.Materials {
		if d, ok := deps[mat.URI]; !ok || !maps.Equal(d, mat.Digest) {
			return nil, fmt.Errorf("%w: material %q is not a resolved dependency with the same digests", ErrProvenance, mat.URI)
		}
	}
	if otherManifest {
		return nil, fmt.Errorf("%w: the statement signs another export.json (digest differs)", ErrProvenance)
	}
	return out, nil
}
