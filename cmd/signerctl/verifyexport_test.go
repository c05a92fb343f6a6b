package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/proto"
)

// exportTree writes a small export: nested directories, a non-ASCII name,
// an empty file and files whose byte order differs from walk order.
func exportTree(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "exp-1")
	for name, content := range map[string]string{
		"README.txt":          "read me\n",
		"sbom/app.cdx.json":   `{"bomFormat":"CycloneDX"}`,
		"sbom/app-2.cdx.json": `{"bomFormat":"CycloneDX","n":2}`,
		"a-b":                 "dash\n",
		"a/b":                 "slash\n",
		"données/é.txt":       "accents\n",
		"empty":               "",
	} {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// exportRequestFor walks and hashes dir with the command's own code and
// returns the request signerctl sign export would send.
func exportRequestFor(t *testing.T, dir, createdAt string) *proto.ExportRequest {
	t.Helper()
	root, err := exportRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := walkTree(context.Background(), root, nil)
	if err != nil {
		t.Fatal(err)
	}
	sums, err := hashFiles(context.Background(), tr.files, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := &proto.ExportRequest{Export: proto.Export{ID: "exp-1", Profile: "offline-kit", CreatedAt: createdAt}}
	for i, f := range tr.files {
		req.Export.Files = append(req.Export.Files, proto.ExportFile{Path: f.rel, Digest: proto.FileDigest{SHA256: sums[i].sha256}, Size: sums[i].size})
	}
	return req
}

// signedExport is an export signed in-process as the agent signs it.
type signedExport struct {
	dir, out                        string
	manifest, bundle, envelope, pub string
	wrongPub                        string
	manifestDigest, payloadDigest   string
}

// signExportFixture builds export.json and the provenance with
// internal/export and signs it with attest.Sign (the agent's path), then
// writes the outputs next to (not inside) the tree.
func signExportFixture(t *testing.T) *signedExport {
	t.Helper()
	return signExportFixtureAt(t, "2026-12-03T10:00:00Z")
}

// signExportFixtureAt is signExportFixture with another createdAt.
func signExportFixtureAt(t *testing.T, createdAt string) *signedExport {
	t.Helper()
	s := &signedExport{dir: exportTree(t), out: t.TempDir()}
	req := exportRequestFor(t, s.dir, createdAt)
	b, err := export.Build(req, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	k, wrong := newKey(t), newKey(t)
	res, err := attest.Sign(context.Background(), b.Statement, []attest.Signer{{ID: "k1", Source: "memory", Key: k}})
	if err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(res.Envelope)
	s.manifest = writeFile(t, s.out, "export.json", string(b.Manifest))
	s.bundle = writeFile(t, s.out, "provenance.bundle.json", string(res.Bundles[0]))
	s.envelope = writeFile(t, s.out, "provenance.dsse.json", string(env))
	s.pub = writeFile(t, s.out, "k1.pub", pubPEM(t, k))
	s.wrongPub = writeFile(t, s.out, "wrong.pub", pubPEM(t, wrong))
	s.manifestDigest, s.payloadDigest = b.ManifestDigest, b.PayloadDigest
	return s
}

func (s *signedExport) args(extra ...string) []string {
	return append([]string{"verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundle, "--key", s.pub}, extra...)
}

func TestVerifyExportIntact(t *testing.T) {
	s := signExportFixture(t)
	for name, args := range map[string][]string{
		"key":           s.args(),
		"with envelope": s.args("--envelope", s.envelope),
		"one job":       s.args("--jobs", "1"),
		"trust dir":     {"verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundle, "--trust-dir", s.out},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, args...)
			r.wantCode(t, exitOK)
			want := "Verified OK: export exp-1 (profile offline-kit, createdAt 2026-12-03T10:00:00Z): 7 files"
			if !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, "manifestDigest="+s.manifestDigest) ||
				!strings.Contains(r.stdout, "builder="+export.BuilderIDPrefix+"node-1") {
				t.Fatalf("stdout %q", r.stdout)
			}
			if r.stderr != "" {
				t.Fatalf("stderr %q", r.stderr)
			}
		})
	}
}

// TestVerifyExportDetectsChanges: a modified, a missing and an extra file
// are each named, with exit status 1; so are all three at once.
func TestVerifyExportDetectsChanges(t *testing.T) {
	tests := map[string]struct {
		change  func(t *testing.T, dir string)
		stdout  []string // lines, in order
		summary string
	}{
		"modified, same size": {
			change:  func(t *testing.T, dir string) { writeFile(t, dir, "README.txt", "READ ME\n") },
			stdout:  []string{"modified: README.txt (sha256 differs)"},
			summary: "1 modified, 0 missing, 0 extra",
		},
		"modified size": {
			change:  func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "sbom"), "app.cdx.json", "{}") },
			stdout:  []string{"modified: sbom/app.cdx.json (size 2, manifest says 25)"},
			summary: "1 modified, 0 missing, 0 extra",
		},
		"missing": {
			change: func(t *testing.T, dir string) {
				if err := os.Remove(filepath.Join(dir, "données", "é.txt")); err != nil {
					t.Fatal(err)
				}
			},
			stdout:  []string{"missing:  données/é.txt"},
			summary: "0 modified, 1 missing, 0 extra",
		},
		"extra": {
			change:  func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "sbom"), "injected.json", "{}") },
			stdout:  []string{"extra:    sbom/injected.json"},
			summary: "0 modified, 0 missing, 1 extra",
		},
		"extra symlink": {
			change: func(t *testing.T, dir string) {
				if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
					t.Fatal(err)
				}
			},
			stdout:  []string{"extra:    link (symlink)"},
			summary: "0 modified, 0 missing, 1 extra",
		},
		"file replaced by a symlink": {
			change: func(t *testing.T, dir string) {
				p := filepath.Join(dir, "a-b")
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink("a/b", p); err != nil {
					t.Fatal(err)
				}
			},
			stdout:  []string{"modified: a-b (now a symlink)"},
			summary: "1 modified, 0 missing, 0 extra",
		},
		"extra name with a newline": {
			change:  func(t *testing.T, dir string) { writeFile(t, dir, "x\ny", "") },
			stdout:  []string{`extra:    "x\ny"`},
			summary: "0 modified, 0 missing, 1 extra",
		},
		"modified, missing and extra": {
			change: func(t *testing.T, dir string) {
				writeFile(t, filepath.Join(dir, "a"), "b", "SLASH\n")
				if err := os.Remove(filepath.Join(dir, "empty")); err != nil {
					t.Fatal(err)
				}
				writeFile(t, dir, "zz-extra", "x")
			},
			stdout:  []string{"modified: a/b (sha256 differs)", "missing:  empty", "extra:    zz-extra"},
			summary: "1 modified, 1 missing, 1 extra",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := signExportFixture(t)
			tc.change(t, s.dir)
			r := runCtl(t, s.args()...)
			r.wantCode(t, exitFailure)
			if got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n"); strings.Join(got, "|") != strings.Join(tc.stdout, "|") {
				t.Fatalf("stdout lines\n %q\nwant\n %q", got, tc.stdout)
			}
			want := "signerctl: export exp-1 does not match its signed manifest: " + tc.summary + "\n"
			if r.stderr != want {
				t.Fatalf("stderr %q, want %q", r.stderr, want)
			}
		})
	}
}

