package kit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// FuzzParseSums: the parser never panics, accepts only what it can write
// back byte for byte (after sorting), and never lets a path escape.
func FuzzParseSums(f *testing.F) {
	h := strings.Repeat("ab", 32)
	for _, s := range []string{
		h + "  README.md\n",
		h + "  bin/linux-amd64/signer-agent\n" + h + " *signer-agent_1.2.3+git4.gabc_amd64.deb\n",
		h + "  ../etc/passwd\n",
		h + "  SHA256SUMS\n",
		"\\" + h + "  a\\nb\n",
		h + "  a\n" + h + "  a\n",
		h + "  a",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		sums, err := ParseSums(b)
		if err != nil {
			return
		}
		for _, s := range sums {
			if CheckPath(s.Path) != nil || s.Path == SumsFile || s.Path == SumsBundleFile {
				t.Fatalf("accepted path %q", s.Path)
			}
		}
		again, err := ParseSums(FormatSums(sums))
		if err != nil {
			t.Fatalf("formatted sums do not parse: %v", err)
		}
		if len(again) != len(sums) {
			t.Fatalf("round trip lost lines: %d != %d", len(again), len(sums))
		}
	})
}

// FuzzReadTarGz: any byte string is refused or read into a tree of
// clean relative paths, without panicking.
func FuzzReadTarGz(f *testing.F) {
	// Seed with a real kit tarball and a few hostile shapes.
	dir := filepath.Join(f.TempDir(), "kit")
	for p, c := range map[string]string{"README.md": "# kit\n", "bin/linux-amd64/signerctl": "\x7fELF\n", SumsFile: "x"} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := WriteTarGz(&buf, dir, "signer-agent-offline-kit_1.2.3", time.Unix(1700000000, 0)); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	for _, hs := range [][]tar.Header{
		{{Name: "kit/../x", Typeflag: tar.TypeReg}},
		{{Name: "kit/l", Typeflag: tar.TypeSymlink, Linkname: "/"}},
		{{Name: "kit/a", Typeflag: tar.TypeReg, Size: 1}},
	} {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		tw := tar.NewWriter(zw)
		for _, h := range hs {
			h := h
			_ = tw.WriteHeader(&h)
			if h.Size > 0 {
				_, _ = tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
			}
		}
		_ = tw.Close()
		_ = zw.Close()
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := readTarGz(bytes.NewReader(b))
		if err != nil {
			return
		}
		if CheckPath(c.top) != nil || strings.Contains(c.top, "/") {
			t.Fatalf("bad top %q", c.top)
		}
		for p, f := range c.files {
			if CheckPath(p) != nil {
				t.Fatalf("accepted path %q", p)
			}
			if len(f.sha256) != 64 {
				t.Fatalf("%s: digest %q", p, f.sha256)
			}
		}
	})
}
