package agent_test

import (
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

const digestA = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881" // sha256("x")

func signRequest() *proto.SignRequest {
	return &proto.SignRequest{
		Subject:       []proto.Subject{{Name: "registry.example/app", Digest: map[string]string{"sha256": digestA}}},
		PredicateType: "stella.ops/sbom@v1",
		Predicate:     json.RawMessage(`{"format":"cyclonedx-1.6","componentCount":412}`),
	}
}

func TestSignVerifies(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	res, err := h.Client.SignDSSE(context.Background(), signRequest())
	if err != nil {
		t.Fatal(err)
	}
	pub := h.PublicKey(t).(crypto.PublicKey)
	if len(res.Bundles) != 1 || res.SigningIdentity[0].KeyID != "dev" || res.SigningIdentity[0].KeySource != "file" {
		t.Fatalf("unexpected response: %+v", res.SigningIdentity)
	}
	if _, err := attest.VerifyBundle(res.Bundles[0], []crypto.PublicKey{pub}, attest.Expect{PredicateType: "stella.ops/sbom@v1", ArtifactSHA256: digestA}); err != nil {
		t.Fatal(err)
	}
	env, _ := json.Marshal(res.Envelope)
	if _, err := attest.VerifyEnvelope(context.Background(), env, []crypto.PublicKey{pub}, attest.Expect{ArtifactSHA256: digestA}); err != nil {
		t.Fatal(err)
	}
	if res.PayloadDigest != attest.Digest(res.Envelope.Payload) {
		t.Fatal("payloadDigest does not match payload")
	}
	signed := h.Signed()
	if len(signed) != 1 || signed[0].AuditID != res.AuditID || signed[0].PayloadDigest != res.PayloadDigest || signed[0].Peer == nil {
		t.Fatalf("audit record: %+v", signed)
	}
}

func TestKeysAndHealth(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	ks, err := h.Client.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.Keys) != 1 || ks.Keys[0].ID != "dev" || !strings.Contains(ks.Keys[0].PublicKey, "BEGIN PUBLIC KEY") || !ks.Keys[0].Default {
		t.Fatalf("keys: %+v", ks)
	}
	if _, err := h.Client.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Client.Ready(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Admin.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestBadRequests: each bad request gets its spec status and code, nothing
// is signed, and the denial is audited with the same code.
func TestBadRequests(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) { c.Transport.MaxBodyBytes = 4096 }})
	goodReq := signRequest()
	goodReq.PoE = &proto.PoE{Format: "jwt", Value: h.Creds.PoE}
	goodReq.ScannerImageDigest = h.Creds.ScannerImageDigest
	good, _ := json.Marshal(goodReq)
	withField := func(k, v string) string {
		return strings.Replace(string(good), "{", `{"`+k+`":`+v+`,`, 1)
	}
	replace := func(old, new string) string { return strings.Replace(string(good), old, new, 1) }
	cases := []struct {
		name   string
		method string
		path   string
		host   string
		header map[string]string
		body   string
		status int
		code   proto.Code
	}{
		{name: "malformed JSON", body: `{"subject":`, status: 400, code: proto.CodeInvalidRequest},
		{name: "not an object", body: `[]`, status: 400, code: proto.CodeInvalidRequest},
		{name: "trailing data", body: string(good) + `{}`, status: 400, code: proto.CodeInvalidRequest},
		{name: "unknown field", body: withField("extra", "1"), status: 400, code: proto.CodeInvalidRequest},
		{name: "unknown nested field", body: replace(`"name"`, `"nam":"x","name"`), status: 400, code: proto.CodeInvalidRequest},
		{name: "empty subject", body: replace(string(good[strings.Index(string(good), `[`):strings.Index(string(good), `]`)+1]), `[]`), status: 400, code: proto.CodeInvalidRequest},
		{name: "digest not hex", body: replace(digestA, strings.Repeat("z", 64)), status: 400, code: proto.CodeInvalidRequest},
		{name: "digest uppercase", body: replace(digestA, strings.ToUpper(digestA)), status: 400, code: proto.CodeInvalidRequest},
		{name: "digest short", body: replace(digestA, digestA[:63]), status: 400, code: proto.CodeInvalidRequest},
		{name: "digest unknown algorithm", body: replace(`"sha256"`, `"md5"`), status: 400, code: proto.CodeInvalidRequest},
		{name: "predicate not object", body: replace(`{"format":"cyclonedx-1.6","componentCount":412}`, `"x"`), status: 400, code: proto.CodeInvalidRequest},
		{name: "unsafe integer", body: replace(`412`, `9007199254740993`), status: 400, code: proto.CodeInvalidRequest},
		{name: "duplicate predicate key", body: replace(`"componentCount":412`, `"componentCount":412,"componentCount":413`), status: 400, code: proto.CodeInvalidRequest},
		{name: "report without policy", body: replace(`stella.ops/sbom@v1`, `stella.ops/report@v1`), status: 400, code: proto.CodeInvalidRequest},
		{name: "disallowed predicate type", body: replace(`stella.ops/sbom@v1`, `https://example.com/other@v1`), status: 400, code: proto.CodePredicateNotAllowed},
		{name: "unknown key id", body: withField("options", `{"keyIds":["nope"]}`), status: 404, code: proto.CodeNotFound},
		{name: "keyless with the tenant's policy off", body: withField("options", `{"mode":"keyless"}`), status: 403, code: proto.CodeKeyUnavailable},
		{name: "oversized body", body: withField("pad", `"`+strings.Repeat("a", 5000)+`"`), status: 413, code: proto.CodePayloadTooLarge},
		{name: "wrong Host", host: "localhost", body: string(good), status: 400, code: proto.CodeInvalidRequest},
		{name: "Origin header", header: map[string]string{"Origin": "https://evil.example"}, body: string(good), status: 403, code: proto.CodePeerNotAllowed},
		{name: "Referer header", header: map[string]string{"Referer": "https://evil.example/"}, body: string(good), status: 403, code: proto.CodePeerNotAllowed},
		{name: "empty Origin header", header: map[string]string{"Origin": ""}, body: string(good), status: 403, code: proto.CodePeerNotAllowed},
		{name: "empty Referer header", header: map[string]string{"Referer": ""}, body: string(good), status: 403, code: proto.CodePeerNotAllowed},
		{name: "unknown path", path: "/api/v1/signer/nope", body: string(good), status: 404, code: proto.CodeNotFound},
		{name: "wrong method", method: http.MethodGet, status: 405, code: proto.CodeMethodNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := h
			before := len(a.Audit.Records())
			method, path, host := c.method, c.path, c.host
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = proto.PathSignDSSE
			}
			if host == "" {
				host = proto.Host
			}
			req, _ := http.NewRequest(method, "http://signer-agent"+path, strings.NewReader(c.body))
			req.Host = host
			req.Header.Set("Content-Type", "application/json")
			for k, v := range a.AuthHeaders(t, a.Creds, method, path) {
				req.Header[k] = v
			}
			for k, v := range c.header {
				req.Header[k] = []string{v}
			}
			resp, err := harness.HTTPClient(a.APISock).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != proto.MediaTypeProblem {
				t.Fatalf("content type %q", ct)
			}
			p, err := proto.DecodeProblem(body)
			if err != nil || p.Code != c.code || p.Status != c.status || p.RequestID == "" {
				t.Fatalf("problem %+v (%v), want code %s", p, err, c.code)
			}
			if c.code == proto.CodeMethodNotAllowed && resp.Header.Get("Allow") != http.MethodPost {
				t.Fatalf("Allow header %q", resp.Header.Get("Allow"))
			}
			if bytes.Contains(body, []byte("evil.example")) || bytes.Contains(body, []byte("aaaaaaaa")) {
				t.Fatal("problem echoes request content")
			}
			if n := len(a.Signed()); n != 0 {
				t.Fatalf("%d signatures made", n)
			}
			recs := a.Audit.Records()[before:]
			if len(recs) != 1 || recs[0].Decision != audit.Deny || recs[0].Code != string(c.code) || recs[0].RequestID != p.RequestID || recs[0].Reason == "" {
				t.Fatalf("audit records %+v", recs)
			}
		})
	}
}

