package export

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/stellaops/signer-agent/proto"
)

// FuzzExportRequest runs a request body through what the agent's body gate
// does (decode, validate, build) and checks: refusals are invalid_request;
// an accepted request always builds; the manifest parses back strictly and
// the statement matches it (CheckProvenance); reversing the file order
// changes no byte.
func FuzzExportRequest(f *testing.F) {
	if b, err := os.ReadFile("../../proto/testdata/export_request.json"); err == nil {
		f.Add(b)
	}
	seed, _ := json.Marshal(request())
	f.Add(seed)
	f.Add([]byte(`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00.5Z","files":[{"path":"z","digest":{"sha256":"` + hexA + `"},"size":0},{"path":"a/\u00e9","digest":{"sha256":"` + hexB + `"},"size":9007199254740991,"mediaType":"text/plain"}]}}`))
	f.Add([]byte(`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[{"path":"a/../b","digest":{"sha256":"` + hexA + `"},"size":1}]}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := proto.DecodeExportRequest(body)
		if err != nil {
			if Code(err) != proto.CodeInvalidRequest {
				t.Fatalf("refusal code %s: %v", Code(err), err)
			}
			return
		}
		b, err := Build(req, "node-1")
		if err != nil {
			t.Fatalf("accepted request does not build: %v", err)
		}
		m, err := ParseManifest(b.Manifest)
		if err != nil {
			t.Fatalf("built manifest does not parse: %v\n%s", err, b.Manifest)
		}
		if _, err := CheckProvenance(b.Statement, b.Manifest, m); err != nil {
			t.Fatalf("built statement does not match its manifest: %v", err)
		}
		slices.Reverse(req.Export.Files)
		again, err := Build(req, "node-1")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again.Manifest, b.Manifest) || !bytes.Equal(again.Statement, b.Statement) {
			t.Fatal("file order changed the output")
		}
	})
}
