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

// TestPKCS11KeyVerifiesWithCosign: an agent whose tenant key lives in a
// PKCS#11 token (SoftHSM2) signs, and the real cosign CLI verifies the
// bundle offline.
func TestPKCS11KeyVerifiesWithCosign(t *testing.T) {
	uri := harness.SoftHSMKey(t, "tenant-dev")
	h := harness.StartAgent(t, harness.Options{Edit: harness.WithDefaultKey("hsm", uri)})
	pemKey := []byte(h.PublishedKey(t, "hsm").PublicKey)
	artifact := filepath.Join(t.TempDir(), "artifact")
	content := []byte("scanned by an HSM-backed agent\n")
	os.WriteFile(artifact, content, 0o644)
	sum := sha256.Sum256(content)
	digest := hex.EncodeToString(sum[:])
	// Parallel requests share the token's session pool.
	type result struct {
		bundle []byte
		err    error
	}
	results := make(chan result, 8)
	for i := 0; i < 8; i++ {
		go func() {
			res, err := h.Client.SignDSSE(context.Background(), &proto.SignRequest{
				Subject:       []proto.Subject{{Name: "artifact", Digest: map[string]string{"sha256": digest}}},
				PredicateType: "stella.ops/sbom@v1",
				Predicate:     json.RawMessage(`{"componentCount":2}`),
			})
			if err != nil {
				results <- result{err: err}
				return
			}
			if res.SigningIdentity[0].KeySource != "pkcs11" {
				err = os.ErrInvalid
			}
			results <- result{bundle: res.Bundles[0], err: err}
		}()
	}
	var bundle []byte
	for i := 0; i < 8; i++ {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		bundle = r.bundle
	}
	if out, err := cosignVerify(t, pemKey, bundle, "stella.ops/sbom@v1", artifact); err != nil {
		t.Fatalf("cosign rejected the PKCS#11 signature: %v\n%s", err, out)
	}
	pub, _ := parsePub(pemKey)
	if _, err := attest.VerifyBundle(bundle, []crypto.PublicKey{pub}, attest.Expect{ArtifactSHA256: digest}); err != nil {
		t.Fatal(err)
	}
}
