package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/export"
)

// TestExportOverCosignLimit: an export of more than export.CosignMaxFiles
// files (a statement of more than 1024 subjects, which sigstore-go refuses
// to match an artifact against) signs, with a note that cosign cannot
// verify it file by file, and verify export accepts it (bundle, envelope)
// and still names a modified file.
func TestExportOverCosignLimit(t *testing.T) {
	rt := startExportRoute(t)
	dir := filepath.Join(t.TempDir(), "exp-large")
	n := export.CosignMaxFiles + 77
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%02d", i/100), fmt.Sprintf("f%05d.json", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf(`{"n":%d}`, i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	manifest, bundle, envelope := filepath.Join(out, "export.json"), filepath.Join(out, "b.json"), filepath.Join(out, "e.json")
	r := runCtl(t, "sign", "export", "--socket", rt.sock, "--dir", dir, "--created-at", "2026-12-03T10:00:00Z",
		"--out-manifest", manifest, "--out-bundle", bundle, "--out-envelope", envelope)
	r.wantCode(t, exitOK)
	if !strings.Contains(r.stderr, fmt.Sprintf("note: %d files: cosign verify-blob-attestation verifies exports of at most %d files", n, export.CosignMaxFiles)) {
		t.Fatalf("stderr %q", r.stderr)
	}
	verify := []string{"verify", "export", "--dir", dir, "--manifest", manifest, "--bundle", bundle, "--envelope", envelope, "--key", rt.pub}
	r = runCtl(t, verify...)
	r.wantCode(t, exitOK)
	if !strings.HasPrefix(r.stdout, fmt.Sprintf("Verified OK: export exp-large (profile default, createdAt 2026-12-03T10:00:00Z): %d files", n)) {
		t.Fatalf("stdout %q", r.stdout)
	}
	if err := os.WriteFile(filepath.Join(dir, "d10", "f01050.json"), []byte(`{"n":-105}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r = runCtl(t, verify...)
	r.wantCode(t, exitFailure)
	if r.stdout != "modified: d10/f01050.json (sha256 differs)\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
}
