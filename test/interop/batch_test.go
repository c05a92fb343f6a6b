package interop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestCosignVerifiesBatchItems: each bundle of a batch answer verifies
// with the real cosign CLI, offline, under its own predicate type.
func TestCosignVerifiesBatchItems(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	dir := t.TempDir()
	artifact := filepath.Join(dir, "image.bin")
	content := []byte("an image scanned by a scanner\n")
	if err := os.WriteFile(artifact, content, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(content)
	subject := []proto.Subject{{Name: "image.bin", Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}}
	types := []string{"stella.ops/sbom@v1", "stella.ops/vex@v1", "https://cyclonedx.org/bom"}
	var reqs []proto.SignRequest
	for i, typ := range types {
		reqs = append(reqs, proto.SignRequest{Subject: subject, PredicateType: typ,
			Predicate: json.RawMessage(`{"item":` + string(rune('0'+i)) + `}`)})
	}
	res, err := h.Client.SignBatch(context.Background(), &proto.BatchRequest{Requests: reqs})
	if err != nil {
		t.Fatal(err)
	}
	pub := []byte(h.PublishedKey(t, "dev").PublicKey)
	for i, typ := range types {
		r := &res.Results[i]
		if err := client.BatchItemError(r); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		if out, err := cosignVerify(t, pub, r.Bundles[0], typ, artifact); err != nil {
			t.Fatalf("cosign, item %d (%s): %v\n%s", i, typ, err, out)
		}
		// And not under another item's type.
		if out, err := cosignVerify(t, pub, r.Bundles[0], types[(i+1)%len(types)], artifact); err == nil {
			t.Fatalf("item %d verified under the wrong type:\n%s", i, out)
		}
	}
}
