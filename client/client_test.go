package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// fakeAgent is an HTTP server on a Unix socket that applies the agent's
// transport checks (Host, Origin/Referer), records each request and hands it
// to the test's handler.
type fakeAgent struct {
	path string

	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	Method, Path, Host string
	Header             http.Header
	Body               []byte
}

func startAgent(t *testing.T, handler http.HandlerFunc) *fakeAgent {
	t.Helper()
	// t.TempDir() paths can exceed the 108-byte sun_path limit.
	dir, err := os.MkdirTemp("", "sa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	a := &fakeAgent{path: filepath.Join(dir, "api.sock")}
	ln, err := net.Listen("unix", a.path)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		ReadHeaderTimeout: 5 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				t.Errorf("fake agent: read body: %v", err)
			}
			a.mu.Lock()
			a.reqs = append(a.reqs, recorded{r.Method, r.URL.Path, r.Host, r.Header.Clone(), body})
			a.mu.Unlock()
			switch {
			case r.Host != proto.Host:
				writeProblem(w, proto.CodeInvalidRequest, "wrong Host "+r.Host, "")
			case r.Header.Get("Origin") != "" || r.Header.Get("Referer") != "":
				writeProblem(w, proto.CodePeerNotAllowed, "Origin or Referer present", "")
			case handler == nil:
				writeProblem(w, proto.CodeNotFound, "", "")
			default:
				r.Body = io.NopCloser(strings.NewReader(string(body)))
				handler(w, r)
			}
		}),
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return a
}

// last returns the last request the agent received.
func (a *fakeAgent) last(t *testing.T) recorded {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.reqs) == 0 {
		t.Fatal("fake agent received no request")
	}
	return a.reqs[len(a.reqs)-1]
}

func (a *fakeAgent) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.reqs)
}

func writeProblem(w http.ResponseWriter, code proto.Code, detail, requestID string) {
	w.Header().Set("Content-Type", proto.MediaTypeProblem)
	w.WriteHeader(code.Status())
	json.NewEncoder(w).Encode(proto.NewProblem(code, detail, requestID))
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", proto.MediaTypeJSON)
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// healthOK answers GET /healthz and GET /readyz with {"status":"ok"}.
func healthOK(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || (r.URL.Path != proto.PathHealthz && r.URL.Path != proto.PathReadyz) {
			t.Errorf("got %s %s, want GET /healthz or /readyz", r.Method, r.URL.Path)
		}
		writeJSON(w, http.StatusOK, `{"status":"ok","version":"1.2.3"}`)
	}
}

func newClient(a *fakeAgent) *client.Client {
	return &client.Client{Socket: "unix://" + a.path}
}

func TestZeroValueUsesEnvSocket(t *testing.T) {
	a := startAgent(t, healthOK(t))
	tests := []struct {
		name, env string
	}{
		{"unix URI", "unix://" + a.path},
		{"unix URI with localhost", "unix://localhost" + a.path},
		{"plain path", a.path},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(proto.EnvSocket, tt.env)
			// Proxy settings must never divert socket traffic.
			t.Setenv("HTTP_PROXY", "http://127.0.0.1:9")
			t.Setenv("http_proxy", "http://127.0.0.1:9")

			var c client.Client
			defer c.CloseIdleConnections()
			h, err := c.Health(context.Background())
			if err != nil {
				t.Fatalf("Health: %v", err)
			}
			if h.Status != "ok" || h.Version != "1.2.3" {
				t.Errorf("Health = %+v", h)
			}
			got := a.last(t)
			if got.Method != http.MethodGet || got.Path != proto.PathHealthz || got.Host != proto.Host {
				t.Errorf("request = %s %s Host %q", got.Method, got.Path, got.Host)
			}
			for _, h := range []string{"Origin", "Referer", proto.HeaderRequestID, "Content-Type"} {
				if v := got.Header.Get(h); v != "" {
					t.Errorf("unexpected header %s: %q", h, v)
				}
			}
			if !strings.Contains(got.Header.Get("Accept"), proto.MediaTypeProblem) {
				t.Errorf("Accept = %q, want it to include %s", got.Header.Get("Accept"), proto.MediaTypeProblem)
			}
		})
	}
}

