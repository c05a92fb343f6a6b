package interop

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestTPMKeyVerifiesWithCosign: an agent whose tenant key lives in a TPM
// (swtpm) signs, and the real cosign CLI verifies the bundle offline.
func TestTPMKeyVerifiesWithCosign(t *testing.T) {
	sim := harness.StartSWTPM(t)
	dir := harness.ShortTempDir(t)
	uri := sim.CreateKey(t, dir)
	h := harness.StartAgent(t, harness.Options{Dir: dir, Edit: harness.WithDefaultKey("tpm", uri)})
	k := h.PublishedKey(t, "tpm")
	if k.Source != "tpm" {
		t.Fatalf("source %q", k.Source)
	}
	pemKey := []byte(k.PublicKey)
	artifact := filepath.Join(t.TempDir(), "artifact")
	content := []byte("scanned by a TPM-backed agent\n")
	os.WriteFile(artifact, content, 0o644)
	sum := sha256.Sum256(content)
	digest := hex.EncodeToString(sum[:])
	res, err := h.Client.SignDSSE(context.Background(), &proto.SignRequest{
		Subject:       []proto.Subject{{Name: "artifact", Digest: map[string]string{"sha256": digest}}},
		PredicateType: "stella.ops/sbom@v1",
		Predicate:     json.RawMessage(`{"componentCount":2}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.SigningIdentity[0].KeySource != "tpm" {
		t.Fatalf("signed by %+v", res.SigningIdentity[0])
	}
	if out, err := cosignVerify(t, pemKey, res.Bundles[0], "stella.ops/sbom@v1", artifact); err != nil {
		t.Fatalf("cosign rejected the TPM signature: %v\n%s", err, out)
	}
	pub, _ := parsePub(pemKey)
	if _, err := attest.VerifyBundle(res.Bundles[0], []crypto.PublicKey{pub}, attest.Expect{ArtifactSHA256: digest}); err != nil {
		t.Fatal(err)
	}
}