func TestVerifyExportRefuses(t *testing.T) {
	s := signExportFixture(t)
	m, _ := os.ReadFile(s.manifest)
	// A manifest edited to match a modified file: the signature no longer
	// covers it.
	edited := strings.Replace(string(m), `"size":8`, `"size":9`, 1)
	if edited == string(m) {
		t.Fatal("edit changed nothing")
	}
	editedPath := writeFile(t, s.out, "edited.json", edited)
	indented := writeFile(t, s.out, "indented.json", strings.ReplaceAll(string(m), ",", ", "))
	// Provenance for the same files exported at another time, validly
	// signed (with another key).
	other := signExportFixtureAt(t, "2026-12-04T10:00:00Z")
	tests := map[string]struct {
		args    []string
		code    int
		wantErr string
	}{
		"wrong key":           {args: []string{"verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundle, "--key", s.wrongPub}, code: exitFailure, wantErr: "verification failed"},
		"edited manifest":     {args: []string{"verify", "export", "--dir", s.dir, "--manifest", editedPath, "--bundle", s.bundle, "--key", s.pub}, code: exitFailure, wantErr: "signs another export.json"},
		"non-canonical":       {args: []string{"verify", "export", "--dir", s.dir, "--manifest", indented, "--bundle", s.bundle, "--key", s.pub}, code: exitFailure, wantErr: "not in canonical form"},
		"another bundle":      {args: []string{"verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", other.bundle, "--key", other.pub}, code: exitFailure, wantErr: "signs another export.json"},
		"bundle as manifest":  {args: []string{"verify", "export", "--dir", s.dir, "--manifest", s.bundle, "--bundle", s.bundle, "--key", s.pub}, code: exitFailure, wantErr: "export manifest invalid"},
		"envelope, wrong key": {args: []string{"verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundle, "--key", s.pub, "--envelope", other.envelope}, code: exitFailure, wantErr: "envelope"},
		"not a trusted root":  {args: []string{"verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundle, "--trusted-root", s.manifest}, code: exitFailure, wantErr: "trusted root"},
		"no dir":              {args: []string{"verify", "export", "--dir", filepath.Join(s.out, "nope"), "--manifest", s.manifest, "--bundle", s.bundle, "--key", s.pub}, code: exitFailure, wantErr: "no such file"},
		"dir is a file":       {args: []string{"verify", "export", "--dir", s.manifest, "--manifest", s.manifest, "--bundle", s.bundle, "--key", s.pub}, code: exitFailure, wantErr: "not a directory"},
		"no key":              {args: []string{"verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundle}, code: exitUsage},
		"key and root":        {args: []string{"verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundle, "--key", s.pub, "--trusted-root", s.manifest}, code: exitUsage},
		"no manifest":         {args: []string{"verify", "export", "--dir", s.dir, "--bundle", s.bundle, "--key", s.pub}, code: exitUsage},
		"no bundle":           {args: []string{"verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--key", s.pub}, code: exitUsage},
		"bad jobs":            {args: append(s.args(), "--jobs", "0"), code: exitUsage},
		"bad progress":        {args: append(s.args(), "--progress", "sometimes"), code: exitUsage},
		"positional":          {args: append(s.args(), "DIR"), code: exitUsage},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, tc.args...)
			r.wantCode(t, tc.code)
			if tc.code == exitFailure && (!strings.Contains(r.stderr, tc.wantErr) || strings.Count(r.stderr, "\n") != 1 || r.stdout != "") {
				t.Fatalf("stdout %q stderr %q, want one line containing %q", r.stdout, r.stderr, tc.wantErr)
			}
		})
	}
}

// TestVerifyExportOutputsInside: the manifest, bundle and envelope kept in
// the export directory are not extra files; --exclude leaves out others.
func TestVerifyExportOutputsInside(t *testing.T) {
	s := signExportFixture(t)
	for _, p := range []*string{&s.manifest, &s.bundle, &s.envelope} {
		b, _ := os.ReadFile(*p)
		*p = writeFile(t, s.dir, filepath.Base(*p), string(b))
	}
	writeFile(t, s.dir, "NOTES", "operator notes\n")
	r := runCtl(t, s.args("--envelope", s.envelope)...)
	r.wantCode(t, exitFailure)
	if r.stdout != "extra:    NOTES\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	runCtl(t, s.args("--envelope", s.envelope, "--exclude", "NOTES")...).wantCode(t, exitOK)
	runCtl(t, s.args("--envelope", s.envelope, "--exclude", "./NOTES")...).wantCode(t, exitOK)
}

func TestExportCommandsHelp(t *testing.T) {
	for _, args := range [][]string{{"sign", "export", "-h"}, {"verify", "export", "--help"}} {
		r := runCtl(t, args...)
		r.wantCode(t, exitOK)
		if !strings.HasPrefix(r.stdout, "Usage: signerctl "+args[0]+" export") || !strings.Contains(r.stdout, "--dir") && !strings.Contains(r.stdout, "-dir") {
			t.Errorf("%v: help %q", args, r.stdout[:min(len(r.stdout), 80)])
		}
	}
}
