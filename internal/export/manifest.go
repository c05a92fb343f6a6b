package export

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	"github.com/stellaops/signer-agent/proto"
)

// ManifestType is the "_type" of export.json.
const ManifestType = "https://stella-ops.org/export/manifest/v1"

// Manifest is export.json: the export's identity, the caller's createdAt,
// its files sorted by path (byte order of their UTF-8, which is code point
// order) and its materials sorted by URI.
type Manifest struct {
	Type      string             `json:"_type"`
	ID        string             `json:"id"`
	Profile   string             `json:"profile"`
	CreatedAt string             `json:"createdAt"`
	Files     []proto.ExportFile `json:"files"`
	Materials []proto.Material   `json:"materials,omitempty"`
}

// NewManifest returns the manifest of a validated export: files sorted by
// path and materials by URI, in new slices (e is not modified).
func NewManifest(e *proto.Export) *Manifest {
	files := slices.Clone(e.Files)
	slices.SortFunc(files, func(a, b proto.ExportFile) int { return strings.Compare(a.Path, b.Path) })
	var mats []proto.Material
	if len(e.Materials) > 0 {
		mats = slices.Clone(e.Materials)
		slices.SortFunc(mats, func(a, b proto.Material) int { return strings.Compare(a.URI, b.URI) })
	}
	return &Manifest{Type: ManifestType, ID: e.ID, Profile: e.Profile, CreatedAt: e.CreatedAt, Files: files, Materials: mats}
}

// Canonical returns the manifest's RFC 8785 bytes: the content of
// export.json.
func (m *Manifest) Canonical() ([]byte, error) {
	n := 256
	for i := range m.Files {
		n += 128 + len(m.Files[i].Path) + len(m.Files[i].MediaType)
	}
	return appendManifest(make([]byte, 0, n), m), nil
}

// Export returns the export the manifest describes.
func (m *Manifest) Export() *proto.Export {
	return &proto.Export{ID: m.ID, Profile: m.Profile, CreatedAt: m.CreatedAt, Files: m.Files, Materials: m.Materials}
}

// ParseManifest reads export.json strictly: known members only, every rule
// of an export request (proto.ExportRequest.Validate), and byte for byte
// the canonical form the agent signs, so a manifest that parses is exactly
// one the agent could have produced. Failures wrap ErrManifest.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := proto.DecodeStrict(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if m.Type != ManifestType {
		return nil, fmt.Errorf("%w: _type is not %s", ErrManifest, ManifestType)
	}
	req := &proto.ExportRequest{Export: *m.Export()}
	if err := req.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	canon, err := NewManifest(&req.Export).Canonical()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if !bytes.Equal(canon, b) {
		return nil, fmt.Errorf("%w: not in canonical form (RFC 8785, files sorted by path)", ErrManifest)
	}
	return &m, nil
}