func TestSocketFieldOverridesEnv(t *testing.T) {
	a := startAgent(t, healthOK(t))
	t.Setenv(proto.EnvSocket, "unix:///nonexistent/signer-agent.sock")
	for _, socket := range []string{"unix://" + a.path, a.path} {
		c := &client.Client{Socket: socket}
		if _, err := c.Ready(context.Background()); err != nil {
			t.Errorf("Socket %q: Ready: %v", socket, err)
		}
		c.CloseIdleConnections()
	}
	if got := a.last(t).Path; got != proto.PathReadyz {
		t.Errorf("path = %q, want %q", got, proto.PathReadyz)
	}
}

func TestInvalidSocket(t *testing.T) {
	tests := []struct {
		name, value string
	}{
		{"other scheme", "tcp://127.0.0.1:1234"},
		{"unix URI with host", "unix://run/signer-agent/api.sock"},
		{"opaque unix URI", "unix:run/api.sock"},
		{"unix URI with query", "unix:///run/api.sock?x=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(proto.EnvSocket, tt.value)
			var c client.Client
			_, err := c.Health(context.Background())
			if err == nil || !strings.Contains(err.Error(), proto.EnvSocket) {
				t.Errorf("env %q: err = %v, want an error naming %s", tt.value, err, proto.EnvSocket)
			}
			c2 := &client.Client{Socket: tt.value}
			if _, err := c2.Health(context.Background()); err == nil || !strings.Contains(err.Error(), "Client.Socket") {
				t.Errorf("Socket %q: err = %v, want an error naming Client.Socket", tt.value, err)
			}
		})
	}
}

func TestDefaultSocket(t *testing.T) {
	if _, err := os.Stat(proto.DefaultSocket); err == nil {
		t.Skipf("%s exists on this host", proto.DefaultSocket)
	}
	t.Setenv(proto.EnvSocket, "")
	var c client.Client
	_, err := c.Health(context.Background())
	if err == nil || !strings.Contains(err.Error(), proto.DefaultSocket) {
		t.Errorf("err = %v, want a dial error naming %s", err, proto.DefaultSocket)
	}
}

func TestMissingSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "sa")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "missing.sock")
	c := &client.Client{Socket: "unix://" + path}
	_, err = c.Keys(context.Background())
	if err == nil {
		t.Fatal("Keys succeeded without an agent")
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("err = %q, want it to name %s", err, path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is(err, fs.ErrNotExist) = false for %v", err)
	}
	var e *client.Error
	if errors.As(err, &e) {
		t.Errorf("transport failure is an *Error: %v", e)
	}
}

const signResponseJSON = `{
  "requestId": "req-1",
  "envelope": {
    "payloadType": "application/vnd.in-toto+json",
    "payload": "eyJfdHlwZSI6InN0bXQifQ==",
    "signatures": [{"keyid": "tenant-a-2026", "sig": "AQID"}]
  },
  "bundles": [{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}],
  "signingIdentity": [{"mode": "keyful", "keyId": "tenant-a-2026", "keySource": "file",
    "algorithm": "ecdsa-p256-sha256", "publicKeyHint": "hint", "certificateChain": [],
    "bundleHash": "sha256:00"}],
  "payloadDigest": "sha256:11",
  "bundleHash": "sha256:22",
  "addedInAFutureVersion": {"x": 1}
}`

func signRequest() *proto.SignRequest {
	return &proto.SignRequest{
		Subject: []proto.Subject{{
			Name:   "registry.example/app",
			Digest: map[string]string{"sha256": strings.Repeat("ab", 32)},
		}},
		PredicateType: "stella.ops/sbom@v1",
		Predicate:     json.RawMessage(`{"format":"cyclonedx-1.6","componentCount":412}`),
		Options:       &proto.SignOptions{KeyIDs: []string{"tenant-a-2026"}},
	}
}

