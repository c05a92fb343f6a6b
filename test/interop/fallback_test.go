package interop

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestFallbackKey: the tenant's default key is in a TPM; when the TPM goes
// away, the tenant's fallback key signs, and the switch is audited. Without
// a fallback the request is signing_backend_unavailable.
func TestFallbackKey(t *testing.T) {
	for _, withFallback := range []bool{true, false} {
		t.Run(map[bool]string{true: "with fallback", false: "without fallback"}[withFallback], func(t *testing.T) {
			sim := harness.StartSWTPM(t)
			dir := harness.ShortTempDir(t)
			uri := sim.CreateKey(t, dir)
			h := harness.StartAgent(t, harness.Options{Dir: dir, Edit: tpmTenant(uri, withFallback)})
			req := signRequestFor("b")
			ctx := context.Background()
			res, err := h.Client.SignDSSE(ctx, req)
			if err != nil || res.SigningIdentity[0].KeyID != "tpm" {
				t.Fatalf("primary: %v", err)
			}
			sim.Kill()
			res, err = h.Client.SignDSSE(ctx, req)
			checkTPMDown(t, h, res, err, withFallback)
		})
	}
}

// tpmTenant is an edit that makes the TPM key uri the dev tenant's default
// key, with the file key dev as its fallback when withFallback.
func tpmTenant(uri string, withFallback bool) func(c *config.Config) {
	return func(c *config.Config) {
		harness.WithDefaultKey("tpm", uri)(c)
		if withFallback {
			harness.DevTenant(c).FallbackKey = "dev"
		}
	}
}

// checkTPMDown checks a sign request's outcome while the tenant's TPM key
// cannot sign: signed by the fallback file key dev, with the switch in the
// audit log, or, without a fallback, signing_backend_unavailable with a
// Retry-After.
func checkTPMDown(t *testing.T, h *harness.Agent, res *proto.SignResponse, err error, withFallback bool) {
	t.Helper()
	if !withFallback {
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != proto.CodeSigningBackendUnavailable || ce.RetryAfter <= 0 {
			t.Fatalf("without fallback: %v", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("fallback: %v", err)
	}
	if res.SigningIdentity[0].KeyID != "dev" || res.SigningIdentity[0].KeySource != "file" {
		t.Fatalf("signed by %+v", res.SigningIdentity[0])
	}
	s := h.Signed()
	if last := s[len(s)-1]; last.KeyIDs[0] != "dev" || !strings.Contains(last.Reason, `fallback from key "tpm"`) {
		t.Fatalf("audit %+v", last)
	}
}

// signRequestFor is a small sign request whose subject digest is c
// repeated (distinct requests per test).
func signRequestFor(c string) *proto.SignRequest {
	return &proto.SignRequest{
		Subject:       []proto.Subject{{Name: "a", Digest: map[string]string{"sha256": strings.Repeat(c, 64)}}},
		PredicateType: "stella.ops/sbom@v1",
		Predicate:     json.RawMessage(`{"n":1}`),
	}
}
