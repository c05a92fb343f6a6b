package export

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
)

var update = flag.Bool("update", false, "rewrite golden files")

const (
	hexA = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
	hexB = "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"
	hexC = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// request is a realistic export: nested and non-ASCII paths, a file
// without media type, an empty file, two materials, given out of order.
func request() *proto.ExportRequest {
	return &proto.ExportRequest{
		Export: proto.Export{
			ID:        "exp-2026-12-03-001",
			Profile:   "offline-kit",
			CreatedAt: "2026-12-03T10:00:00Z",
			Files: []proto.ExportFile{
				{Path: "vex/app.openvex.json", Digest: proto.FileDigest{SHA256: hexB}, Size: 2048, MediaType: "application/vnd.openvex+json"},
				{Path: "sbom/app.cdx.json", Digest: proto.FileDigest{SHA256: hexA}, Size: 412, MediaType: "application/vnd.cyclonedx+json"},
				{Path: "README.txt", Digest: proto.FileDigest{SHA256: hexB}, Size: 4},
				{Path: "données/é.txt", Digest: proto.FileDigest{SHA256: hexC}, Size: 0},
				{Path: "sbom/app-2.cdx.json", Digest: proto.FileDigest{SHA256: hexA}, Size: 412},
			},
			Materials: []proto.Material{
				{URI: "oci://registry.example/app@sha256:" + hexA, Digest: map[string]string{"sha256": hexA}},
				{URI: "https://feeds.example/nvd/2026-12-03.json.gz", Digest: map[string]string{"sha256": hexB, "sha512": hexA + hexB}},
			},
		},
		ScannerImageDigest: "sha256:" + hexC,
		PoE:                &proto.PoE{Format: "jwt", Value: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"},
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/export -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from golden:\n got %s\nwant %s", name, got, want)
	}
}

// goldenKey is a test-only Ed25519 key from a fixed seed: Ed25519
// signatures are deterministic, so the bundle is byte-stable too.
func goldenKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
}

// TestGolden pins export.json, the provenance statement and a bundle
// signed over it with a fixed Ed25519 key.
func TestGolden(t *testing.T) {
	b, err := Build(request(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "export.json", b.Manifest)
	checkGolden(t, "statement.json", b.Statement)
	res, err := attest.Sign(context.Background(), b.Statement, []attest.Signer{{ID: "golden", Source: "memory", Key: goldenKey()}})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "provenance.bundle.json", res.Bundles[0])
	checkGolden(t, "digests.txt", fmt.Appendf(nil, "manifestDigest %s\npayloadDigest %s\nbundleHash %s\nfiles %d\n",
		b.ManifestDigest, b.PayloadDigest, res.BundleHash, b.Files))
	if b.ManifestDigest != attest.Digest(b.Manifest) || b.PayloadDigest != attest.Digest(b.Statement) || b.Files != 5 {
		t.Fatalf("digests or count wrong: %+v", b)
	}
	// The statement is what sigstore-go verifies against any file.
	if _, err := attest.VerifyBundle(res.Bundles[0], []crypto.PublicKey{goldenKey().Public()}, attest.Expect{
		PredicateType: proto.PredicateSLSAProvenanceV1, ArtifactSHA256: hexC}); err != nil {
		t.Fatal(err)
	}
}

// TestDeterminism: file and material order, a second build and a copy of
// the request never change a byte; the caller's request is not modified.
func TestDeterminism(t *testing.T) {
	ref, err := Build(request(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		r := request()
		rng.Shuffle(len(r.Export.Files), func(a, b int) { r.Export.Files[a], r.Export.Files[b] = r.Export.Files[b], r.Export.Files[a] })
		rng.Shuffle(len(r.Export.Materials), func(a, b int) {
			r.Export.Materials[a], r.Export.Materials[b] = r.Export.Materials[b], r.Export.Materials[a]
		})
		before, _ := json.Marshal(r)
		got, err := Build(r, "node-1")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Manifest, ref.Manifest) || !bytes.Equal(got.Statement, ref.Statement) {
			t.Fatalf("shuffle %d: output differs", i)
		}
		if after, _ := json.Marshal(r); !bytes.Equal(before, after) {
			t.Fatalf("shuffle %d: Build modified the request", i)
		}
	}
	// Through the wire: the JSON request decodes and builds identically.
	body, _ := json.Marshal(request())
	dec, err := proto.DecodeExportRequest(body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Build(dec, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Statement, ref.Statement) {
		t.Fatal("decoded request builds another statement")
	}
	// What the statement depends on.
	other, _ := Build(request(), "node-2")
	if bytes.Equal(other.Statement, ref.Statement) || !bytes.Equal(other.Manifest, ref.Manifest) {
		t.Fatal("the installation must change the statement and only the statement")
	}
	r := request()
	r.Export.Files[0].Size++
	changed, _ := Build(r, "node-1")
	if bytes.Equal(changed.Manifest, ref.Manifest) || bytes.Equal(changed.Statement, ref.Statement) {
		t.Fatal("a size change must change manifest and statement (the manifest digest is a subject)")
	}
}

func TestStatementShape(t *testing.T) {
	b, err := Build(request(), "node 1/ü")
	if err != nil {
		t.Fatal(err)
	}
	var st Statement
	if err := json.Unmarshal(b.Statement, &st); err != nil {
		t.Fatal(err)
	}
	if st.Type != proto.StatementType || st.PredicateType != proto.PredicateSLSAProvenanceV1 {
		t.Fatalf("types %q %q", st.Type, st.PredicateType)
	}
	names := []string{}
	for _, s := range st.Subject {
		names = append(names, s.Name)
	}
	want := "export.json README.txt donn\u00e9es/\u00e9.txt sbom/app-2.cdx.json sbom/app.cdx.json vex/app.openvex.json"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("subjects %q, want %q", got, want)
	}
	if st.Subject[0].Digest["sha256"] != strings.TrimPrefix(b.ManifestDigest, "sha256:") {
		t.Fatal("export.json subject digest is not the manifest digest")
	}
	bd := st.Predicate.BuildDefinition
	if bd.BuildType != BuildType || bd.ExternalParameters.ID != "exp-2026-12-03-001" || bd.ExternalParameters.Profile != "offline-kit" {
		t.Fatalf("build definition %+v", bd)
	}
	deps := bd.ResolvedDependencies
	if len(deps) != 3 || deps[0].URI != "https://feeds.example/nvd/2026-12-03.json.gz" || deps[2].Name != ScannerDependencyName || deps[2].Digest["sha256"] != hexC {
		t.Fatalf("resolved dependencies %+v", deps)
	}
	if id := st.Predicate.RunDetails.Builder.ID; id != BuilderIDPrefix+"node%201%2F%C3%BC" {
		t.Fatalf("builder id %q", id)
	}
	// Without a scanner digest or materials: no resolvedDependencies.
	r := request()
	r.ScannerImageDigest, r.Export.Materials = "", nil
	b, err = Build(r, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b.Statement, []byte("resolvedDependencies")) || bytes.Contains(b.Manifest, []byte("materials")) {
		t.Fatalf("empty lists are emitted: %s", b.Statement)
	}
}

// TestBuildRefusals: each bad input is refused with its exact code, and
// nothing to sign is returned.
func TestBuildRefusals(t *testing.T) {
	edit := func(f func(r *proto.ExportRequest)) *proto.ExportRequest {
		r := request()
		f(r)
		return r
	}
	path := func(p string) *proto.ExportRequest {
		return edit(func(r *proto.ExportRequest) { r.Export.Files[0].Path = p })
	}
	many := edit(func(r *proto.ExportRequest) {
		r.Export.Files = make([]proto.ExportFile, proto.MaxExportFiles+1)
		for i := range r.Export.Files {
			r.Export.Files[i] = proto.ExportFile{Path: fmt.Sprintf("f%d", i), Digest: proto.FileDigest{SHA256: hexA}}
		}
	})
	tests := map[string]struct {
		req  *proto.ExportRequest
		inst string
		code proto.Code
	}{
		"../x":             {path("../x"), "n", proto.CodeInvalidRequest},
		"/abs":             {path("/abs"), "n", proto.CodeInvalidRequest},
		"a//b":             {path("a//b"), "n", proto.CodeInvalidRequest},
		"./a":              {path("./a"), "n", proto.CodeInvalidRequest},
		"non-UTF-8 path":   {path("a\xc3"), "n", proto.CodeInvalidRequest},
		"control char":     {path("a\x1bb"), "n", proto.CodeInvalidRequest},
		"export.json":      {path("export.json"), "n", proto.CodeInvalidRequest},
		"duplicate paths":  {path("README.txt"), "n", proto.CodeInvalidRequest},
		"bad digest":       {edit(func(r *proto.ExportRequest) { r.Export.Files[1].Digest.SHA256 = hexA[:63] + "g" }), "n", proto.CodeInvalidRequest},
		"negative size":    {edit(func(r *proto.ExportRequest) { r.Export.Files[2].Size = -1 }), "n", proto.CodeInvalidRequest},
		"empty file list":  {edit(func(r *proto.ExportRequest) { r.Export.Files = nil }), "n", proto.CodeInvalidRequest},
		"too many files":   {many, "n", proto.CodeInvalidRequest},
		"nil request":      {nil, "n", proto.CodeInvalidRequest},
		"no installation":  {request(), "", proto.CodeTenantMismatch},
		"bad installation": {request(), "a\nb", proto.CodeTenantMismatch},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b, err := Build(tc.req, tc.inst)
			if err == nil {
				t.Fatal("accepted")
			}
			if b != nil {
				t.Fatal("output returned with the error")
			}
			if got := Code(err); got != tc.code {
				t.Fatalf("code %s, want %s (%v)", got, tc.code, err)
			}
		})
	}
}