func TestSignDSSE(t *testing.T) {
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != proto.PathSignDSSE {
			t.Errorf("got %s %s, want POST %s", r.Method, r.URL.Path, proto.PathSignDSSE)
		}
		if ct := r.Header.Get("Content-Type"); ct != proto.MediaTypeJSON {
			t.Errorf("Content-Type = %q", ct)
		}
		body, _ := io.ReadAll(r.Body)
		// The agent decodes strictly: the client must send exactly the wire form.
		if _, err := proto.DecodeSignRequest(body); err != nil {
			t.Errorf("agent cannot decode request: %v", err)
		}
		writeJSON(w, http.StatusOK, signResponseJSON)
	})
	c := newClient(a)
	defer c.CloseIdleConnections()

	resp, err := c.SignDSSE(context.Background(), signRequest())
	if err != nil {
		t.Fatalf("SignDSSE: %v", err)
	}
	if resp.RequestID != "req-1" || resp.PayloadDigest != "sha256:11" || resp.BundleHash != "sha256:22" {
		t.Errorf("response = %+v", resp)
	}
	if resp.AuditID != "" || resp.Quota != nil {
		t.Errorf("omitted fields decoded as %q, %+v", resp.AuditID, resp.Quota)
	}
	env := resp.Envelope
	if env.PayloadType != proto.PayloadTypeInToto || string(env.Payload) != `{"_type":"stmt"}` {
		t.Errorf("envelope = %s %q", env.PayloadType, env.Payload)
	}
	if len(env.Signatures) != 1 || env.Signatures[0].KeyID != "tenant-a-2026" || string(env.Signatures[0].Sig) != "\x01\x02\x03" {
		t.Errorf("signatures = %+v", env.Signatures)
	}
	if len(resp.Bundles) != 1 || len(resp.SigningIdentity) != 1 || resp.SigningIdentity[0].KeySource != "file" {
		t.Errorf("bundles/identity = %s %+v", resp.Bundles, resp.SigningIdentity)
	}
}

func TestSignDSSENilRequest(t *testing.T) {
	a := startAgent(t, nil)
	if _, err := newClient(a).SignDSSE(context.Background(), nil); err == nil {
		t.Fatal("SignDSSE(nil) succeeded")
	}
	if n := a.count(); n != 0 {
		t.Errorf("agent received %d requests", n)
	}
}

func TestKeys(t *testing.T) {
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != proto.PathKeys {
			t.Errorf("got %s %s", r.Method, r.URL.Path)
		}
		writeJSON(w, http.StatusOK, `{"keys":[{"id":"k1","algorithm":"ed25519","publicKey":"PEM",
			"source":"file","status":"active","notAfter":"2027-01-02T03:04:05Z","tenants":["a"],"default":true,"newField":true}]}`)
	})
	keys, err := newClient(a).Keys(context.Background())
	if err != nil {
		t.Fatalf("Keys: %v", err)
	}
	if len(keys.Keys) != 1 {
		t.Fatalf("keys = %+v", keys)
	}
	k := keys.Keys[0]
	if k.ID != "k1" || k.Status != proto.KeyStatusActive || !k.Default || k.NotAfter == nil || k.NotAfter.Year() != 2027 {
		t.Errorf("key = %+v", k)
	}
}

