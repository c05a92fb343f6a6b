package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
)

// reference is the library path the direct writers replace: encoding/json,
// then RFC 8785 with jcs.
func reference(t testing.TB, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	c, err := attest.Canonicalize(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func checkSame(t testing.TB, what string, v any, got []byte) {
	t.Helper()
	if want := reference(t, v); !bytes.Equal(got, want) {
		t.Fatalf("%s differs from jcs:\n got %s\nwant %s", what, got, want)
	}
}

// TestCanonicalMatchesJCS: manifest and statement bytes equal the
// encoding/json + jcs output, for the fixture and for strings full of
// what RFC 8785 escapes or keeps.
func TestCanonicalMatchesJCS(t *testing.T) {
	var all strings.Builder
	for c := rune(0); c < 0x80; c++ {
		all.WriteRune(c)
	}
	odd := []string{
		all.String(), "\u2028\u2029", "\u007f\u0080\u009f", "😀 emoji", "é/e\u0301", `quo"te`, `back\slash`, "<&>", "\ufffd", "",
	}
	for _, s := range odd {
		if got, want := appendString(nil, s), reference(t, s); !bytes.Equal(got, want) {
			t.Errorf("string %q: got %s, want %s", s, got, want)
		}
	}
	// Build does not let these through a path, but the writers must be
	// right for whatever a Manifest or Statement holds.
	r := request()
	m := NewManifest(&r.Export)
	for i, s := range odd {
		m.Files = append(m.Files, proto.ExportFile{Path: s, Digest: proto.FileDigest{SHA256: hexA}, Size: int64(i) * 1e12, MediaType: s})
	}
	m.Materials = append(m.Materials, proto.Material{URI: odd[0], Digest: map[string]string{"sha512": hexA + hexB, "sha256": hexC}})
	got, err := m.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, "manifest", m, got)
	st, err := NewStatement(m, hexA, "sha512:"+hexA+hexB, BuilderIDPrefix+"x%20y")
	if err != nil {
		t.Fatal(err)
	}
	st.Predicate.BuildDefinition.ExternalParameters.ID = odd[0]
	got, err = st.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, "statement", st, got)
	// Empty optional lists.
	m.Materials, st.Predicate.BuildDefinition.ResolvedDependencies = nil, nil
	got, _ = m.Canonical()
	checkSame(t, "manifest without materials", m, got)
	got, _ = st.Canonical()
	checkSame(t, "statement without dependencies", st, got)
	// The fixture, end to end.
	b, err := Build(request(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, "built manifest", NewManifest(&request().Export), b.Manifest)
}

// FuzzCanonicalMatchesJCS: for any valid UTF-8 strings in any member, the
// direct writers give the library's bytes.
func FuzzCanonicalMatchesJCS(f *testing.F) {
	f.Add("README.txt", "exp-1", "application/json", "oci://r/x", int64(412))
	f.Add("a\"b\\c\u2028\x01", "\x7f", "", "\x1f", int64(0))
	f.Add("données/é.txt", "p", "t/s", "https://h/ü?q=\"", int64(9007199254740991))
	f.Fuzz(func(t *testing.T, path, id, mediaType, uri string, size int64) {
		for _, s := range []string{path, id, mediaType, uri} {
			if !utf8.ValidString(s) {
				return // never reaches the writers: proto refuses it
			}
		}
		if size < 0 || size > proto.MaxExportFileSize {
			return
		}
		if got, want := appendString(nil, path), reference(t, path); !bytes.Equal(got, want) {
			t.Fatalf("string %q: got %s, want %s", path, got, want)
		}
		m := &Manifest{Type: ManifestType, ID: id, Profile: mediaType, CreatedAt: uri,
			Files:     []proto.ExportFile{{Path: path, Digest: proto.FileDigest{SHA256: hexA}, Size: size, MediaType: mediaType}, {Path: id, Size: 1}},
			Materials: []proto.Material{{URI: uri, Digest: map[string]string{"sha256": path, "sha512": id}}}}
		got, _ := m.Canonical()
		checkSame(t, "manifest", m, got)
		st, err := NewStatement(m, path, "sha256:"+id, uri)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = st.Canonical()
		checkSame(t, fmt.Sprintf("statement (%q)", path), st, got)
	})
}