// TestDecodeRefusalCodes: the same refusals arriving as JSON bodies, as the
// agent's body gate sees them.
func TestDecodeRefusalCodes(t *testing.T) {
	file := func(p string) string { return fmt.Sprintf(`{"path":%q,"digest":{"sha256":%q},"size":1}`, p, hexA) }
	body := func(files string) string {
		return `{"export":{"id":"e1","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + files + `]}}`
	}
	many := strings.Repeat(file("x")+",", proto.MaxExportFiles) + file("y")
	for name, b := range map[string]string{
		"../x":            body(file("../x")),
		"/abs":            body(file("/abs")),
		"a//b":            body(file("a//b")),
		"./a":             body(file("./a")),
		"duplicate paths": body(file("a") + "," + file("a")),
		"bad digest":      body(`{"path":"a","digest":{"sha256":"00"},"size":1}`),
		"negative size":   body(`{"path":"a","digest":{"sha256":"` + hexA + `"},"size":-5}`),
		"non-UTF-8":       body(`{"path":"a` + "\xfe" + `","digest":{"sha256":"` + hexA + `"},"size":1}`),
		"empty file list": body(""),
		"too many files":  body(many),
		"malformed JSON":  `{"export":`,
	} {
		t.Run(name, func(t *testing.T) {
			r, err := proto.DecodeExportRequest([]byte(b))
			if err == nil || r != nil {
				t.Fatalf("accepted: %v", err)
			}
			if got := Code(err); got != proto.CodeInvalidRequest {
				t.Fatalf("code %s, want invalid_request (%v)", got, err)
			}
		})
	}
}

func TestParseManifest(t *testing.T) {
	b, err := Build(request(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "exp-2026-12-03-001" || len(m.Files) != 5 || m.Files[0].Path != "README.txt" {
		t.Fatalf("parsed %+v", m)
	}
	var indented bytes.Buffer
	_ = json.Indent(&indented, b.Manifest, "", " ")
	unsorted := bytes.Replace(b.Manifest, []byte(`"path":"README.txt"`), []byte(`"path":"zz.txt"`), 1)
	for name, in := range map[string][]byte{
		"indented":       indented.Bytes(),
		"unsorted files": unsorted,
		"wrong type":     bytes.Replace(b.Manifest, []byte(ManifestType), []byte("x"), 1),
		"bad path":       bytes.Replace(b.Manifest, []byte(`"path":"README.txt"`), []byte(`"path":"../README.txt"`), 1),
		"unknown member": bytes.Replace(b.Manifest, []byte(`{"_type"`), []byte(`{"x":1,"_type"`), 1),
		"not JSON":       []byte("export"),
	} {
		if _, err := ParseManifest(in); !errors.Is(err, ErrManifest) {
			t.Errorf("%s: got %v, want ErrManifest", name, err)
		}
	}
}

func TestCheckProvenance(t *testing.T) {
	b, err := Build(request(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(b.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	c, err := CheckProvenance(b.Statement, b.Manifest, m)
	if err != nil {
		t.Fatal(err)
	}
	if c.BuilderID != BuilderIDPrefix+"node-1" || c.ScannerDigest != "sha256:"+hexC || c.Subjects != 6 {
		t.Fatalf("checked %+v", c)
	}
	// Statements that do not match this manifest.
	fewer := request()
	fewer.Export.Files = fewer.Export.Files[1:]
	more := request()
	more.Export.Files = append(more.Export.Files, proto.ExportFile{Path: "extra", Digest: proto.FileDigest{SHA256: hexA}})
	otherDigest := request()
	otherDigest.Export.Files[0].Digest.SHA256 = hexC
	otherSize := request()
	otherSize.Export.Files[0].Size = 1
	otherID := request()
	otherID.Export.ID = "exp-2"
	otherMat := request()
	otherMat.Export.Materials[0].Digest = map[string]string{"sha256": hexB}
	for name, tc := range map[string]struct {
		req  *proto.ExportRequest
		want string
	}{
		"a file fewer":     {fewer, "not a subject"},
		"a file more":      {more, `subject "extra" is not in the manifest`},
		"another digest":   {otherDigest, "digest differs"},
		"another size":     {otherSize, "signs another export.json"},
		"another id":       {otherID, "externalParameters"},
		"another material": {otherMat, "material"},
	} {
		t.Run(name, func(t *testing.T) {
			o, err := Build(tc.req, "node-1")
			if err != nil {
				t.Fatal(err)
			}
			_, err = CheckProvenance(o.Statement, b.Manifest, m)
			if !errors.Is(err, ErrProvenance) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want ErrProvenance containing %q", err, tc.want)
			}
		})
	}
	dup := bytes.Replace(b.Statement, []byte(`"subject":[`), []byte(`"subject":[{"digest":{"sha256":"`+hexB+`"},"name":"README.txt"},`), 1)
	if _, err := CheckProvenance(dup, b.Manifest, m); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("duplicate subject: %v", err)
	}
	wrongType := bytes.Replace(b.Statement, []byte(proto.PredicateSLSAProvenanceV1), []byte("https://slsa.dev/provenance/v0.2"), 1)
	if _, err := CheckProvenance(wrongType, b.Manifest, m); err == nil || !strings.Contains(err.Error(), "predicateType") {
		t.Fatalf("wrong predicate type: %v", err)
	}
	wrongBuild := bytes.Replace(b.Statement, []byte(BuildType), []byte("https://example/other"), 1)
	if _, err := CheckProvenance(wrongBuild, b.Manifest, m); err == nil || !strings.Contains(err.Error(), "buildType") {
		t.Fatalf("wrong build type: %v", err)
	}
}