func TestProblemBecomesError(t *testing.T) {
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, proto.CodePredicateNotAllowed, "stella.ops/vex@v1 not allowed for tenant", "req-42")
	})
	_, err := newClient(a).SignDSSE(context.Background(), signRequest())
	if !errors.Is(err, client.ErrPredicateNotAllowed) {
		t.Errorf("errors.Is(err, ErrPredicateNotAllowed) = false for %v", err)
	}
	if errors.Is(err, client.ErrInvalidRequest) {
		t.Errorf("errors.Is(err, ErrInvalidRequest) = true for %v (same status, other code)", err)
	}
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("err %T is not *client.Error", err)
	}
	want := client.Error{
		Status:    http.StatusBadRequest,
		Code:      proto.CodePredicateNotAllowed,
		Title:     proto.CodePredicateNotAllowed.Title(),
		Detail:    "stella.ops/vex@v1 not allowed for tenant",
		RequestID: "req-42",
	}
	if e.Status != want.Status || e.Code != want.Code || e.Title != want.Title || e.Detail != want.Detail ||
		e.RequestID != want.RequestID || e.RetryAfter != 0 {
		t.Errorf("error = %+v, want %+v", e, want)
	}
	for _, s := range []string{"predicate_not_allowed", "400", "not allowed for tenant", "req-42"} {
		if !strings.Contains(e.Error(), s) {
			t.Errorf("Error() = %q, want it to contain %q", e.Error(), s)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name     string
		code     proto.Code
		header   string
		sentinel *client.Error
		want     time.Duration
	}{
		{"throttled", proto.CodePlanThrottled, "7", client.ErrPlanThrottled, 7 * time.Second},
		{"quota", proto.CodeQuotaExhausted, "3600", client.ErrQuotaExhausted, time.Hour},
		{"backend", proto.CodeSigningBackendUnavailable, "1", client.ErrSigningBackendUnavailable, time.Second},
		{"absent", proto.CodeAuditUnavailable, "", client.ErrAuditUnavailable, 0},
		{"garbage", proto.CodePlanThrottled, "soon", client.ErrPlanThrottled, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.header != "" {
					w.Header().Set(proto.HeaderRetryAfter, tt.header)
				}
				writeProblem(w, tt.code, "", "")
			})
			// Without an Idempotency-Key nothing is retried, so the
			// first answer's Retry-After comes back (retry_test.go
			// covers the retries).
			c := newClient(a)
			c.DisableIdempotencyKeys = true
			_, err := c.SignDSSE(context.Background(), signRequest())
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *client.Error", err)
			}
			if n := a.count(); n != 1 {
				t.Errorf("agent received %d requests, want 1", n)
			}
			if e.RetryAfter != tt.want {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.want)
			}
			if !errors.Is(err, tt.sentinel) {
				t.Errorf("errors.Is(err, %v) = false", tt.sentinel)
			}
		})
	}
}

func TestNonProblemErrors(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantDetail  []string
	}{
		{"html 502", http.StatusBadGateway, "text/html", "<html>bad gateway</html>", []string{"not a problem document", "text/html"}},
		{"text 503", http.StatusServiceUnavailable, "text/plain; charset=utf-8", "upstream down\nmore", []string{"text/plain", "upstream down"}},
		{"no content type", http.StatusInternalServerError, "", "", []string{"no content type"}},
		{"json, not problem", http.StatusBadGateway, "application/json", `{"error":"x"}`, []string{"application/json"}},
		{"malformed problem", http.StatusBadGateway, proto.MediaTypeProblem, `{"title":`, []string{"malformed problem document"}},
		{"problem without code", http.StatusBadRequest, proto.MediaTypeProblem, `{"title":"x","status":400}`, []string{"missing code"}},
		{"redirect not followed", http.StatusTemporaryRedirect, "", "", []string{"not a problem document"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
				if tt.status == http.StatusTemporaryRedirect {
					w.Header().Set("Location", "http://signer-agent/elsewhere")
				}
				w.Header()["Content-Type"] = nil // no sniffing
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			_, err := newClient(a).Keys(context.Background())
			var e *client.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *client.Error", err)
			}
			if e.Status != tt.status || e.Code != "" {
				t.Errorf("Status, Code = %d, %q; want %d, \"\"", e.Status, e.Code, tt.status)
			}
			for _, s := range tt.wantDetail {
				if !strings.Contains(e.Detail, s) {
					t.Errorf("Detail = %q, want it to contain %q", e.Detail, s)
				}
			}
			if !strings.Contains(e.Error(), fmt.Sprint(tt.status)) {
				t.Errorf("Error() = %q lacks the status", e.Error())
			}
			for _, s := range sentinels {
				if errors.Is(err, s) {
					t.Errorf("errors.Is(err, %v) = true", s)
				}
			}
			if n := a.count(); n != 1 {
				t.Errorf("agent received %d requests, want 1", n)
			}
		})
	}
}

