package export

import (
	"errors"
	"fmt"
	"strings"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
)

var (
	// ErrNoInstallation: the agent has no installation identity to name as
	// the builder (neither authority.installation nor the token's inst).
	ErrNoInstallation = errors.New("no installation identity for runDetails.builder.id")
	// ErrInvalidInstallation: the installation identity cannot be put in a
	// builder id.
	ErrInvalidInstallation = errors.New("installation identity is not valid UTF-8 of at most 256 bytes without control characters")
	// ErrManifest is wrapped by every ParseManifest failure.
	ErrManifest = errors.New("export manifest invalid")
	// ErrProvenance is wrapped by every CheckProvenance failure.
	ErrProvenance = errors.New("export provenance does not match the manifest")
)

// Built is what the agent signs and returns for one export request.
type Built struct {
	// Manifest is export.json (canonical JSON) and ManifestDigest
	// "sha256:<hex>" of it.
	Manifest       []byte
	ManifestDigest string
	// Statement is the canonical provenance statement (the DSSE payload)
	// and PayloadDigest "sha256:<hex>" of it.
	Statement     []byte
	PayloadDigest string
	// Files is the number of files in the export.
	Files int
}

// Build validates req (proto.ExportRequest.Validate, again: the request
// may not come from DecodeExportRequest) and builds export.json and the
// provenance statement for an agent whose installation identity is
// installation (see BuilderID). Nothing is returned on any error; Code
// maps every error to its SPEC §4.3 code.
func Build(req *proto.ExportRequest, installation string) (*Built, error) {
	if req == nil {
		return nil, fmt.Errorf("%w: no request", proto.ErrInvalidRequest)
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	builder, err := BuilderID(installation)
	if err != nil {
		return nil, err
	}
	m := NewManifest(&req.Export)
	manifest, err := m.Canonical()
	if err != nil {
		return nil, err
	}
	mdigest := attest.Digest(manifest)
	st, err := NewStatement(m, strings.TrimPrefix(mdigest, "sha256:"), req.ScannerImageDigest, builder)
	if err != nil {
		return nil, err
	}
	payload, err := st.Canonical()
	if err != nil {
		return nil, err
	}
	return &Built{
		Manifest:       manifest,
		ManifestDigest: mdigest,
		Statement:      payload,
		PayloadDigest:  attest.Digest(payload),
		Files:          len(m.Files),
	}, nil
}

// Code is the SPEC §4.3 code for an error of DecodeExportRequest or Build:
// invalid_request for every request defect, tenant_mismatch when the agent
// has no (usable) installation identity to name as the builder, and
// internal_error otherwise (canonicalisation of validated input failing is
// a bug).
func Code(err error) proto.Code {
	switch {
	case errors.Is(err, proto.ErrInvalidRequest):
		return proto.CodeInvalidRequest
	case errors.Is(err, ErrNoInstallation), errors.Is(err, ErrInvalidInstallation):
		return proto.CodeTenantMismatch
	default:
		return proto.CodeInternalError
	}
}
