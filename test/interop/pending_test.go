package interop

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestKeyPendingAtStart: the agent starts while a tenant's TPM is gone.
// The TPM key is pending — readyz names it, GET /keys leaves it out, and
// the tenant's requests go to its fallback key (or, without one, fail with
// signing_backend_unavailable) — while the other keys serve. When the TPM
// comes back the agent opens the key by itself and signs with it.
func TestKeyPendingAtStart(t *testing.T) {
	for _, withFallback := range []bool{true, false} {
		t.Run(map[bool]string{true: "with fallback", false: "without fallback"}[withFallback], func(t *testing.T) {
			sim := harness.StartSWTPM(t)
			dir := harness.ShortTempDir(t)
			uri := sim.CreateKey(t, dir)
			sim.Kill()
			h := harness.StartAgent(t, harness.Options{Dir: dir, KeyRetryInterval: 20 * time.Millisecond, Edit: tpmTenant(uri, withFallback)})
			ctx := context.Background()
			listed := func() []string {
				t.Helper()
				ks, err := h.Client.Keys(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, k := range ks.Keys {
					ids = append(ids, k.ID)
				}
				return ids
			}

			r, err := h.Client.Ready(ctx)
			if err == nil || r == nil || r.Status != "unavailable" || !strings.Contains(r.Checks["key:tpm"], "backend unavailable") {
				t.Fatalf("readyz with the TPM gone: %+v, %v", r, err)
			}
			if ids := listed(); slices.Contains(ids, "tpm") || !slices.Contains(ids, "dev") {
				t.Fatalf("keys listed with the TPM gone: %v", ids)
			}
			req := signRequestFor("c")
			res, err := h.Client.SignDSSE(ctx, req)
			checkTPMDown(t, h, res, err, withFallback)

			sim.Restart(t)
			deadline := time.Now().Add(30 * time.Second)
			for !slices.Contains(listed(), "tpm") {
				if time.Now().After(deadline) {
					t.Fatal("the key was not opened after the TPM came back")
				}
				time.Sleep(20 * time.Millisecond)
			}
			res, err = h.Client.SignDSSE(ctx, req)
			if err != nil || res.SigningIdentity[0].KeyID != "tpm" {
				t.Fatalf("after the TPM came back: %+v, %v", res, err)
			}
			if r, err := h.Client.Ready(ctx); err != nil || r.Status != "ok" {
				t.Fatalf("readyz after the TPM came back: %+v, %v", r, err)
			}
		})
	}
}

// TestReloadPendingKey: a reload that adds a key whose backend does not
// answer succeeds with the key pending; one that adds a key with a
// configuration error (no such key file) fails and keeps the running
// configuration.
func TestReloadPendingKey(t *testing.T) {
	sim := harness.StartSWTPM(t)
	dir := harness.ShortTempDir(t)
	uri := sim.CreateKey(t, dir)
	sim.Kill()
	h := harness.StartAgent(t, harness.Options{Dir: dir})
	ctx := context.Background()

	harness.EditConfig(t, h.Config, harness.WithKey("broken", "tpm:"+filepath.Join(dir, "no-such.tpmkey")+"?sim="+sim.Addr()))
	if err := h.Reload(ctx); err == nil || !strings.Contains(err.Error(), "no-such.tpmkey") {
		t.Fatalf("reload with a missing key file: %v", err)
	}
	harness.EditConfig(t, h.Config, func(c *config.Config) {
		c.Keys = slices.DeleteFunc(c.Keys, func(k config.Key) bool { return k.ID == "broken" })
		harness.WithKey("tpm", uri)(c)
	})
	if err := h.Reload(ctx); err != nil {
		t.Fatalf("reload with a key whose TPM is down: %v", err)
	}
	r, _ := h.Client.Ready(ctx)
	if r == nil || !strings.Contains(r.Checks["key:tpm"], "backend unavailable") {
		t.Fatalf("readyz after the reload: %+v", r)
	}
	if _, err := h.Client.SignDSSE(ctx, signRequestFor("d")); err != nil {
		t.Fatalf("the default key stopped signing: %v", err)
	}
}

// TestPKCS11KeyPendingAtStart: the agent starts while the HSM's token is
// not there (SoftHSM2's token directory moved away, as an unplugged or
// unreachable HSM), the key is pending, and it serves once the token is
// back.
func TestPKCS11KeyPendingAtStart(t *testing.T) {
	uri := harness.SoftHSMKey(t, "later")
	tokens := filepath.Join(filepath.Dir(os.Getenv("SOFTHSM2_CONF")), "tokens")
	if err := os.Rename(tokens, tokens+".away"); err != nil {
		t.Fatal(err)
	}
	h := harness.StartAgent(t, harness.Options{KeyRetryInterval: 20 * time.Millisecond, Edit: harness.WithDefaultKey("hsm", uri)})
	ctx := context.Background()
	r, _ := h.Client.Ready(ctx)
	if r == nil || !strings.Contains(r.Checks["key:hsm"], "backend unavailable") {
		t.Fatalf("readyz with the token away: %+v", r)
	}
	var ce *client.Error
	if _, err := h.Client.SignDSSE(ctx, signRequestFor("e")); !errors.As(err, &ce) || ce.Code != proto.CodeSigningBackendUnavailable {
		t.Fatalf("sign with the token away: %v", err)
	}
	if err := os.Rename(tokens+".away", tokens); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := h.Client.SignDSSE(ctx, signRequestFor("e"))
		if err == nil {
			if res.SigningIdentity[0].KeyID != "hsm" || res.SigningIdentity[0].KeySource != "pkcs11" {
				t.Fatalf("signed by %+v", res.SigningIdentity[0])
			}
			break
		}
		if !errors.As(err, &ce) || ce.Code != proto.CodeSigningBackendUnavailable || time.Now().After(deadline) {
			t.Fatalf("after the token came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
