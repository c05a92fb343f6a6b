// Package interop checks the agent's output with independent verifiers:
// the real cosign CLI (pinned in tools/go.mod, built by `make tools`) run
// inside an empty network namespace, and sigstore-go.
package interop

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// offline runs a command with no network: in a new network namespace when
// we may create one (root), else with proxies pointing nowhere.
func offline(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 {
		if un, err := exec.LookPath("unshare"); err == nil {
			return exec.Command(un, append([]string{"--net", "--", name}, args...)...)
		}
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "HTTPS_PROXY=http://127.0.0.1:9", "HTTP_PROXY=http://127.0.0.1:9", "NO_PROXY=")
	return cmd
}

func cosignVerify(t *testing.T, pubPEM, bundle []byte, predicateType string, artifact string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	pub := filepath.Join(dir, "key.pub")
	b := filepath.Join(dir, "bundle.json")
	os.WriteFile(pub, pubPEM, 0o644)
	os.WriteFile(b, bundle, 0o644)
	cmd := offline(harness.Cosign(t), "verify-blob-attestation", "--key", pub, "--bundle", b,
		"--insecure-ignore-tlog", "--type", predicateType, artifact)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	// An empty TUF root and home: nothing cached, nothing to fetch.
	cmd.Env = append(cmd.Env, "TUF_ROOT="+filepath.Join(dir, "tuf"), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestCosignVerifiesAgentOutput(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
		harness.WithKey("p384", "memory:p384?alg=ecdsa-p384-sha256")(c)
		harness.WithKey("ed", "memory:ed?alg=ed25519")(c)
	}})
	dir := t.TempDir()
	artifact := filepath.Join(dir, "artifact.bin")
	content := []byte("an artifact scanned by a scanner\n")
	os.WriteFile(artifact, content, 0o644)
	sum := sha256.Sum256(content)
	digest := hex.EncodeToString(sum[:])

	ks, err := h.Client.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pems := map[string][]byte{}
	for _, k := range ks.Keys {
		pems[k.ID] = []byte(k.PublicKey)
	}
	for _, tc := range []struct {
		name          string
		predicateType string
		keyIDs        []string
	}{
		{"default P-256 key, short predicate name", "stella.ops/sbom@v1", nil},
		{"absolute predicate URI", "https://cyclonedx.org/bom", nil},
		{"multi-signature P-256 + P-384 + Ed25519", "stella.ops/vex@v1", []string{"dev", "p384", "ed"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &proto.SignRequest{
				Subject:       []proto.Subject{{Name: "artifact.bin", Digest: map[string]string{"sha256": digest}}},
				PredicateType: tc.predicateType,
				Predicate:     json.RawMessage(`{"format":"cyclonedx-1.6","componentCount":2}`),
			}
			if tc.keyIDs != nil {
				req.Options = &proto.SignOptions{KeyIDs: tc.keyIDs}
			}
			res, err := h.Client.SignDSSE(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			for i, b := range res.Bundles {
				id := res.SigningIdentity[i].KeyID
				if out, err := cosignVerify(t, pems[id], b, tc.predicateType, artifact); err != nil {
					t.Fatalf("cosign rejected bundle of key %s: %v\n%s", id, err, out)
				}
				pub, err := parsePub(pems[id])
				if err != nil {
					t.Fatal(err)
				}
				if _, err := attest.VerifyBundle(b, []crypto.PublicKey{pub}, attest.Expect{PredicateType: tc.predicateType, ArtifactSHA256: digest}); err != nil {
					t.Fatalf("sigstore-go rejected bundle of key %s: %v", id, err)
				}
				// Tampered payload: both verifiers refuse.
				tampered := tamper(t, b)
				if out, err := cosignVerify(t, pems[id], tampered, tc.predicateType, artifact); err == nil {
					t.Fatalf("cosign accepted a tampered bundle:\n%s", out)
				}
				if _, err := attest.VerifyBundle(tampered, []crypto.PublicKey{pub}, attest.Expect{PredicateType: tc.predicateType, ArtifactSHA256: digest}); err == nil {
					t.Fatal("sigstore-go accepted a tampered bundle")
				}
				// Another artifact: refused.
				other := filepath.Join(t.TempDir(), "other")
				os.WriteFile(other, []byte("other"), 0o644)
				if out, err := cosignVerify(t, pems[id], b, tc.predicateType, other); err == nil {
					t.Fatalf("cosign accepted the bundle for another artifact:\n%s", out)
				}
			}
		})
	}
}

// tamper changes the statement inside a bundle (componentCount 2 -> 3),
// keeping the signature.
func tamper(t *testing.T, b []byte) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	env := m["dsseEnvelope"].(map[string]any)
	var payload []byte
	if err := json.Unmarshal([]byte(`"`+env["payload"].(string)+`"`), &payload); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(payload, []byte(`"componentCount":2`)) {
		t.Fatalf("unexpected payload %s", payload)
	}
	payload = bytes.Replace(payload, []byte(`"componentCount":2`), []byte(`"componentCount":3`), 1)
	enc, _ := json.Marshal(payload)
	env["payload"] = strings.Trim(string(enc), `"`)
	out, _ := json.Marshal(m)
	return out
}

func parsePub(pemBytes []byte) (crypto.PublicKey, error) {
	return cryptoutils.UnmarshalPEMToPublicKey(pemBytes)
}
