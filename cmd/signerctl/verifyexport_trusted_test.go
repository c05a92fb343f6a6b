package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
)

// writeTrust writes trusted_root.json and trusted_keys.json into a new
// directory for one key (id, PEM public key file) with status and window,
// and returns the trusted root's path.
func writeTrust(t *testing.T, id, pubFile, status string, notBefore, notAfter time.Time) string {
	t.Helper()
	pub, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	m, err := trustroot.Build(trustroot.Input{Keys: []proto.KeyInfo{{ID: id, PublicKey: string(pub), Status: status, NotBefore: &notBefore, NotAfter: &notAfter}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rootJSON, err := m.MarshalRoot()
	if err != nil {
		t.Fatal(err)
	}
	keysJSON, err := m.MarshalKeys()
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "trusted_keys.json", string(keysJSON))
	return writeFile(t, dir, "trusted_root.json", string(rootJSON))
}

// TestVerifyExportTrustedRoot: verify export --trusted-root checks the
// bundle against trust material (attest.VerifyTrusted): the signing key,
// active and inside its window, verifies the export (with the envelope
// too); a revoked key, a key outside its window and a key that is not in
// the material are refused (exit 1, nothing reported as verified); the
// tree is still compared after a good signature.
func TestVerifyExportTrustedRoot(t *testing.T) {
	s := signExportFixture(t)
	now := time.Now()
	good := writeTrust(t, "k1", s.pub, proto.KeyStatusActive, now.Add(-time.Hour), now.Add(time.Hour))
	args := func(root string, extra ...string) []string {
		return append([]string{"verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundle, "--trusted-root", root}, extra...)
	}
	for name, a := range map[string][]string{"bundle": args(good), "with envelope": args(good, "--envelope", s.envelope)} {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, a...)
			r.wantCode(t, exitOK)
			if !strings.HasPrefix(r.stdout, "Verified OK: export exp-1") {
				t.Fatalf("stdout %q", r.stdout)
			}
		})
	}
	for name, tc := range map[string]struct {
		root, want string
	}{
		"revoked key":          {writeTrust(t, "k1", s.pub, proto.KeyStatusRevoked, now.Add(-time.Hour), now.Add(time.Hour)), "revoked"},
		"key expired":          {writeTrust(t, "k1", s.pub, proto.KeyStatusActive, now.Add(-2*time.Hour), now.Add(-time.Hour)), "validity window"},
		"another key":          {writeTrust(t, "other", s.wrongPub, proto.KeyStatusActive, now.Add(-time.Hour), now.Add(time.Hour)), "not in the trusted keys"},
		"not a trusted root":   {s.manifest, "trusted root"},
		"missing trusted root": {filepath.Join(s.out, "nope.json"), "no such file"},
	} {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, args(tc.root)...)
			r.wantCode(t, exitFailure)
			if !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stdout, "Verified OK") {
				t.Fatalf("stdout %q stderr %q, want %q", r.stdout, r.stderr, tc.want)
			}
		})
	}
	t.Run("identity without trusted root", func(t *testing.T) {
		runCtl(t, "verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundle, "--key", s.pub,
			"--certificate-identity", "x").wantCode(t, exitUsage)
	})
	t.Run("modified file", func(t *testing.T) {
		writeFile(t, s.dir, "README.txt", "changed\n")
		r := runCtl(t, args(good)...)
		r.wantCode(t, exitFailure)
		if !strings.Contains(r.stdout, "modified: README.txt") {
			t.Fatalf("stdout %q", r.stdout)
		}
	})
}
