package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
)

// trustedRootFor writes trusted_root.json and trusted_keys.json for the
// PEM key pubFile with `signerctl trust export --keys` (the key is named
// after the file) and returns the trusted root's path.
func trustedRootFor(t *testing.T, pubFile string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "trusted_root.json")
	runCtl(t, "trust", "export", "--out", root, "--keys", pubFile).wantCode(t, exitOK)
	return root
}

// revokeIn rewrites the trusted keys beside root with every key revoked.
func revokeIn(t *testing.T, root string) {
	t.Helper()
	p := trustroot.KeysPathFor(root)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		MediaType string          `json:"mediaType"`
		Keys      []proto.KeyInfo `json:"keys"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for i := range f.Keys {
		f.Keys[i].Status = proto.KeyStatusRevoked
	}
	b, _ = json.Marshal(f)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyTrustedRoot: signerctl verify --trusted-root verifies keyful
// output with the exported trust material (the keyless and logged cases
// run against a real Fulcio, TSA and Rekor in test/keyless), refuses a
// revoked key, and refuses flag combinations it cannot honour.
func TestVerifyTrustedRoot(t *testing.T) {
	s := signFixture(t)
	root := trustedRootFor(t, s.pub)
	revokedRoot := trustedRootFor(t, s.pub)
	revokeIn(t, revokedRoot)
	otherRoot := trustedRootFor(t, s.wrongPub)
	okPrefix := "Verified OK: predicateType=stella.ops/sbom@v1 subjects=1 payloadDigest=" + s.payloadDigest + " mode=keyful key=k1"
	tests := map[string]struct {
		args    []string
		code    int
		wantErr string
	}{
		"bundle":                      {args: []string{"--bundle", s.bundle, "--trusted-root", root, "--artifact", s.artifact, "--type", s.predicateType}},
		"bundle, keys named":          {args: []string{"--bundle", s.bundle, "--trusted-root", root, "--trusted-keys", trustroot.KeysPathFor(root), "--any-artifact"}},
		"envelope":                    {args: []string{"--envelope", s.envelope, "--trusted-root", root, "--artifact", s.artifact}},
		"bundle, revoked key":         {args: []string{"--bundle", s.bundle, "--trusted-root", revokedRoot, "--artifact", s.artifact}, code: exitFailure, wantErr: "revoked"},
		"envelope, revoked key":       {args: []string{"--envelope", s.envelope, "--trusted-root", revokedRoot, "--artifact", s.artifact}, code: exitFailure, wantErr: "revoked"},
		"bundle, key not trusted":     {args: []string{"--bundle", s.bundle, "--trusted-root", otherRoot, "--artifact", s.artifact}, code: exitFailure, wantErr: "no trusted key"},
		"bundle, tampered":            {args: []string{"--bundle", s.badBundle, "--trusted-root", root, "--artifact", s.artifact}, code: exitFailure, wantErr: "verification failed"},
		"bundle, log entry required":  {args: []string{"--bundle", s.bundle, "--trusted-root", root, "--artifact", s.artifact, "--require-tlog"}, code: exitFailure, wantErr: "no transparency log entry"},
		"not a trusted root":          {args: []string{"--bundle", s.bundle, "--trusted-root", s.bundle, "--artifact", s.artifact}, code: exitFailure, wantErr: "trusted root"},
		"missing trusted keys":        {args: []string{"--bundle", s.bundle, "--trusted-root", root, "--trusted-keys", root + ".nope", "--artifact", s.artifact}, code: exitFailure, wantErr: "no such file"},
		"trusted root and key":        {args: []string{"--bundle", s.bundle, "--trusted-root", root, "--key", s.pub, "--artifact", s.artifact}, code: exitUsage},
		"identity without root":       {args: []string{"--bundle", s.bundle, "--key", s.pub, "--certificate-identity", "a@b", "--certificate-oidc-issuer", "https://i", "--artifact", s.artifact}, code: exitUsage},
		"require-tlog without root":   {args: []string{"--bundle", s.bundle, "--key", s.pub, "--require-tlog", "--artifact", s.artifact}, code: exitUsage},
		"identity without issuer":     {args: []string{"--bundle", s.bundle, "--trusted-root", root, "--certificate-identity", "a@b", "--artifact", s.artifact}, code: exitUsage},
		"issuer without identity":     {args: []string{"--bundle", s.bundle, "--trusted-root", root, "--certificate-oidc-issuer-regexp", ".*", "--artifact", s.artifact}, code: exitUsage},
		"identity exact and regexp":   {args: []string{"--bundle", s.bundle, "--trusted-root", root, "--certificate-identity", "a@b", "--certificate-identity-regexp", ".*", "--certificate-oidc-issuer", "https://i", "--artifact", s.artifact}, code: exitUsage},
		"trusted keys without a root": {args: []string{"--bundle", s.bundle, "--key", s.pub, "--trusted-keys", trustroot.KeysPathFor(root), "--artifact", s.artifact}, code: exitUsage},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, append([]string{"verify"}, tc.args...)...)
			r.wantCode(t, tc.code)
			switch tc.code {
			case exitOK:
				if !strings.HasPrefix(r.stdout, okPrefix) && !strings.HasPrefix(r.stdout, strings.TrimSuffix(okPrefix, " mode=keyful key=k1")) {
					t.Errorf("stdout %q, want %q…", r.stdout, okPrefix)
				}
			case exitFailure:
				if r.stdout != "" || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, tc.wantErr) {
					t.Errorf("stdout %q stderr %q, want one line containing %q", r.stdout, r.stderr, tc.wantErr)
				}
			}
		})
	}
	// The bundle's line names the mode and the key.
	r := runCtl(t, "verify", "--bundle", s.bundle, "--trusted-root", root, "--artifact", s.artifact)
	if r.stdout != okPrefix+"\n" {
		t.Errorf("stdout %q, want %q", r.stdout, okPrefix+"\n")
	}
}

// TestVerifyExportTrustedRoot: verify export takes a trusted root too,
// and refuses the export once its key is revoked there.
func TestVerifyExportTrustedRoot(t *testing.T) {
	s := signExportFixture(t)
	root := trustedRootFor(t, s.pub)
	base := []string{"verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundle, "--envelope", s.envelope, "--trusted-root", root}
	r := runCtl(t, base...)
	r.wantCode(t, exitOK)
	if !strings.HasPrefix(r.stdout, "Verified OK: export exp-1") {
		t.Fatalf("stdout %q", r.stdout)
	}
	revokeIn(t, root)
	r = runCtl(t, base...)
	r.wantCode(t, exitFailure)
	if !strings.Contains(r.stderr, "revoked") {
		t.Fatalf("stderr %q", r.stderr)
	}
	runCtl(t, append(base, "--key", s.pub)...).wantCode(t, exitUsage)
	runCtl(t, "verify", "export", "--dir", s.dir, "--manifest", s.manifest, "--bundle", s.bundle, "--key", s.pub, "--require-tlog").wantCode(t, exitUsage)
}
