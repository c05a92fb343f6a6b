package attest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// goldenKey is a test-only Ed25519 key from a fixed seed: Ed25519 signatures
// are deterministic, so the whole bundle is byte-stable.
func goldenKey() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/attest -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from golden:\n got %s\nwant %s", name, got, want)
	}
}

// TestGoldenOutput pins the canonical statement and the canonical bundle
// bytes the agent emits.
func TestGoldenOutput(t *testing.T) {
	st, err := BuildStatement(request(t))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "statement.json", st)
	res, err := Sign(context.Background(), st, []Signer{{ID: "golden", Source: "memory", Key: goldenKey()}})
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "bundle.json", res.Bundles[0])
	checkGolden(t, "digests.txt", []byte("payloadDigest "+res.PayloadDigest+"\nbundleHash "+res.BundleHash+"\n"))
}
