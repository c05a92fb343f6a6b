package agent_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// These tests drive the keyless policy and its failure handling through
// the agent without a sigstore stack: Fulcio and the TSA are a closed
// port on loopback, so every keyless signature fails the way a real
// outage does (connection refused). Keyless signatures that succeed, and
// real Fulcio, TSA and identity failures, are in test/keyless.

// closedURL is an http URL on loopback where nothing listens.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// identityToken writes an (unsigned) identity token that expires at exp:
// the agent reads only its exp; Fulcio would verify it.
func identityToken(t *testing.T, exp time.Time) string {
	t.Helper()
	enc := base64.RawURLEncoding
	claims, _ := json.Marshal(map[string]any{"iss": "https://issuer.example", "sub": "agent@node-1.example", "email": "agent@node-1.example", "email_verified": true, "exp": exp.Unix()})
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(enc.EncodeToString([]byte(`{"alg":"ES256"}`))+"."+enc.EncodeToString(claims)+".c2ln"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// withKeyless configures keyless signing against unreachable services and
// gives the dev tenant policy; fallback, when set, adds a fallback key.
func withKeyless(t *testing.T, policy, fallback, tokenFile string) func(c *config.Config) {
	down := closedURL(t)
	return func(c *config.Config) {
		c.Keyless = config.Keyless{FulcioURL: down, TSAURL: down + "/api/v1/timestamp", Timeout: 2 * time.Second,
			Identity: config.KeylessIdentity{TokenFile: tokenFile}}
		harness.DevTenant(c).Keyless = policy
		if fallback != "" {
			harness.WithKey(fallback, "memory:"+fallback)(c)
			harness.DevTenant(c).FallbackKey = fallback
		}
	}
}

// withCode keeps the records of one code (the client's first request
// also gets a use_dpop_nonce denial).
func withCode(recs []audit.Record, code proto.Code) []audit.Record {
	var out []audit.Record
	for _, r := range recs {
		if r.Code == string(code) {
			out = append(out, r)
		}
	}
	return out
}

func keylessRequest(mode string, keyIDs ...string) *proto.SignRequest {
	r := signRequest()
	if mode != "" || len(keyIDs) > 0 {
		r.Options = &proto.SignOptions{Mode: mode, KeyIDs: keyIDs}
	}
	return r
}

// TestKeylessPolicyRefusals: each request the tenant's keyless policy
// does not allow is refused with key_unavailable before anything is
// signed (or asked of Fulcio), and the denial is audited by the policy
// gate; keyless signing that fails (Fulcio and the TSA unreachable, the
// identity token expired) is signing_backend_unavailable with the
// keyless Retry-After, and audited with the keyless key source.
func TestKeylessPolicyRefusals(t *testing.T) {
	fresh := time.Now().Add(time.Hour)
	for _, tc := range []struct {
		name      string
		policy    string
		token     time.Time
		req       *proto.SignRequest
		code      proto.Code
		gate      string
		retry     time.Duration
		reasonHas string
	}{
		{"keyless with the tenant's policy off", config.KeylessOff, fresh, keylessRequest(proto.ModeKeyless), proto.CodeKeyUnavailable, "policy", 0, "keyless: off"},
		{"keyless and key ids with the policy off", config.KeylessOff, fresh, keylessRequest(proto.ModeKeyless, "dev"), proto.CodeKeyUnavailable, "policy", 0, "keyless: off"},
		{"keyful mode with the policy required", config.KeylessRequired, fresh, keylessRequest(proto.ModeKeyful), proto.CodeKeyUnavailable, "policy", 0, "keyless: required"},
		{"key ids without a mode with the policy required", config.KeylessRequired, fresh, keylessRequest("", "dev"), proto.CodeKeyUnavailable, "policy", 0, "keyless: required"},
		{"Fulcio unreachable, policy allowed", config.KeylessAllowed, fresh, keylessRequest(proto.ModeKeyless), proto.CodeSigningBackendUnavailable, "sign", 5 * time.Second, "fulcio unavailable"},
		{"Fulcio unreachable, policy required, no mode", config.KeylessRequired, fresh, keylessRequest(""), proto.CodeSigningBackendUnavailable, "sign", 5 * time.Second, "fulcio unavailable"},
		{"Fulcio unreachable, keyless and a key id", config.KeylessAllowed, fresh, keylessRequest(proto.ModeKeyless, "dev"), proto.CodeSigningBackendUnavailable, "sign", 5 * time.Second, "fulcio unavailable"},
		{"identity token expired", config.KeylessAllowed, time.Now().Add(-time.Minute), keylessRequest(proto.ModeKeyless), proto.CodeSigningBackendUnavailable, "sign", 30 * time.Second, "identity token expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := harness.StartAgent(t, harness.Options{Edit: withKeyless(t, tc.policy, "", identityToken(t, tc.token))})
			h.Client.MaxAttempts = 1 // the refusal itself, not the client's retries
			before := len(h.Audit.Records())
			_, err := h.Client.SignDSSE(context.Background(), tc.req)
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Code != tc.code {
				t.Fatalf("got %v, want %s", err, tc.code)
			}
			if ce.RetryAfter != tc.retry {
				t.Errorf("Retry-After %s, want %s", ce.RetryAfter, tc.retry)
			}
			if strings.Contains(ce.Detail, "eyJ") {
				t.Error("the problem carries the token")
			}
			if n := len(h.Signed()); n != 0 {
				t.Fatalf("%d signatures made", n)
			}
			recs := withCode(h.Audit.Records()[before:], tc.code)
			if len(recs) != 1 || recs[0].Decision != audit.Deny || recs[0].Code != string(tc.code) || recs[0].Gate != tc.gate || !strings.Contains(recs[0].Reason, tc.reasonHas) {
				t.Fatalf("audit records %+v", recs)
			}
			if strings.Contains(recs[0].Reason, "eyJ") {
				t.Error("the audit record carries the token")
			}
			if tc.gate == "sign" && (len(recs[0].KeyIDs) == 0 || recs[0].KeyIDs[0] != "keyless" || recs[0].KeySources[0] != "keyless") {
				t.Errorf("denied keyless signature audited as keys %v sources %v", recs[0].KeyIDs, recs[0].KeySources)
			}
		})
	}
}

// TestKeylessFallback: with the policy allowed and a fallback key, a
// keyless request whose keyless signature fails is signed by the
// fallback key: the response says keyful, the allow record names the
// switch and the fallback key, and the switch and the failure are
// counted. With the policy required, or with key ids named, there is no
// fallback.
func TestKeylessFallback(t *testing.T) {
	ctx := context.Background()
	h := harness.StartAgent(t, harness.Options{Edit: withKeyless(t, config.KeylessAllowed, "fb", identityToken(t, time.Now().Add(time.Hour)))})
	h.Client.MaxAttempts = 1
	res, err := h.Client.SignDSSE(ctx, keylessRequest(proto.ModeKeyless))
	if err != nil {
		t.Fatal(err)
	}
	id := res.SigningIdentity[0]
	if len(res.SigningIdentity) != 1 || id.Mode != proto.ModeKeyful || id.KeyID != "fb" || len(id.CertificateChain) != 0 {
		t.Fatalf("signing identity %+v", res.SigningIdentity)
	}
	signed := h.Signed()
	if len(signed) != 1 || signed[0].AuditID != res.AuditID || signed[0].KeyIDs[0] != "fb" || !strings.HasPrefix(signed[0].KeyFingerprints[0], "sha256:") ||
		!strings.Contains(signed[0].Reason, `fallback from keyless (fulcio) to key "fb"`) || len(signed[0].Certificates) != 0 {
		t.Fatalf("allow record %+v", signed)
	}
	m := h.Scrape(t)
	for _, want := range []string{
		`signer_key_fallback_total{from_key="keyless",tenant="dev",to_key="fb"} 1`,
		`signer_keyless_failures_total{cause="fulcio"} 1`,
		`signer_key_signatures_total{key_id="keyless",key_source="keyless",result="error"} 1`,
		`signer_key_signatures_total{key_id="fb",key_source="memory",result="ok"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// Key ids named: no fallback.
	if _, err := h.Client.SignDSSE(ctx, keylessRequest(proto.ModeKeyless, "dev")); !errors.Is(err, client.ErrSigningBackendUnavailable) {
		t.Fatalf("keyless + key id: %v", err)
	}
	// Policy required: no fallback.
	harness.EditConfig(t, h.Config, func(c *config.Config) { harness.DevTenant(c).Keyless = config.KeylessRequired })
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Client.SignDSSE(ctx, keylessRequest(proto.ModeKeyless)); !errors.Is(err, client.ErrSigningBackendUnavailable) {
		t.Fatalf("policy required: %v", err)
	}
	if n := len(h.Signed()); n != 1 {
		t.Fatalf("%d signatures, want the fallback's only", n)
	}
}

// TestKeylessReadiness: a keyless outage is noted in /readyz without
// making the agent unready while keyful tenants can sign; with every
// tenant requiring keyless it is unready.
func TestKeylessReadiness(t *testing.T) {
	ctx := context.Background()
	h := harness.StartAgent(t, harness.Options{Edit: withKeyless(t, config.KeylessAllowed, "", identityToken(t, time.Now().Add(time.Hour)))})
	hl, err := h.Client.Ready(ctx)
	if err != nil {
		t.Fatalf("a keyless outage made the agent unready for keyful tenants: %v", err)
	}
	if c := hl.Checks["keyless"]; !strings.HasPrefix(c, "degraded") || !strings.Contains(c, "fulcio unavailable") {
		t.Fatalf("keyless check %q", c)
	}
	harness.EditConfig(t, h.Config, func(c *config.Config) { harness.DevTenant(c).Keyless = config.KeylessRequired })
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = h.Client.Ready(ctx)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 503 {
		t.Fatalf("every tenant requires keyless and it is down: ready (%v)", err)
	}
}

// TestKeylessConfigRefused: a tenant policy that needs keyless signing,
// without a keyless block, fails the load.
func TestKeylessConfigRefused(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	harness.EditConfig(t, h.Config, func(c *config.Config) { harness.DevTenant(c).Keyless = config.KeylessAllowed })
	if err := h.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), "keyless") {
		t.Fatalf("reload: %v", err)
	}
}
