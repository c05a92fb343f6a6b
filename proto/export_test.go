package proto

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

const hexB = "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"

func exampleExportRequest() *ExportRequest {
	return &ExportRequest{
		Export: Export{
			ID:        "exp-2026-12-03-001",
			Profile:   "offline-kit",
			CreatedAt: "2026-12-03T10:00:00Z",
			Files: []ExportFile{
				{Path: "sbom/app.cdx.json", Digest: FileDigest{SHA256: hexA}, Size: 412, MediaType: "application/vnd.cyclonedx+json"},
				{Path: "README.txt", Digest: FileDigest{SHA256: hexB}, Size: 4},
			},
			Materials: []Material{{URI: "oci://registry.example/app@sha256:" + hexA, Digest: map[string]string{"sha256": hexA}}},
		},
		ScannerImageDigest: "sha256:" + hexA,
		PoE:                &PoE{Format: "jwt", Value: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"},
		Options:            &SignOptions{KeyIDs: []string{"tenant-a-2026"}},
	}
}

func TestGoldenExportWire(t *testing.T) {
	golden(t, "export_request.json", exampleExportRequest())
	golden(t, "export_response.json", &ExportResponse{
		Manifest:       []byte(`{"_type":"https://stella-ops.org/export/manifest/v1"}`),
		ManifestDigest: "sha256:" + hexB,
		SignResponse: SignResponse{
			RequestID: "req-1",
			AuditID:   "aud-1",
			Envelope: Envelope{
				PayloadType: PayloadTypeInToto,
				Payload:     []byte(`{"_type":"https://in-toto.io/Statement/v1"}`),
				Signatures:  []Signature{{KeyID: "tenant-a-2026", Sig: []byte{0x30, 0x45, 0x02}}},
			},
			Bundles: []json.RawMessage{json.RawMessage(`{"mediaType":"` + MediaTypeBundle + `"}`)},
			SigningIdentity: []SigningIdentity{{
				Mode: ModeKeyful, KeyID: "tenant-a-2026", KeySource: "file", Algorithm: "ecdsa-p256-sha256",
				PublicKeyHint: "aGludA==", CertificateChain: []string{}, BundleHash: "sha256:" + hexA,
			}},
			PayloadDigest: "sha256:" + hexA,
			BundleHash:    "sha256:" + hexA,
			Quota:         &Quota{Plan: "team", RemainingToday: 9412},
		},
	})
}

func TestDecodeExportRequestGolden(t *testing.T) {
	b, err := os.ReadFile("testdata/export_request.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeExportRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := json.Marshal(r)
	want, _ := json.Marshal(exampleExportRequest())
	if string(got) != string(want) {
		t.Fatalf("decoded\n %s\nwant\n %s", got, want)
	}
	if r.Mode() != ModeKeyful || len(r.KeyIDs()) != 1 {
		t.Fatalf("mode %q keys %v", r.Mode(), r.KeyIDs())
	}
}

// exportBody is a valid export request with files spliced in as raw JSON.
func exportBody(files string) string {
	return `{"export":{"id":"e1","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + files + `]}}`
}

func file(path string) string {
	return fmt.Sprintf(`{"path":%q,"digest":{"sha256":%q},"size":1}`, path, hexA)
}

func TestDecodeExportRequestRefusals(t *testing.T) {
	many := strings.Repeat(file("x")+",", MaxExportFiles) + file("y")
	tests := map[string]struct {
		body string
		want string // in the error
	}{
		"dot-dot":             {exportBody(file("../x")), `files[0].path: ".." segment`},
		"dot-dot inside":      {exportBody(file("a/../x")), `files[0].path: ".." segment`},
		"absolute":            {exportBody(file("/abs")), "files[0].path: absolute"},
		"double slash":        {exportBody(file("a//b")), "files[0].path: empty segment"},
		"trailing slash":      {exportBody(file("a/")), "files[0].path: empty segment"},
		"dot":                 {exportBody(file("./a")), `files[0].path: "." segment`},
		"empty path":          {exportBody(file("")), "files[0].path: empty"},
		"backslash":           {exportBody(file(`a\b`)), "files[0].path: contains a backslash"},
		"control character":   {exportBody(file("a\nb")), "files[0].path: contains a control character"},
		"C1 control":          {exportBody(file("a\u0085b")), "files[0].path: contains a control character"},
		"reserved name":       {exportBody(file("export.json")), `files[0].path: "export.json" is reserved`},
		"long segment":        {exportBody(file(strings.Repeat("a", 256))), "segment longer than 255"},
		"long path":           {exportBody(file(strings.Repeat("a/", 2048) + "b")), "longer than 4096"},
		"duplicate":           {exportBody(file("a") + "," + file("b") + "," + file("a")), "files[2].path: duplicate of export.files[0]"},
		"file and directory":  {exportBody(file("a/b/c") + "," + file("a/b")), "files[0].path: export.files[1] is a file"},
		"non-UTF-8 body":      {exportBody(`{"path":"a` + "\xff" + `","digest":{"sha256":"` + hexA + `"},"size":1}`), "not valid UTF-8"},
		"bad digest length":   {exportBody(`{"path":"a","digest":{"sha256":"abc"},"size":1}`), "digest.sha256: want 64 hex"},
		"upper-case digest":   {exportBody(`{"path":"a","digest":{"sha256":"` + strings.ToUpper(hexA) + `"},"size":1}`), "not lowercase hex"},
		"sha512 digest":       {exportBody(`{"path":"a","digest":{"sha512":"` + hexA + hexA + `"},"size":1}`), `unknown field "sha512"`},
		"no digest":           {exportBody(`{"path":"a","size":1}`), "digest.sha256: want 64 hex"},
		"negative size":       {exportBody(`{"path":"a","digest":{"sha256":"` + hexA + `"},"size":-1}`), "files[0].size: negative"},
		"missing size":        {exportBody(`{"path":"a","digest":{"sha256":"` + hexA + `"}}`), "files[0].size: required"},
		"fractional size":     {exportBody(`{"path":"a","digest":{"sha256":"` + hexA + `"},"size":1.5}`), "want an integer"},
		"huge size":           {exportBody(`{"path":"a","digest":{"sha256":"` + hexA + `"},"size":9007199254740992}`), "over 2^53-1"},
		"bad media type":      {exportBody(`{"path":"a","digest":{"sha256":"` + hexA + `"},"size":1,"mediaType":"text/plain; charset=utf-8"}`), "mediaType: want type/subtype"},
		"unknown file member": {exportBody(`{"path":"a","digest":{"sha256":"` + hexA + `"},"size":1,"mode":420}`), `unknown field "mode"`},
		"empty file list":     {exportBody(""), "export.files: at least one file"},
		"no files member":     {`{"export":{"id":"e1","profile":"p","createdAt":"2026-12-03T10:00:00Z"}}`, "export.files: at least one file"},
		"too many files":      {exportBody(many), fmt.Sprintf("export.files: more than %d files", MaxExportFiles)},
		"no id":               {`{"export":{"profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `]}}`, "export.id: required"},
		"bad id":              {`{"export":{"id":"-x","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `]}}`, "export.id: must start"},
		"id with space":       {`{"export":{"id":"a b","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `]}}`, "export.id: allowed characters"},
		"no profile":          {`{"export":{"id":"e","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `]}}`, "export.profile: required"},
		"no createdAt":        {`{"export":{"id":"e","profile":"p","files":[` + file("a") + `]}}`, "export.createdAt: required"},
		"createdAt offset":    {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00+01:00","files":[` + file("a") + `]}}`, "export.createdAt: want RFC 3339 in UTC"},
		"createdAt lowercase": {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03t10:00:00Z","files":[` + file("a") + `]}}`, "export.createdAt:"},
		"createdAt comma":     {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00,5Z","files":[` + file("a") + `]}}`, "export.createdAt:"},
		"createdAt date only": {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03Z","files":[` + file("a") + `]}}`, "export.createdAt:"},
		"material relative":   {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `],"materials":[{"uri":"x/y","digest":{"sha256":"` + hexA + `"}}]}}`, "materials[0].uri: want an absolute URI"},
		"material no digest":  {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `],"materials":[{"uri":"oci://r/x"}]}}`, "materials[0].digest: at least one"},
		"material bad digest": {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `],"materials":[{"uri":"oci://r/x","digest":{"md5":"00"}}]}}`, "materials[0].digest: unsupported"},
		"material duplicate":  {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `],"materials":[{"uri":"oci://r/x","digest":{"sha256":"` + hexA + `"}},{"uri":"oci://r/x","digest":{"sha256":"` + hexB + `"}}]}}`, "materials[1].uri: duplicate"},
		"bad scanner digest":  {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `]},"scannerImageDigest":"sha256:x"}`, "scannerImageDigest:"},
		"bad poe":             {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `]},"poe":{"format":"x","value":"v"}}`, "poe.format"},
		"bad mode":            {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `]},"options":{"mode":"x"}}`, "options.mode"},
		"unknown top member":  {`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[` + file("a") + `]},"subject":[]}`, `unknown field "subject"`},
		"no export":           {`{}`, "export.id: required"},
		"trailing data":       {exportBody(file("a")) + "{}", "trailing data"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := DecodeExportRequest([]byte(tc.body))
			if err == nil {
				t.Fatalf("accepted: %+v", r.Export.Files[:min(len(r.Export.Files), 3)])
			}
			if r != nil {
				t.Fatal("a request was returned with the error")
			}
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidRequest", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDecodeExportRequestAccepts(t *testing.T) {
	for name, files := range map[string]string{
		"unicode path":         file("données/résumé ☃.txt"),
		"dotfile":              file(".hidden/.x"),
		"dots in name":         file("a/..b/c.."),
		"colon and at":         file("blobs/sha256:ab@x"),
		"siblings like a dir":  file("a-b") + "," + file("a/b") + "," + file("a.b"),
		"max segment":          file(strings.Repeat("s", 255)),
		"zero size":            `{"path":"empty","digest":{"sha256":"` + hexA + `"},"size":0}`,
		"max size":             `{"path":"big","digest":{"sha256":"` + hexA + `"},"size":9007199254740991}`,
		"media type with plus": `{"path":"a","digest":{"sha256":"` + hexA + `"},"size":1,"mediaType":"application/vnd.in-toto+json"}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeExportRequest([]byte(exportBody(files))); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, ts := range []string{"2026-12-03T10:00:00Z", "2026-12-03T10:00:00.123456789Z", "1970-01-01T00:00:00Z"} {
		b := `{"export":{"id":"e","profile":"p","createdAt":"` + ts + `","files":[` + file("a") + `]}}`
		if _, err := DecodeExportRequest([]byte(b)); err != nil {
			t.Errorf("createdAt %s: %v", ts, err)
		}
	}
	// At the cap: accepted.
	var sb strings.Builder
	for i := range MaxExportFiles {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(file(fmt.Sprintf("d%d/f%d", i%100, i)))
	}
	if _, err := DecodeExportRequest([]byte(exportBody(sb.String()))); err != nil {
		t.Fatalf("%d files: %v", MaxExportFiles, err)
	}
}

// TestExportValidateProgrammatic: requests built in Go (not decoded) get
// the same checks, including UTF-8, which JSON decoding cannot produce.
func TestExportValidateProgrammatic(t *testing.T) {
	r := exampleExportRequest()
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	r.Export.Files[0].Path = "a\xffb"
	if err := r.Validate(); !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), "not valid UTF-8") {
		t.Fatalf("non-UTF-8 path: %v", err)
	}
	r = exampleExportRequest()
	r.Export.Files = append(r.Export.Files, r.Export.Files[0])
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "duplicate") {
		t.Fatalf("duplicate: %v", err)
	}
	r = exampleExportRequest()
	r.Export.Files = make([]ExportFile, MaxExportFiles+1)
	if err := r.Validate(); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("too many: %v", err)
	}
}

// FuzzDecodeExportRequest: decoding never panics; every refusal wraps
// ErrInvalidRequest; an accepted request re-encodes to one that decodes to
// the same value.
func FuzzDecodeExportRequest(f *testing.F) {
	if b, err := os.ReadFile("testdata/export_request.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(exportBody(file("a/b") + "," + file("c"))))
	f.Add([]byte(exportBody(file("../x"))))
	f.Add([]byte(exportBody(file("a") + "," + file("a/b"))))
	f.Add([]byte(`{"export":{"id":"e","profile":"p","createdAt":"2026-12-03T10:00:00Z","files":[{"path":"a","digest":{"sha256":"` + hexA + `"},"size":0}],"materials":[{"uri":"git+https://h/r@v1","digest":{"sha512":"` + hexA + hexA + `"}}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeExportRequest(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error not ErrInvalidRequest: %v", err)
			}
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := DecodeExportRequest(again)
		if err != nil {
			t.Fatalf("accepted request does not round-trip: %v\n%s", err, again)
		}
		if third, _ := json.Marshal(r2); string(third) != string(again) {
			t.Fatalf("round trip changed the request:\n%s\n%s", again, third)
		}
	})
}

func TestExportAsSignRequest(t *testing.T) {
	r := exampleExportRequest()
	s := r.AsSignRequest()
	if s.PredicateType != PredicateSLSAProvenanceV1 || s.ScannerImageDigest != r.ScannerImageDigest || s.PoE != r.PoE || s.Options != r.Options ||
		len(s.Subject) != 0 || s.Predicate != nil || s.Policy != nil {
		t.Fatalf("view %+v", s)
	}
	if r.Mode() != ModeKeyful || r.KeyIDs()[0] != "tenant-a-2026" {
		t.Fatal("mode/keys")
	}
	r.Options = &SignOptions{Mode: ModeKeyless}
	if r.Mode() != ModeKeyless || r.KeyIDs() != nil {
		t.Fatal("keyless view")
	}
}
