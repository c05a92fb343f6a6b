package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

func TestReleaseGate(t *testing.T) {
	ctx := context.Background()
	h := harness.StartAgent(t, harness.Options{})

	// The dev allowlist's manual approval is recorded on use.
	if _, err := h.Client.SignDSSE(ctx, signRequest()); err != nil {
		t.Fatal(err)
	}
	s := h.Signed()
	if v := s[len(s)-1].ReleaseVerdict; !strings.Contains(v, "allowlist") || !strings.Contains(v, "manually approved by signer-agent --dev") {
		t.Fatalf("release verdict in audit: %q", v)
	}
	if s[len(s)-1].ScannerDigest != devauth.DemoScannerDigest {
		t.Fatal("scanner digest not audited")
	}

	for _, c := range []struct{ name, digest string }{
		{"missing scanner digest", ""},
		{"unknown scanner digest", "sha256:" + strings.Repeat("ab", 32)},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := h.ClientWith(harness.Credentials{Token: h.Creds.Token, Key: h.Creds.Key, PoE: h.Creds.PoE})
			req := signRequest()
			req.ScannerImageDigest = c.digest
			before := len(h.Signed())
			_, err := cl.SignDSSE(ctx, req)
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Code != proto.CodeReleaseUntrusted || ce.Status != 403 {
				t.Fatalf("got %v", err)
			}
			if len(h.Signed()) != before {
				t.Fatal("signed")
			}
			recs := h.Audit.Records()
			if last := recs[len(recs)-1]; last.Gate != "release" || last.ReleaseVerdict != "untrusted" || last.Reason == "" {
				t.Fatalf("audit %+v", last)
			}
		})
	}

	t.Run("version outside the PoE window", func(t *testing.T) {
		cl := h.ClientWith(h.Mint(t, devauth.Options{VersionWindow: map[string]string{"earliest": "2.0.0"}}))
		_, err := cl.SignDSSE(ctx, signRequest())
		if !errors.Is(err, client.ErrEntitlementDenied) {
			t.Fatalf("got %v", err)
		}
		cl = h.ClientWith(h.Mint(t, devauth.Options{VersionWindow: map[string]string{"earliest": "0.9.0", "latest": "1.5.0"}}))
		if _, err := cl.SignDSSE(ctx, signRequest()); err != nil {
			t.Fatalf("inside the window: %v", err)
		}
	})

	t.Run("referrers endpoint", func(t *testing.T) {
		get := func(q string) (int, map[string]any) {
			req, _ := http.NewRequest(http.MethodGet, "http://signer-agent"+proto.PathReferrers+q, nil)
			resp, err := harness.HTTPClient(h.APISock).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var m map[string]any
			_ = json.Unmarshal(b, &m)
			return resp.StatusCode, m
		}
		code, m := get("?digest=" + devauth.DemoScannerDigest)
		if code != 200 || m["trusted"] != true || m["version"] != devauth.DemoScannerVersion || m["manualApproval"] == nil {
			t.Fatalf("%d %v", code, m)
		}
		code, m = get("?digest=sha256:" + strings.Repeat("cd", 32))
		if code != 200 || m["trusted"] != false || m["reason"] == "" {
			t.Fatalf("%d %v", code, m)
		}
		if code, _ = get("?digest=md5:abc"); code != 400 {
			t.Fatalf("bad digest: %d", code)
		}
	})
}
