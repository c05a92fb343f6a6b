package kit_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/kit"
	"github.com/stellaops/signer-agent/internal/kit/kittest"
	"github.com/stellaops/signer-agent/proto"
)

func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyGoodKit(t *testing.T) {
	key := newKey(t)
	top := kittest.Build(t, t.TempDir(), kittest.Default(), key)
	for name, p := range map[string]string{"dir": top, "tar.gz": kittest.TarGz(t, top)} {
		t.Run(name, func(t *testing.T) {
			res, err := kit.Verify(context.Background(), p, []crypto.PublicKey{key.Public()})
			if err != nil {
				t.Fatal(err)
			}
			if res.Version != "1.2.3" || res.SourceCommit != kittest.Commit || res.Kit != "signer-agent-offline-kit_1.2.3" {
				t.Fatalf("result %+v", res)
			}
			// Every file but SHA256SUMS and its bundle is listed.
			if want := len(kittest.Default().Files) + 1; res.Files != want {
				t.Fatalf("files %d, want %d", res.Files, want)
			}
			if len(res.InKit) != 6 || len(res.External) != 1 || res.External[0].Name != "signer-agent_1.2.3_oci.tar" {
				t.Fatalf("subjects in kit %v, external %v", res.InKit, res.External)
			}
			hint, _ := keys.PublicKeyHint(key.Public())
			if res.KeyHint != hint {
				t.Fatalf("key hint %q, want %q", res.KeyHint, hint)
			}
		})
	}
}

