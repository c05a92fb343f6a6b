package agent_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

func TestRevocation(t *testing.T) {
	ctx := context.Background()
	t.Run("admin endpoint", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{})
		if _, err := h.Client.SignDSSE(ctx, signRequest()); err != nil {
			t.Fatal(err)
		}
		post := func(path, body string) int {
			req, _ := http.NewRequest(http.MethodPost, "http://signer-agent"+path, strings.NewReader(body))
			resp, err := harness.HTTPClient(h.AdminSock).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode
		}
		if c := post(proto.PathAdminKeys+"dev/revoke", `{}`); c != 400 {
			t.Fatalf("revoke without reason: %d", c)
		}
		if c := post(proto.PathAdminKeys+"nope/revoke", `{"reason":"x"}`); c != 404 {
			t.Fatalf("revoke unknown key: %d", c)
		}
		if c := post(proto.PathAdminKeys+"dev/revoke", `{"reason":"key file leaked"}`); c != 200 {
			t.Fatalf("revoke: %d", c)
		}
		recs := decisions(h.Audit.Records())
		if last := recs[len(recs)-1]; last.Admin != "key-revoke" || !strings.Contains(last.Reason, "leaked") {
			t.Fatalf("audit %+v", last)
		}
		// The reload that applied it is audited with the revoked key's
		// fingerprint.
		all := h.Audit.Records()
		if n := all[len(all)-1]; n.Gate != "load" || n.KeyIDs[0] != "dev" || !strings.HasPrefix(n.KeyFingerprints[0], "sha256:") || n.ConfigDigest == "" {
			t.Fatalf("load record %+v", n)
		}
		before := len(h.Signed())
		_, err := h.Client.SignDSSE(ctx, signRequest())
		if !errors.Is(err, client.ErrKeyUnavailable) {
			t.Fatalf("sign after revocation: %v", err)
		}
		if len(h.Signed()) != before {
			t.Fatal("signed with a revoked key")
		}
		ks, _ := h.Client.Keys(ctx)
		if ks.Keys[0].Status != proto.KeyStatusRevoked {
			t.Fatalf("keys list: %+v", ks.Keys[0])
		}
	})
	t.Run("watched revocation list", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{})
		p := filepath.Join(h.Dir, "revoked-keys.yaml")
		os.WriteFile(p+".tmp", []byte("revoked:\n  - id: dev\n    reason: rotated out by hand\n"), 0o600)
		os.Rename(p+".tmp", p)
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, err := h.Client.SignDSSE(ctx, signRequest())
			if errors.Is(err, client.ErrKeyUnavailable) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("revocation by file not applied: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

func TestRotation(t *testing.T) {
	ctx := context.Background()
	h := harness.StartAgent(t, harness.Options{})
	before, err := h.Client.SignDSSE(ctx, signRequest())
	if err != nil {
		t.Fatal(err)
	}
	post := func(path, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://signer-agent"+path, strings.NewReader(body))
		resp, err := harness.HTTPClient(h.AdminSock).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if c, b := post(proto.PathAdminKeys+"dev/rotate", `{"newId":"dev-2027"}`); c != 200 {
		t.Fatalf("rotate: %d %s", c, b)
	}
	after, err := h.Client.SignDSSE(ctx, signRequest())
	if err != nil {
		t.Fatal(err)
	}
	if after.SigningIdentity[0].KeyID != "dev-2027" || after.SigningIdentity[0].PublicKeyHint == before.SigningIdentity[0].PublicKeyHint {
		t.Fatalf("not signed by the new key: %+v", after.SigningIdentity[0])
	}
	ks, _ := h.Client.Keys(ctx)
	status := map[string]string{}
	for _, k := range ks.Keys {
		status[k.ID] = k.Status
	}
	if status["dev"] != proto.KeyStatusVerifyOnly || status["dev-2027"] != proto.KeyStatusActive {
		t.Fatalf("statuses %v", status)
	}
	// The old key still verifies old output but no longer signs.
	req := signRequest()
	req.Options = &proto.SignOptions{KeyIDs: []string{"dev"}}
	if _, err := h.Client.SignDSSE(ctx, req); !errors.Is(err, client.ErrKeyUnavailable) {
		t.Fatalf("verify-only key signed: %v", err)
	}
	// The rotation survives a reload (it lives in the state directory).
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := h.Client.SignDSSE(ctx, signRequest()); err != nil || res.SigningIdentity[0].KeyID != "dev-2027" {
		t.Fatalf("after reload: %v", err)
	}
	if c, _ := post(proto.PathAdminKeys+"dev/rotate", `{"newId":"x"}`); c == 200 {
		t.Fatal("rotated a verify-only key")
	}
	if c, _ := post(proto.PathAdminKeys+"dev-2027/rotate", `{"newId":"dev-2027"}`); c == 200 {
		t.Fatal("rotated onto an existing id")
	}
	recs := h.Audit.Records()
	found := false
	for _, r := range recs {
		if r.Admin == "key-rotate" && strings.Contains(r.Reason, "dev-2027") {
			found = true
		}
	}
	if !found {
		t.Fatal("rotation not audited")
	}
}