func TestSuccessWithWrongContentType(t *testing.T) {
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html></html>")
	})
	_, err := newClient(a).Keys(context.Background())
	if err == nil || !strings.Contains(err.Error(), "text/html") {
		t.Errorf("err = %v, want a content type error", err)
	}
}

func TestAuthorizeHook(t *testing.T) {
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, signResponseJSON)
	})
	var calls int
	c := newClient(a)
	c.Authorize = func(req *http.Request) error {
		calls++
		if got, want := req.URL.String(), "http://signer-agent"+proto.PathSignDSSE; got != want {
			t.Errorf("htu = %q, want %q", got, want)
		}
		if req.Method != http.MethodPost {
			t.Errorf("htm = %q", req.Method)
		}
		if req.GetBody == nil {
			t.Error("GetBody is nil; the body cannot be replayed")
		}
		req.Header.Set(proto.HeaderAuthorization, "DPoP optok")
		req.Header.Set(proto.HeaderDPoP, "proof")
		req.Header.Set("Origin", "https://evil.example") // must be stripped
		req.Host = "evil.example"                        // must be reset
		return nil
	}
	if _, err := c.SignDSSE(context.Background(), signRequest()); err != nil {
		t.Fatalf("SignDSSE: %v", err)
	}
	if calls != 1 {
		t.Errorf("Authorize called %d times, want 1", calls)
	}
	got := a.last(t)
	if got.Header.Get(proto.HeaderAuthorization) != "DPoP optok" || got.Header.Get(proto.HeaderDPoP) != "proof" {
		t.Errorf("credentials not sent: %v", got.Header)
	}

	hookErr := errors.New("no token")
	c2 := newClient(a)
	c2.Authorize = func(*http.Request) error { return hookErr }
	n := a.count()
	if _, err := c2.SignDSSE(context.Background(), signRequest()); !errors.Is(err, hookErr) {
		t.Errorf("err = %v, want it to wrap the hook's error", err)
	}
	if a.count() != n {
		t.Error("request sent although Authorize failed")
	}
}

func TestRequestID(t *testing.T) {
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(proto.HeaderRequestID, r.Header.Get(proto.HeaderRequestID))
		writeProblem(w, proto.CodeInvalidToken, "expired", "") // no requestId in the body
	})
	ctx := client.WithRequestID(context.Background(), "scan-7f3a")
	_, err := newClient(a).SignDSSE(ctx, signRequest())
	if got := a.last(t).Header.Get(proto.HeaderRequestID); got != "scan-7f3a" {
		t.Errorf("X-Request-Id sent = %q", got)
	}
	var e *client.Error
	if !errors.As(err, &e) || e.RequestID != "scan-7f3a" || !errors.Is(err, client.ErrInvalidToken) {
		t.Errorf("err = %v, want invalid_token with request id scan-7f3a", err)
	}
}

func TestReadyNotReady(t *testing.T) {
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(proto.HeaderRetryAfter, "2")
		writeJSON(w, http.StatusServiceUnavailable, `{"status":"unavailable","checks":{"keys":"locked","trust":"ok","audit":"failing"}}`)
	})
	h, err := newClient(a).Ready(context.Background())
	if h == nil || h.Status != "unavailable" || h.Checks["keys"] != "locked" {
		t.Errorf("Health = %+v", h)
	}
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *client.Error", err)
	}
	if e.Status != http.StatusServiceUnavailable || e.Code != "" || e.RetryAfter != 2*time.Second {
		t.Errorf("error = %+v", e)
	}
	if !strings.Contains(e.Detail, "audit=failing, keys=locked") || strings.Contains(e.Detail, "trust") {
		t.Errorf("Detail = %q, want the failing checks only", e.Detail)
	}
}

