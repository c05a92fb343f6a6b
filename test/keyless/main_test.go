// Package keyless_test runs keyless signing, chained keyful keys, trusted
// roots and the Rekor v2 handoff against a real local sigstore stack
// (Fulcio, timestamp authority, rekor-tiles; `make sigstack`) and checks
// the output with the real cosign CLI (`make tools`). The whole test
// binary runs in a private network namespace (sigstack.Main): only
// loopback exists, so every cosign run is offline.
package keyless_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys/keyless"
	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
	"github.com/stellaops/signer-agent/test/sigstack"
)

// stack is shared by the package's tests: Fulcio (ephemeral CA), the TSA
// and rekor-tiles.
var stack *sigstack.Stack

func TestMain(m *testing.M) {
	sigstack.Main(m, func(tb sigstack.TB) {
		stack = sigstack.Start(tb, sigstack.Options{Fulcio: true, TSA: true, Rekor: true})
	})
}

const predicateType = "stella.ops/sbom@v1"

// artifact writes an artifact file and returns its path and hex SHA-256.
func artifact(t testing.TB, content string) (string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "artifact.bin")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	return p, hex.EncodeToString(sum[:])
}

// statement is the canonical in-toto statement over one artifact.
func statement(t testing.TB, digest string) []byte {
	t.Helper()
	body := `{"subject":[{"name":"artifact.bin","digest":{"sha256":"` + digest + `"}}],"predicateType":"` + predicateType + `","predicate":{"format":"cyclonedx-1.6","componentCount":2}}`
	req, err := proto.DecodeSignRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	st, err := attest.BuildStatement(req)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// tokenFile writes a fresh identity token from the stack's issuer.
func tokenFile(t testing.TB, is *sigstack.Issuer, ttl time.Duration) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(is.Mint(sigstack.Email, time.Now(), ttl)), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// newSigner is a keyless signer on st with a token file.
func newSigner(t testing.TB, st *sigstack.Stack, mod func(*keyless.Config)) *keyless.Signer {
	t.Helper()
	cfg := keyless.Config{
		FulcioURL: st.FulcioURL,
		TSAURL:    stack.TSAURL,
		TSAChain:  stack.TSAChain,
		Identity:  &keyless.FileToken{Path: tokenFile(t, st.Issuer, 10*time.Minute)},
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := keyless.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// signKeyless signs payload keylessly with s.
func signKeyless(t testing.TB, s *keyless.Signer, payload []byte) *attest.Result {
	t.Helper()
	ctx := context.Background()
	sg, release, err := s.ForRequest(ctx, "keyless")
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	res, err := attest.Sign(ctx, payload, []attest.Signer{sg})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// writeTrust builds and writes trusted_root.json (and trusted_keys.json)
// and returns the trusted root's path and the material.
func writeTrust(t testing.TB, in trustroot.Input) (string, *trustroot.Material) {
	t.Helper()
	m, err := trustroot.Build(in)
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
	p := filepath.Join(dir, "trusted_root.json")
	if err := trustroot.WriteFile(p, rootJSON); err != nil {
		t.Fatal(err)
	}
	if err := trustroot.WriteFile(trustroot.KeysPathFor(p), keysJSON); err != nil {
		t.Fatal(err)
	}
	return p, m
}

// writeBundle writes a bundle to a file.
func writeBundle(t testing.TB, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bundle.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// cosign runs the pinned cosign CLI (already offline: the test binary is
// in its own network namespace) with an empty TUF root and home.
func cosign(t testing.TB, args ...string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command(harness.Cosign(t), args...)
	cmd.Env = append(os.Environ(), "TUF_ROOT="+filepath.Join(dir, "tuf"), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cosignVerifyKeyless runs cosign verify-blob-attestation on a keyless
// bundle with a trusted root, with extra flags.
func cosignVerifyKeyless(t testing.TB, trustedRoot, bundle, art string, extra ...string) (string, error) {
	t.Helper()
	args := []string{"verify-blob-attestation", "--bundle", bundle, "--trusted-root", trustedRoot,
		"--certificate-identity", sigstack.Email, "--certificate-oidc-issuer", stack.Issuer.URL,
		"--insecure-ignore-sct", "--type", predicateType}
	args = append(args, extra...)
	return cosign(t, append(args, art)...)
}

// bundleMap decodes a bundle for inspection.
func bundleMap(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// saveExample writes an example for docs/attestor.md into
// $SIGNER_AGENT_EXAMPLES_DIR when it is set (documentation only; nothing
// reads the examples back).
func saveExample(t testing.TB, name string, data []byte) {
	t.Helper()
	dir := os.Getenv("SIGNER_AGENT_EXAMPLES_DIR")
	if dir == "" {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}
