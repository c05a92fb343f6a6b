package release

import (
	"crypto"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/testtools"
)

// Interoperability with the real cosign CLI (bin/cosign, built by
// `make tools`): images signed by cosign in the test registry, in each of
// the layouts cosign writes, are trusted with the cosign public key.

func runCosign(t *testing.T, bin, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// A private HOME and TUF root: nothing is read from or written to the
	// user's, and nothing needs the network.
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=test-password", "HOME="+dir, "TUF_ROOT="+filepath.Join(dir, "tuf"),
		"COSIGN_EXPERIMENTAL=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("cosign %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestCosignInterop(t *testing.T) {
	bin := testtools.Cosign(t)
	tests := []struct {
		name   string
		flags  []string
		source string
	}{
		{"legacy signature tag", []string{"--new-bundle-format=false"}, SourceTag},
		{"legacy signature as OCI 1.1 referrer", []string{"--new-bundle-format=false", "--registry-referrers-mode=oci-1-1"}, SourceReferrers},
		{"sigstore bundle referrer", []string{"--new-bundle-format=true"}, SourceReferrers},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			runCosign(t, bin, dir, "generate-key-pair")
			keys, err := LoadKeys(filepath.Join(dir, "cosign.pub"))
			if err != nil {
				t.Fatal(err)
			}
			r := newTestRegistry(t)
			digest, _ := r.pushImage(t, testVersion)
			args := append([]string{"sign", "--key", "cosign.key", "--tlog-upload=false", "--use-signing-config=false",
				"--allow-http-registry", "--yes"}, tc.flags...)
			runCosign(t, bin, dir, append(args, r.repo.Digest(digest).String())...)

			c := mustNew(t, r.config(keys...))
			v := check(t, c, digest)
			wantTrusted(t, v, tc.source, hintOf(t, keys[0]))
			if v.Version != testVersion {
				t.Errorf("version %q", v.Version)
			}

			// The same signature does not make another key's verdict trusted.
			other := newKey(t)
			wantUntrusted(t, check(t, mustNew(t, r.config(crypto.PublicKey(&other.PublicKey))), digest), "does not verify")
		})
	}
}
