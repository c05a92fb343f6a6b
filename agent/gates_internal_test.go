package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/peercred"
	"github.com/stellaops/signer-agent/proto"
)

// newGateAgent builds an agent on a dev configuration (edited by edit)
// without listening: the gates run on its snapshot, no socket involved.
func newGateAgent(t *testing.T, edit func(*config.Config)) *Agent {
	t.Helper()
	dir := t.TempDir()
	cfg, err := SetupDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		b, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		edit(c)
		if b, err = c.Marshal(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(cfg, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(context.Background(), Options{ConfigPath: cfg, Auditor: &audit.Memory{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.snap.Load().closeKeys(nil) })
	return a
}

// rcFor is a request context on a's snapshot, as the socket handler makes
// it.
func rcFor(a *Agent, r *http.Request, sock socketKind) *requestContext {
	return &requestContext{id: "t", route: r.URL.Path, socket: sock, start: time.Now(), r: r, snap: a.snap.Load()}
}

func TestTransportGate(t *testing.T) {
	a := newGateAgent(t, func(c *config.Config) { c.Transport.MaxBodyBytes = 1024 })
	for _, tc := range []struct {
		name   string
		mutate func(r *http.Request)
		want   proto.Code
	}{
		{"ok", func(*http.Request) {}, ""},
		{"wrong host", func(r *http.Request) { r.Host = "localhost" }, proto.CodeInvalidRequest},
		{"no host", func(r *http.Request) { r.Host = "" }, proto.CodeInvalidRequest},
		{"origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, proto.CodePeerNotAllowed},
		{"referer", func(r *http.Request) { r.Header.Set("Referer", "https://evil.example/") }, proto.CodePeerNotAllowed},
		{"empty origin", func(r *http.Request) { r.Header["Origin"] = []string{""} }, proto.CodePeerNotAllowed},
		{"empty referer", func(r *http.Request) { r.Header["Referer"] = []string{""} }, proto.CodePeerNotAllowed},
		{"declared body over cap", func(r *http.Request) { r.ContentLength = 1025 }, proto.CodePayloadTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://signer-agent"+proto.PathSignDSSE, strings.NewReader("{}"))
			tc.mutate(r)
			d := transportGate(context.Background(), rcFor(a, r, socketAPI))
			if got := codeOf(d); got != tc.want {
				t.Fatalf("code %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPeerGate(t *testing.T) {
	a := newGateAgent(t, func(c *config.Config) {
		c.Peers = config.Peers{Allow: &config.PeerAllow{UIDs: []uint32{1000}, GIDs: []uint32{2000}}, Admin: &config.PeerAllow{UIDs: []uint32{0}}}
	})
	for _, tc := range []struct {
		name string
		sock socketKind
		peer *peercred.Cred
		want proto.Code
	}{
		{"no credentials", socketAPI, nil, proto.CodePeerNotAllowed},
		{"allowed uid", socketAPI, &peercred.Cred{UID: 1000, GID: 1}, ""},
		{"allowed gid", socketAPI, &peercred.Cred{UID: 5, GID: 2000}, ""},
		{"supplementary group", socketAPI, &peercred.Cred{UID: 5, GID: 5, Groups: []uint32{2000}}, ""},
		{"other uid", socketAPI, &peercred.Cred{UID: 1001, GID: 1}, proto.CodePeerNotAllowed},
		{"api uid on the admin socket", socketAdmin, &peercred.Cred{UID: 1000, GID: 2000}, proto.CodePeerNotAllowed},
		{"root on the admin socket", socketAdmin, &peercred.Cred{UID: 0}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := rcFor(a, httptest.NewRequest(http.MethodGet, "http://signer-agent/healthz", nil), tc.sock)
			rc.peer = tc.peer
			if got := codeOf(a.peerGate(context.Background(), rc)); got != tc.want {
				t.Fatalf("code %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPolicyGate(t *testing.T) {
	a := newGateAgent(t, func(c *config.Config) {
		c.Tenants = append(c.Tenants, config.Tenant{ID: "someone-else", Plan: "dev", PredicateTypes: []string{"stella.ops/sbom@v1"}})
		expired := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		c.Keys = append(c.Keys,
			config.Key{ID: "other-tenant", URI: "memory:o", Tenants: []string{"someone-else"}},
			config.Key{ID: "old", URI: "memory:old", Tenants: []string{"dev"}, Status: proto.KeyStatusVerifyOnly},
			config.Key{ID: "expired", URI: "memory:exp", Tenants: []string{"dev"}, NotAfter: &expired})
	})
	for _, tc := range []struct {
		name string
		req  proto.SignRequest
		want proto.Code
		keys []string
	}{
		{"default key", proto.SignRequest{PredicateType: "stella.ops/sbom@v1"}, "", []string{"dev"}},
		{"named key", proto.SignRequest{PredicateType: "stella.ops/sbom@v1", Options: &proto.SignOptions{KeyIDs: []string{"dev"}}}, "", []string{"dev"}},
		{"predicate not allowed", proto.SignRequest{PredicateType: "example.com/other@v1"}, proto.CodePredicateNotAllowed, nil},
		{"unknown key", proto.SignRequest{PredicateType: "stella.ops/sbom@v1", Options: &proto.SignOptions{KeyIDs: []string{"nope"}}}, proto.CodeNotFound, nil},
		{"another tenant's key", proto.SignRequest{PredicateType: "stella.ops/sbom@v1", Options: &proto.SignOptions{KeyIDs: []string{"other-tenant"}}}, proto.CodeKeyUnavailable, nil},
		{"verify-only key", proto.SignRequest{PredicateType: "stella.ops/sbom@v1", Options: &proto.SignOptions{KeyIDs: []string{"old"}}}, proto.CodeKeyUnavailable, nil},
		{"expired key", proto.SignRequest{PredicateType: "stella.ops/sbom@v1", Options: &proto.SignOptions{KeyIDs: []string{"expired"}}}, proto.CodeKeyUnavailable, nil},
		{"all or nothing", proto.SignRequest{PredicateType: "stella.ops/sbom@v1", Options: &proto.SignOptions{KeyIDs: []string{"dev", "old"}}}, proto.CodeKeyUnavailable, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := rcFor(a, httptest.NewRequest(http.MethodPost, "http://signer-agent"+proto.PathSignDSSE, nil), socketAPI)
			rc.tenant, rc.req = "dev", &tc.req
			d := a.policyGate(context.Background(), rc)
			if got := codeOf(d); got != tc.want {
				t.Fatalf("code %q, want %q (%v)", got, tc.want, d)
			}
			if tc.want == "" && (len(rc.keys) != len(tc.keys) || rc.keys[0].cfg.ID != tc.keys[0] || rc.rec.KeyIDs[0] != tc.keys[0]) {
				t.Fatalf("keys chosen: %v", rc.rec.KeyIDs)
			}
		})
	}
}

func TestBodyGate(t *testing.T) {
	a := newGateAgent(t, func(c *config.Config) { c.Transport.MaxBodyBytes = 4096 })
	good := `{"subject":[{"name":"a","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],"predicateType":"stella.ops/sbom@v1","predicate":{"n":1}}`
	for _, tc := range []struct {
		name, body string
		want       proto.Code
	}{
		{"ok", good, ""},
		{"not JSON", "{", proto.CodeInvalidRequest},
		{"unknown field", strings.Replace(good, "{", `{"x":1,`, 1), proto.CodeInvalidRequest},
		{"empty subject", strings.Replace(good, `[{"name":"a","digest":{"sha256":"`+strings.Repeat("ab", 32)+`"}}]`, "[]", 1), proto.CodeInvalidRequest},
		{"over the cap while reading", `{"predicate":"` + strings.Repeat("x", 5000) + `"}`, proto.CodePayloadTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://signer-agent"+proto.PathSignDSSE, strings.NewReader(tc.body))
			r.ContentLength = -1 // streamed: the cap applies while reading
			rc := rcFor(a, r, socketAPI)
			d := a.bodyGate(context.Background(), rc)
			for _, f := range rc.onDone {
				f()
			}
			if got := codeOf(d); got != tc.want {
				t.Fatalf("code %q, want %q (%v)", got, tc.want, d)
			}
			if tc.want == "" && (rc.statement == nil || rc.rec.PayloadDigest == "") {
				t.Fatal("no statement built")
			}
		})
	}
}

func codeOf(d *Denial) proto.Code {
	if d == nil {
		return ""
	}
	return d.Code
}
