package kit

import (
	"errors"
	"fmt"
	"sort"

	provenancev1 "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intotov1 "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// BuildType identifies how `make dist` builds (the SLSA buildType); it
// names the document that describes the parameters below.
const BuildType = "https://github.com/stellaops/signer-agent/blob/main/docs/offline-kit.md#provenance"

// Build describes one `make dist` run: what SLSA v1 provenance records.
// Nothing in it may vary between two builds of one commit (no host names,
// no wall-clock times, no invocation ids), so that the provenance, and the
// kit holding it, are reproducible.
type Build struct {
	// Version is the version stamped into the binaries and packages.
	Version string
	// SourceRepo is the repository URI (e.g. git+https://host/org/repo)
	// and SourceCommit the full git commit it was built from.
	SourceRepo   string
	SourceCommit string
	// Command is the build command, e.g. "make dist".
	Command string
	// SourceDateEpoch is the commit time every timestamp is set to.
	SourceDateEpoch int64
	// BuilderID names the builder; BuilderVersion its tool versions
	// (go, nfpm, ...).
	BuilderID      string
	BuilderVersion map[string]string
	// Parameters are internal parameters (Go flags, CC, ...).
	Parameters map[string]string
	// Dependencies are the resolved inputs besides the source: toolchains,
	// libraries copied into the image, the go.sum lock.
	Dependencies []Dependency
}

// Dependency is one resolved dependency of the build.
type Dependency struct {
	Name   string
	URI    string
	SHA256 string // lowercase hex, optional
}

// ProvenanceJSON returns the SLSA provenance v1 predicate for b, as JSON
// (the agent canonicalises it when it signs).
func ProvenanceJSON(b Build) ([]byte, error) {
	switch {
	case b.Version == "", b.SourceCommit == "", b.SourceRepo == "", b.Command == "", b.BuilderID == "":
		return nil, errors.New("provenance: version, source repo and commit, command and builder id are required")
	}
	ext, err := structpb.NewStruct(map[string]any{
		"source":  map[string]any{"repository": b.SourceRepo, "commit": b.SourceCommit},
		"command": b.Command,
		"version": b.Version,
	})
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	internal := map[string]any{"sourceDateEpoch": fmt.Sprint(b.SourceDateEpoch)}
	for k, v := range b.Parameters {
		internal[k] = v
	}
	intl, err := structpb.NewStruct(internal)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	deps := []*intotov1.ResourceDescriptor{{
		Uri:    b.SourceRepo,
		Digest: map[string]string{"gitCommit": b.SourceCommit},
	}}
	sorted := append([]Dependency(nil), b.Dependencies...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, d := range sorted {
		rd := &intotov1.ResourceDescriptor{Name: d.Name, Uri: d.URI}
		if d.SHA256 != "" {
			rd.Digest = map[string]string{"sha256": d.SHA256}
		}
		deps = append(deps, rd)
	}
	p := &provenancev1.Provenance{
		BuildDefinition: &provenancev1.BuildDefinition{
			BuildType:            BuildType,
			ExternalParameters:   ext,
			InternalParameters:   intl,
			ResolvedDependencies: deps,
		},
		RunDetails: &provenancev1.RunDetails{
			Builder: &provenancev1.Builder{Id: b.BuilderID, Version: b.BuilderVersion},
		},
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return protojson.Marshal(p)
}

// parseProvenance decodes and validates a SLSA v1 predicate and returns
// the source commit it names (externalParameters.source.commit).
func parseProvenance(pred []byte) (commit string, err error) {
	var p provenancev1.Provenance
	if err := protojson.Unmarshal(pred, &p); err != nil {
		return "", fmt.Errorf("provenance predicate: %w", err)
	}
	if err := p.Validate(); err != nil {
		return "", fmt.Errorf("provenance predicate: %w", err)
	}
	src := p.GetBuildDefinition().GetExternalParameters().GetFields()["source"].GetStructValue()
	commit = src.GetFields()["commit"].GetStringValue()
	if commit == "" {
		return "", errors.New("provenance predicate: externalParameters.source.commit is missing")
	}
	return commit, nil
}
