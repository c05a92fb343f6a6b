package interop

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/keys/fido2"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestFIDO2KeyVerifiesWithCosign: a key wrapped under a (software) FIDO2
// authenticator's hmac-secret is locked at start, unlocked over the admin
// socket with one assertion, signs, and cosign verifies the bundle.
func TestFIDO2KeyVerifiesWithCosign(t *testing.T) {
	auth, err := fido2.NewSoftAuthenticator()
	if err != nil {
		t.Fatal(err)
	}
	auth.PIN = "4321"
	dir := harness.ShortTempDir(t)
	wrapped := filepath.Join(dir, "fido2-key.json")
	if _, err := fido2.Enroll(auth, wrapped, "signer-agent", fido2.DefaultPolicy, "4321"); err != nil {
		t.Fatal(err)
	}
	h := harness.StartAgent(t, harness.Options{Dir: dir,
		FIDO2: func() (fido2.Authenticator, error) { return auth, nil },
		Edit:  harness.WithDefaultKey("fido", "fido2:"+wrapped+"?ttl=10m")})
	ctx := context.Background()
	artifact := filepath.Join(t.TempDir(), "artifact")
	content := []byte("signed with a FIDO2-wrapped key\n")
	os.WriteFile(artifact, content, 0o644)
	sum := sha256.Sum256(content)
	req := &proto.SignRequest{
		Subject:       []proto.Subject{{Name: "artifact", Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}},
		PredicateType: "stella.ops/sbom@v1",
		Predicate:     json.RawMessage(`{"componentCount":1}`),
	}
	// Locked: signing_backend_unavailable, and not ready.
	if _, err := h.Client.SignDSSE(ctx, req); !errors.Is(err, client.ErrSigningBackendUnavailable) {
		t.Fatalf("locked key signed or wrong error: %v", err)
	}
	if _, err := h.Client.Ready(ctx); err == nil {
		t.Fatal("ready with a locked key")
	}
	unlock := func(pin string) int {
		r, _ := http.NewRequest(http.MethodPost, "http://signer-agent"+proto.PathAdminKeys+"fido/unlock", strings.NewReader(`{"pin":"`+pin+`"}`))
		resp, err := harness.HTTPClient(h.AdminSock).Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), pin) {
			t.Fatal("response echoes the PIN")
		}
		return resp.StatusCode
	}
	if c := unlock("0000"); c != 403 {
		t.Fatalf("wrong PIN: %d", c)
	}
	if c := unlock("4321"); c != 200 {
		t.Fatalf("unlock: %d", c)
	}
	res, err := h.Client.SignDSSE(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := []byte(h.PublishedKey(t, "fido").PublicKey)
	if out, err := cosignVerify(t, pemKey, res.Bundles[0], "stella.ops/sbom@v1", artifact); err != nil {
		t.Fatalf("cosign rejected the FIDO2-unwrapped signature: %v\n%s", err, out)
	}
	for _, r := range h.Audit.Records() {
		if strings.Contains(r.Reason, "4321") {
			t.Fatal("PIN in the audit log")
		}
	}
}