func TestDeterministicPayload(t *testing.T) {
	a := harness.StartAgent(t, harness.Options{})
	dir2 := harness.ShortTempDir(t)
	if err := os.MkdirAll(filepath.Join(dir2, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"dev.pem", "dev.pub"} {
		b, _ := os.ReadFile(filepath.Join(a.Dir, "keys", f))
		if err := os.WriteFile(filepath.Join(dir2, "keys", f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := harness.StartAgent(t, harness.Options{Dir: dir2})
	req := signRequest()
	req.Predicate = json.RawMessage(`{"z":[1,2.50,{"b":true,"a":null}],"a":"é\u00e9","n":1e2}`)
	r1, err := a.Client.SignDSSE(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := b.Client.SignDSSE(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(r1.Envelope.Payload, r2.Envelope.Payload) || r1.PayloadDigest != r2.PayloadDigest {
		t.Fatalf("payloads differ:\n%s\n%s", r1.Envelope.Payload, r2.Envelope.Payload)
	}
	if r1.SigningIdentity[0].PublicKeyHint != r2.SigningIdentity[0].PublicKeyHint {
		t.Fatal("same key, different hints")
	}
	want := `{"_type":"https://in-toto.io/Statement/v1","predicate":{"a":"éé","n":100,"z":[1,2.5,{"a":null,"b":true}]},"predicateType":"stella.ops/sbom@v1","subject":[{"digest":{"sha256":"` + digestA + `"},"name":"registry.example/app"}]}`
	if string(r1.Envelope.Payload) != want {
		t.Fatalf("payload\n got %s\nwant %s", r1.Envelope.Payload, want)
	}
}

func TestAuditUnavailableSignsNothing(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	h.Audit.SetFail(errors.New("disk full"))
	_, err := h.Client.SignDSSE(context.Background(), signRequest())
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != proto.CodeAuditUnavailable || ce.Status != 503 || ce.RetryAfter <= 0 {
		t.Fatalf("got %v", err)
	}
}

func TestReload(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	ctx := context.Background()
	req := signRequest()
	req.PredicateType = "https://example.com/new@v1"
	if _, err := h.Client.SignDSSE(ctx, req); !errors.Is(err, client.ErrPredicateNotAllowed) {
		t.Fatalf("before reload: %v", err)
	}
	harness.EditConfig(t, h.Config, func(c *config.Config) {
		tn := harness.DevTenant(c)
		tn.PredicateTypes = append(tn.PredicateTypes, "https://example.com/new@v1")
	})
	edited, _ := os.ReadFile(h.Config)
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Client.SignDSSE(ctx, req); err != nil {
		t.Fatalf("after reload: %v", err)
	}
	// A bad config keeps the running one.
	harness.WriteAtomic(t, h.Config, string(edited)+"bogus: 1\n")
	if err := h.Reload(ctx); err == nil {
		t.Fatal("bad config accepted")
	}
	if _, err := h.Client.SignDSSE(ctx, req); err != nil {
		t.Fatalf("after bad reload: %v", err)
	}
}

// TestFileWatchReload: an atomic rename of the config file is picked up by
// fsnotify without SIGHUP.
func TestFileWatchReload(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	ctx := context.Background()
	req := signRequest()
	req.PredicateType = "https://example.com/watched@v1"
	harness.EditConfig(t, h.Config, func(c *config.Config) {
		tn := harness.DevTenant(c)
		tn.PredicateTypes = append(tn.PredicateTypes, "https://example.com/watched@v1")
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := h.Client.SignDSSE(ctx, req)
		if err == nil {
			return
		}
		if !errors.Is(err, client.ErrPredicateNotAllowed) || time.Now().After(deadline) {
			t.Fatalf("watched reload did not happen: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestBindUnix(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{h.APISock, 0o660}, {h.AdminSock, 0o600}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode || fi.Mode()&os.ModeSocket == 0 {
			t.Fatalf("%s: mode %v, want socket %v", c.path, fi.Mode(), c.mode)
		}
	}
	// A live agent on the path: refuse.
	if _, err := agent.BindUnix(config.Socket{Path: h.APISock, Mode: "0660"}); !errors.Is(err, agent.ErrAgentRunning) {
		t.Fatalf("bind over a live agent: %v", err)
	}
	// A stale socket file (nobody listening) is replaced.
	dir := harness.ShortTempDir(t)
	stale := filepath.Join(dir, "stale.sock")
	l, err := agent.BindUnix(config.Socket{Path: stale, Mode: "0600"})
	if err != nil {
		t.Fatal(err)
	}
	l.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	l.Close()
	if _, err := os.Stat(stale); err != nil {
		t.Fatal("stale socket file should remain after close")
	}
	l2, err := agent.BindUnix(config.Socket{Path: stale, Mode: "0600"})
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()
	// A regular file is never removed.
	reg := filepath.Join(dir, "file")
	os.WriteFile(reg, []byte("x"), 0o600)
	if _, err := agent.BindUnix(config.Socket{Path: reg, Mode: "0600"}); err == nil {
		t.Fatal("bound over a regular file")
	}
}