func TestVerifyRefuses(t *testing.T) {
	good := newKey(t)
	other := newKey(t)
	cases := []struct {
		name string
		spec func(*kittest.Spec)
		// after changes the built kit directory.
		after func(t *testing.T, top string)
		key   crypto.Signer // verification key; default good
		tar   bool          // verify the tarball instead of the directory
		want  string        // in the error
	}{
		{name: "tampered file", after: func(t *testing.T, top string) {
			write(t, top, "docs/offline-kit.md", "# changed\n")
		}, want: "docs/offline-kit.md: checksum mismatch"},
		{name: "tampered binary", after: func(t *testing.T, top string) {
			write(t, top, "bin/linux-amd64/signer-agent", "\x7fELF evil\n")
		}, want: "bin/linux-amd64/signer-agent: checksum mismatch"},
		{name: "missing file", after: func(t *testing.T, top string) {
			rm(t, top, "install.sh")
		}, want: "install.sh: listed in SHA256SUMS but missing"},
		{name: "extra file", after: func(t *testing.T, top string) {
			write(t, top, "bin/linux-amd64/backdoor", "x")
		}, want: "bin/linux-amd64/backdoor: in the kit but not listed"},
		{name: "tampered SHA256SUMS", after: func(t *testing.T, top string) {
			// A consistent-looking edit: the README and its line both change.
			write(t, top, "README.md", "# evil\n")
			b := read(t, top, kit.SumsFile)
			b = strings.Replace(b, kittest.SHA256([]byte("# kit\n")), kittest.SHA256([]byte("# evil\n")), 1)
			write(t, top, kit.SumsFile, b)
		}, want: "SHA256SUMS.sigstore.json: does not verify SHA256SUMS"},
		{name: "wrong key", key: other, want: "SHA256SUMS.sigstore.json: does not verify"},
		{name: "wrong key, tarball", key: other, tar: true, want: "SHA256SUMS.sigstore.json: does not verify"},
		{name: "tampered file, tarball", tar: true, after: func(t *testing.T, top string) {
			write(t, top, "signer-agent_1.2.3_amd64.deb", "!<arch>\nevil\n")
		}, want: "signer-agent_1.2.3_amd64.deb: checksum mismatch"},
		{name: "missing SHA256SUMS", after: func(t *testing.T, top string) {
			rm(t, top, kit.SumsFile)
		}, want: "SHA256SUMS: missing"},
		{name: "missing signature", after: func(t *testing.T, top string) {
			rm(t, top, kit.SumsBundleFile)
		}, want: "SHA256SUMS.sigstore.json: missing"},
		{name: "sums signed by another key", spec: func(s *kittest.Spec) { s.SumsKey = other },
			want: "SHA256SUMS.sigstore.json: does not verify"},
		{name: "provenance signed by another key", spec: func(s *kittest.Spec) { s.ProvenanceKey = other },
			want: "provenance.sigstore.json: does not verify"},
		{name: "provenance subject digest differs", spec: func(s *kittest.Spec) {
			s.Subjects = []proto.Subject{
				{Name: "signer-agent_1.2.3_amd64.deb", Digest: map[string]string{"sha256": kittest.SHA256([]byte("other"))}},
			}
		}, want: "signer-agent_1.2.3_amd64.deb: provenance subject digest"},
		{name: "binary not in provenance", spec: func(s *kittest.Spec) {
			s.Subjects = []proto.Subject{
				{Name: "signer-agent_1.2.3_amd64.deb", Digest: map[string]string{"sha256": kittest.SHA256([]byte(s.Files["signer-agent_1.2.3_amd64.deb"]))}},
				{Name: "signer-agent_1.2.3_arm64.deb", Digest: map[string]string{"sha256": kittest.SHA256([]byte(s.Files["signer-agent_1.2.3_arm64.deb"]))}},
			}
		}, want: "bin/linux-amd64/signer-agent: not a subject of the provenance"},
		{name: "provenance of another commit", spec: func(s *kittest.Spec) {
			s.ProvenanceCommit = strings.Repeat("f", 40)
		}, want: "provenance.sigstore.json: source commit"},
		{name: "symlink in the kit", after: func(t *testing.T, top string) {
			if err := os.Symlink("/etc/passwd", filepath.Join(top, "docs", "link")); err != nil {
				t.Fatal(err)
			}
		}, want: "docs/link: a symbolic link is not allowed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := kittest.Default()
			if tc.spec != nil {
				tc.spec(s)
			}
			top := kittest.Build(t, t.TempDir(), s, good)
			if tc.after != nil {
				tc.after(t, top)
			}
			p := top
			if tc.tar {
				// The tarball packs the tree as changed above.
				p = kittest.TarGz(t, top)
			}
			key := crypto.Signer(good)
			if tc.key != nil {
				key = tc.key
			}
			res, err := kit.Verify(context.Background(), p, []crypto.PublicKey{key.Public()})
			if err == nil {
				t.Fatalf("verified: %+v", res)
			}
			if !errors.Is(err, kit.ErrVerify) {
				t.Fatalf("error does not wrap ErrVerify: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

// TestVerifyHostileTarballs: entries that would escape, alias or hide
// files are refused before any signature is looked at.
func TestVerifyHostileTarballs(t *testing.T) {
	key := newKey(t)
	cases := []struct {
		name    string
		entries []tar.Header
		want    string
	}{
		{"dot-dot", []tar.Header{{Name: "kit/", Typeflag: tar.TypeDir}, {Name: "kit/../evil", Typeflag: tar.TypeReg}}, "not clean"},
		{"absolute", []tar.Header{{Name: "/etc/passwd", Typeflag: tar.TypeReg}}, "absolute path"},
		{"symlink", []tar.Header{{Name: "kit/", Typeflag: tar.TypeDir}, {Name: "kit/l", Typeflag: tar.TypeSymlink, Linkname: "/etc"}}, "type \"2\" is not allowed"},
		{"hard link", []tar.Header{{Name: "kit/a", Typeflag: tar.TypeReg}, {Name: "kit/b", Typeflag: tar.TypeLink, Linkname: "kit/a"}}, "type \"1\" is not allowed"},
		{"device", []tar.Header{{Name: "kit/d", Typeflag: tar.TypeChar}}, "not allowed"},
		{"duplicate", []tar.Header{{Name: "kit/a", Typeflag: tar.TypeReg}, {Name: "kit/a", Typeflag: tar.TypeReg}}, "appears twice"},
		{"two top directories", []tar.Header{{Name: "kit/a", Typeflag: tar.TypeReg}, {Name: "other/b", Typeflag: tar.TypeReg}}, "outside the top directory"},
		{"file at the top", []tar.Header{{Name: "a", Typeflag: tar.TypeReg}}, "top level must be a directory"},
		{"file and directory", []tar.Header{{Name: "kit/a", Typeflag: tar.TypeReg}, {Name: "kit/a/b", Typeflag: tar.TypeReg}}, "both a file and a directory"},
		{"empty", nil, "empty tar"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "kit.tar.gz")
			if err := os.WriteFile(p, tarGz(t, tc.entries), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := kit.Verify(context.Background(), p, []crypto.PublicKey{key.Public()})
			if err == nil || !errors.Is(err, kit.ErrLayout) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrLayout containing %q", err, tc.want)
			}
		})
	}
	t.Run("not gzip", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "kit.tar.gz")
		if err := os.WriteFile(p, []byte("plain text"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := kit.Verify(context.Background(), p, []crypto.PublicKey{key.Public()}); !errors.Is(err, kit.ErrLayout) {
			t.Fatalf("error %v, want ErrLayout", err)
		}
	})
}

// TestWriteTarGzDeterministic: the archive depends on names, contents and
// executable bits only, not on file times or the order files were made in.
func TestWriteTarGzDeterministic(t *testing.T) {
	key := newKey(t)
	a := kittest.Build(t, t.TempDir(), kittest.Default(), key)
	b := kittest.Build(t, t.TempDir(), kittest.Default(), key)
	old := time.Unix(86400, 0)
	if err := os.Chtimes(filepath.Join(b, "README.md"), old, old); err != nil {
		t.Fatal(err)
	}
	ta, tb := read(t, filepath.Dir(kittest.TarGz(t, a)), filepath.Base(a)+".tar.gz"), read(t, filepath.Dir(kittest.TarGz(t, b)), filepath.Base(b)+".tar.gz")
	if ta != tb {
		t.Fatal("two kits of the same content differ")
	}
	// And the archive's entries carry the normalised metadata.
	zr, err := gzip.NewReader(strings.NewReader(ta))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.ModTime.Unix() != 1700000000 {
			t.Fatalf("%s: uid %d gid %d uname %q mtime %v", h.Name, h.Uid, h.Gid, h.Uname, h.ModTime)
		}
		wantMode := int64(0o644)
		switch {
		case h.Typeflag == tar.TypeDir, strings.HasSuffix(h.Name, "install.sh"), strings.Contains(h.Name, "/bin/linux-"):
			wantMode = 0o755
		}
		if h.Mode != wantMode {
			t.Fatalf("%s: mode %o, want %o", h.Name, h.Mode, wantMode)
		}
	}
}

func tarGz(t *testing.T, entries []tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, h := range entries {
		h := h
		h.Mode = 0o644
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func write(t *testing.T, top, rel, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(top, filepath.FromSlash(rel)), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, top, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(top, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func rm(t *testing.T, top, rel string) {
	t.Helper()
	if err := os.Remove(filepath.Join(top, filepath.FromSlash(rel))); err != nil {
		t.Fatal(err)
	}
}
