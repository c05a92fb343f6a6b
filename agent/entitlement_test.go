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
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

func TestEntitlementGate(t *testing.T) {
	ctx := context.Background()
	h := harness.StartAgent(t, harness.Options{})
	noPoE := h.ClientWith(harness.Credentials{Token: h.Creds.Token, Key: h.Creds.Key, ScannerImageDigest: h.Creds.ScannerImageDigest})
	otherTenantPoE, err := devauth.MintPoE(h.Dir, devauth.Options{Tenant: "someone-else"})
	if err != nil {
		t.Fatal(err)
	}
	otherInstPoE, _ := devauth.MintPoE(h.Dir, devauth.Options{Installation: "other-node"})
	for _, c := range []struct {
		name string
		poe  *proto.PoE
	}{
		{"missing PoE", nil},
		{"PoE of another tenant", &proto.PoE{Format: "jwt", Value: otherTenantPoE}},
		{"PoE of another installation", &proto.PoE{Format: "jwt", Value: otherInstPoE}},
		{"PoE signed by an unknown key", &proto.PoE{Format: "jwt", Value: h.Creds.Token}},
		{"opaque PoE without licensing service", &proto.PoE{Format: "opaque", Value: "abc"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := signRequest()
			req.PoE = c.poe
			before := len(h.Signed())
			_, err := noPoE.SignDSSE(ctx, req)
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Code != proto.CodeEntitlementDenied || ce.Status != 403 {
				t.Fatalf("got %v", err)
			}
			if len(h.Signed()) != before {
				t.Fatal("signed")
			}
			recs := h.Audit.Records()
			if last := recs[len(recs)-1]; last.Gate != "entitlement" || last.PoEState != "denied" || last.Reason == "" {
				t.Fatalf("audit %+v", last)
			}
		})
	}

	// Emergency bypass: enabled over the admin socket (audited), requests
	// without a PoE then sign, marked bypass; disabling restores the gate.
	bypass := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://signer-agent"+proto.PathAdminBypass, strings.NewReader(body))
		resp, err := harness.HTTPClient(h.AdminSock).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	if code, body := bypass(`{"reason":"","for":"30m"}`); code != 400 {
		t.Fatalf("bypass without reason: %d %s", code, body)
	}
	if code, body := bypass(`{"reason":"licensing outage INC-7","for":"48h"}`); code != 400 {
		t.Fatalf("bypass too long: %d %s", code, body)
	}
	if code, body := bypass(`{"reason":"licensing outage INC-7","for":"30m"}`); code != 200 {
		t.Fatalf("bypass: %d %s", code, body)
	}
	recs := h.Audit.Records()
	if last := recs[len(recs)-1]; last.Admin != "entitlement-bypass" || !strings.Contains(last.Reason, "INC-7") || last.Decision != audit.Allow {
		t.Fatalf("bypass toggle audit %+v", last)
	}
	if _, err := noPoE.SignDSSE(ctx, signRequest()); err != nil {
		t.Fatalf("under bypass: %v", err)
	}
	if s := h.Signed(); s[len(s)-1].PoEState != "bypass" {
		t.Fatalf("not marked bypass: %+v", s[len(s)-1])
	}
	if code, body := bypass(`{"for":"0s"}`); code != 200 {
		t.Fatalf("bypass off: %d %s", code, body)
	}
	if _, err := noPoE.SignDSSE(ctx, signRequest()); !errors.Is(err, client.ErrEntitlementDenied) {
		t.Fatalf("after bypass: %v", err)
	}
}

// TestLicensingKeyRotation: replacing the licensing key file (watched)
// takes effect without a restart: PoEs from the old key are refused, PoEs
// from the new key accepted.
func TestLicensingKeyRotation(t *testing.T) {
	ctx := context.Background()
	h := harness.StartAgent(t, harness.Options{})
	if _, err := h.Client.SignDSSE(ctx, signRequest()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(h.Dir, devauth.LicensingKeyFile)); err != nil {
		t.Fatal(err)
	}
	if err := devauth.Setup(h.Dir); err != nil { // a new licensing key and public.pem
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := h.Client.SignDSSE(ctx, signRequest())
		if errors.Is(err, client.ErrEntitlementDenied) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("old PoE still accepted after the key rotation: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := h.ClientWith(h.Mint(t, devauth.Options{})).SignDSSE(ctx, signRequest()); err != nil {
		t.Fatalf("PoE from the new key: %v", err)
	}
}
