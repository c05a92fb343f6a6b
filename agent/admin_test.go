package agent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestAdminContract drives every admin endpoint through client.Admin and
// the proto types, against a running agent.
func TestAdminContract(t *testing.T) {
	ctx := context.Background()
	h := harness.StartAgent(t, harness.Options{})
	adm := &client.Admin{Socket: h.AdminSock}
	if _, err := h.Client.SignDSSE(ctx, signRequest()); err != nil {
		t.Fatal(err)
	}

	rl, err := adm.Reload(ctx)
	if err != nil || rl.Status != "ok" || rl.Checks["config"] != h.Config {
		t.Fatalf("reload: %+v %v", rl, err)
	}

	by, err := adm.Bypass(ctx, proto.BypassRequest{Reason: "licensing outage INC-7", For: "30m"})
	if err != nil || !by.Active || by.Until == nil || time.Until(*by.Until) < 29*time.Minute || by.Reason != "licensing outage INC-7" {
		t.Fatalf("bypass on: %+v %v", by, err)
	}
	if by, err = adm.Bypass(ctx, proto.BypassRequest{For: "0s"}); err != nil || by.Active {
		t.Fatalf("bypass off: %+v %v", by, err)
	}
	if _, err := adm.Bypass(ctx, proto.BypassRequest{Reason: "x", For: "48h"}); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("bypass over 24h: %v", err)
	}

	rot, err := adm.RotateKey(ctx, "dev", proto.RotateRequest{NewID: "dev-2"})
	if err != nil || rot.Old != "dev" || rot.OldStatus != proto.KeyStatusVerifyOnly || rot.New.ID != "dev-2" || !rot.New.Default || rot.New.PublicKey == "" {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	rev, err := adm.RevokeKey(ctx, "dev", "retired")
	if err != nil || rev.ID != "dev" || rev.Status != proto.KeyStatusRevoked {
		t.Fatalf("revoke: %+v %v", rev, err)
	}
	if _, err := adm.RevokeKey(ctx, "nope", "retired"); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("revoke unknown key: %v", err)
	}
	if _, err := adm.UnlockKey(ctx, "dev-2", []byte("1234")); !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("unlock a file key: %v", err)
	}

	var admins []string
	err = adm.Audit(ctx, proto.AuditQuery{Decision: proto.DecisionAllow}, func(r proto.AuditRecord) error {
		if r.Admin != "" {
			admins = append(admins, r.Admin)
		}
		return nil
	})
	if err != nil || strings.Join(admins, ",") != "reload,entitlement-bypass,entitlement-bypass,key-rotate,key-revoke" {
		t.Fatalf("audit query: %v %v", admins, err)
	}
	n := 0
	if err := adm.Audit(ctx, proto.AuditQuery{Limit: 2}, func(proto.AuditRecord) error { n++; return nil }); err != nil || n != 2 {
		t.Fatalf("audit limit: %d %v", n, err)
	}
	// The in-memory audit log of the test harness cannot be exported.
	if _, err := adm.AuditExport(ctx, proto.AuditExportRequest{Dir: h.Dir + "/export"}); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("export from memory: %v", err)
	}
	m, err := adm.Metrics(ctx)
	if err != nil || !strings.Contains(string(m), "signer_requests_total") {
		t.Fatalf("metrics: %v", err)
	}
	if r, err := adm.Ready(ctx); err != nil || r.Status != "ok" {
		t.Fatalf("ready: %+v %v", r, err)
	}
}

// TestAdminRoutes: unknown key actions, wrong methods and unclean paths
// are problem documents on the admin socket too.
func TestAdminRoutes(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	for _, tc := range []struct {
		method, path string
		status       int
		code         proto.Code
	}{
		{"POST", "/admin/v1/keys/dev/explode", 404, proto.CodeNotFound},
		{"GET", "/admin/v1/keys/dev/revoke", 405, proto.CodeMethodNotAllowed},
		{"POST", "/admin/v1/audit", 405, proto.CodeMethodNotAllowed},
		{"GET", "/admin/v1/keys/", 404, proto.CodeNotFound},
		{"POST", "/admin/v1//reload", 404, proto.CodeNotFound},
		{"POST", "/admin/v1/reload/../reload", 404, proto.CodeNotFound},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, p := rawRequest(t, h.AdminSock, tc.method, tc.path)
			if status != tc.status || p.Code != tc.code {
				t.Fatalf("%d %s, want %d %s", status, p.Code, tc.status, tc.code)
			}
		})
	}
}

// rawRequest sends a request the typed clients would not (an unclean
// path, a wrong method) and decodes the problem document.
func rawRequest(t *testing.T, sock, method, path string) (int, *proto.Problem) {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Written by hand: net/http would clean the path.
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: signer-agent\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", method, path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != proto.MediaTypeProblem {
		t.Fatalf("%s %s: content type %q: %s", method, path, ct, b)
	}
	p, err := proto.DecodeProblem(b)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, p
}

// decisions drops the notice records (configuration loads, quota mode
// switches): what is left are the decisions on requests.
func decisions(recs []audit.Record) []audit.Record {
	var out []audit.Record
	for _, r := range recs {
		if r.Decision != audit.Notice {
			out = append(out, r)
		}
	}
	return out
}