func TestReadyProblem(t *testing.T) {
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, proto.CodePeerNotAllowed, "", "")
	})
	h, err := newClient(a).Ready(context.Background())
	if h != nil || !errors.Is(err, client.ErrPeerNotAllowed) {
		t.Errorf("Ready = %v, %v; want nil, peer_not_allowed", h, err)
	}
}

func TestTimeout(t *testing.T) {
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	c := newClient(a)
	c.Timeout = 50 * time.Millisecond
	start := time.Now()
	_, err := c.Keys(context.Background())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("call took %v", d)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newClient(a).Keys(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestDialOverride(t *testing.T) {
	a := startAgent(t, healthOK(t))
	var mu sync.Mutex
	dials := 0
	c := &client.Client{
		Socket: "unix:///nonexistent.sock", // ignored when Dial is set
		Dial: func(ctx context.Context) (net.Conn, error) {
			mu.Lock()
			dials++
			mu.Unlock()
			var d net.Dialer
			return d.DialContext(ctx, "unix", a.path)
		},
	}
	defer c.CloseIdleConnections()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Health(context.Background()); err != nil {
				t.Errorf("Health: %v", err)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if dials == 0 {
		t.Error("Dial was not used")
	}

	failing := &client.Client{Dial: func(context.Context) (net.Conn, error) { return nil, errors.New("boom") }}
	if _, err := failing.Health(context.Background()); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("err = %v, want the dialer's error", err)
	}
}

// sentinels lists every sentinel; TestSentinels checks it covers proto.Codes.
var sentinels = []*client.Error{
	client.ErrInvalidRequest, client.ErrPredicateNotAllowed, client.ErrNotFound,
	client.ErrMethodNotAllowed, client.ErrPayloadTooLarge, client.ErrInvalidToken,
	client.ErrInvalidDPoPProof, client.ErrUseDPoPNonce, client.ErrPeerNotAllowed,
	client.ErrInsufficientScope, client.ErrTenantMismatch, client.ErrEntitlementDenied,
	client.ErrReleaseUntrusted, client.ErrKeyUnavailable, client.ErrArtifactTooLarge,
	client.ErrPlanThrottled, client.ErrQuotaExhausted, client.ErrEntitlementUnavailable,
	client.ErrSigningBackendUnavailable, client.ErrAuditUnavailable, client.ErrInternalError,
	client.ErrIdempotencyKeyReused, client.ErrAgentBusy, client.ErrQuotaUnavailable,
}

func TestSentinels(t *testing.T) {
	byCode := map[proto.Code]*client.Error{}
	for _, s := range sentinels {
		if byCode[s.Code] != nil {
			t.Errorf("two sentinels for %s", s.Code)
		}
		byCode[s.Code] = s
	}
	codes := proto.Codes()
	if len(byCode) != len(codes) {
		t.Errorf("%d sentinels for %d codes", len(byCode), len(codes))
	}
	for _, code := range codes {
		if byCode[code] == nil {
			t.Errorf("no sentinel for %s", code)
		}
	}
	for _, code := range codes {
		err := fmt.Errorf("wrapped: %w", &client.Error{Status: code.Status(), Code: code, Detail: "d"})
		for _, s := range sentinels {
			if got, want := errors.Is(err, s), s.Code == code; got != want {
				t.Errorf("errors.Is(%s error, %s sentinel) = %v", code, s.Code, got)
			}
		}
	}
	// A full *Error as target is compared by identity, not by code.
	e := &client.Error{Status: 403, Code: proto.CodePeerNotAllowed}
	if errors.Is(&client.Error{Status: 403, Code: proto.CodePeerNotAllowed}, e) {
		t.Error("errors.Is matched a non-sentinel *Error by code")
	}
	if got := client.ErrPeerNotAllowed.Error(); got != "signer-agent: peer_not_allowed" {
		t.Errorf("sentinel Error() = %q", got)
	}
}
