package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// script answers the i-th request with steps[i] (the last step repeats).
func script(t *testing.T, steps ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := min(n, len(steps)-1)
		n++
		mu.Unlock()
		steps[i](w, r)
	}
}

func problem(code proto.Code, retryAfter string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set(proto.HeaderRetryAfter, retryAfter)
		}
		writeProblem(w, code, "", "")
	}
}

func signed(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, signResponseJSON) }

// hangUp closes the connection without an answer, as an agent killed
// between its audit commit and its response does.
func hangUp(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		conn.Close()
	}
}

// cutShort promises a body and closes the connection half way through it.
func cutShort(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		body := signResponseJSON[:len(signResponseJSON)/2]
		io.WriteString(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"+body)
		buf.Flush()
		conn.Close()
	}
}

func (a *fakeAgent) all() []recorded {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]recorded(nil), a.reqs...)
}

// sameKey checks that every request carried one valid Idempotency-Key and
// the same body, and returns the key.
func sameKey(t *testing.T, reqs []recorded) string {
	t.Helper()
	key := reqs[0].Header.Get(proto.HeaderIdempotencyKey)
	if err := proto.ValidateIdempotencyKey(key); err != nil {
		t.Fatalf("first request's Idempotency-Key: %v", err)
	}
	for i, r := range reqs {
		if got := r.Header.Values(proto.HeaderIdempotencyKey); len(got) != 1 || got[0] != key {
			t.Errorf("request %d: Idempotency-Key %q, want %q", i, got, key)
		}
		if string(r.Body) != string(reqs[0].Body) {
			t.Errorf("request %d: body differs", i)
		}
	}
	return key
}

func TestRetries(t *testing.T) {
	tests := []struct {
		name  string
		steps []http.HandlerFunc
		want  int // requests the agent receives
	}{
		{"429 plan_throttled with Retry-After", []http.HandlerFunc{problem(proto.CodePlanThrottled, "1"), signed}, 2},
		{"503 agent_busy twice", []http.HandlerFunc{problem(proto.CodeAgentBusy, ""), problem(proto.CodeAgentBusy, ""), signed}, 3},
		{"503 signing_backend_unavailable", []http.HandlerFunc{problem(proto.CodeSigningBackendUnavailable, ""), signed}, 2},
		{"503 audit_unavailable", []http.HandlerFunc{problem(proto.CodeAuditUnavailable, ""), signed}, 2},
		{"503 not a problem document", []http.HandlerFunc{func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
		}, signed}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startDPoPAgent(t, &dpopAgent{require: true, nonce: "n1", then: script(t, tt.steps...)})
			c := newDPoPClient(a.fakeAgent, testKeys(t)[0].key)
			defer c.CloseIdleConnections()
			resp, err := c.SignDSSE(context.Background(), signRequest())
			if err != nil {
				t.Fatalf("SignDSSE: %v", err)
			}
			if resp.RequestID != "req-1" {
				t.Errorf("response %+v", resp)
			}
			// The first request learns the nonce (one use_dpop_nonce
			// round trip, not an attempt); the scripted answers follow.
			reqs := a.all()[1:]
			if len(reqs) != tt.want {
				t.Fatalf("agent received %d sign attempts, want %d", len(reqs), tt.want)
			}
			sameKey(t, reqs)
			proofs := a.verified()[1:]
			seen := map[string]bool{}
			for i, p := range proofs {
				if seen[p.JTI] {
					t.Errorf("attempt %d reused a DPoP proof", i)
				}
				seen[p.JTI] = true
				if p.Nonce != "n1" {
					t.Errorf("attempt %d: nonce %q", i, p.Nonce)
				}
			}
		})
	}
}

// TestRetryHonoursRetryAfter: the retry of a 429 does not come before
// the agent's Retry-After (a lower bound on the order of events, which a
// slow machine cannot break).
func TestRetryHonoursRetryAfter(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	a := startAgent(t, script(t, func(w http.ResponseWriter, r *http.Request) {
		problem(proto.CodePlanThrottled, "1")(w, r)
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
	}, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		signed(w, r)
	}))
	if _, err := newClient(a).SignDSSE(context.Background(), signRequest()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(times) != 2 {
		t.Fatalf("%d requests", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < time.Second {
		t.Errorf("retried %v after a 429 with Retry-After: 1", gap)
	}
}

func TestRetryTransportFailures(t *testing.T) {
	for name, fail := range map[string]http.HandlerFunc{
		"connection closed before the answer": hangUp(t),
		"answer cut short":                    cutShort(t),
	} {
		t.Run(name, func(t *testing.T) {
			a := startAgent(t, script(t, fail, signed))
			c := newClient(a)
			defer c.CloseIdleConnections()
			if _, err := c.SignDSSE(context.Background(), signRequest()); err != nil {
				t.Fatalf("SignDSSE: %v", err)
			}
			reqs := a.all()
			if len(reqs) != 2 {
				t.Fatalf("agent received %d requests, want 2", len(reqs))
			}
			sameKey(t, reqs)
		})
	}
}

func TestNoRetryWithoutKey(t *testing.T) {
	for name, fail := range map[string]http.HandlerFunc{
		"503":              problem(proto.CodeAgentBusy, ""),
		"429":              problem(proto.CodePlanThrottled, "1"),
		"transport":        hangUp(t),
		"cut short answer": cutShort(t),
	} {
		t.Run(name, func(t *testing.T) {
			a := startAgent(t, script(t, fail, signed))
			c := newClient(a)
			c.DisableIdempotencyKeys = true
			if _, err := c.SignDSSE(context.Background(), signRequest()); err == nil {
				t.Fatal("SignDSSE succeeded")
			}
			reqs := a.all()
			if len(reqs) != 1 {
				t.Fatalf("agent received %d requests, want 1", len(reqs))
			}
			if v := reqs[0].Header.Values(proto.HeaderIdempotencyKey); v != nil {
				t.Errorf("Idempotency-Key sent: %q", v)
			}
		})
	}
	// Calls that take no key (keys, health, referrers) are not retried.
	a := startAgent(t, problem(proto.CodeAgentBusy, ""))
	if _, err := newClient(a).Keys(context.Background()); !errors.Is(err, client.ErrAgentBusy) {
		t.Fatalf("Keys: %v", err)
	}
	if _, err := newClient(a).Referrers(context.Background(), "sha256:"+strings.Repeat("ab", 32)); !errors.Is(err, client.ErrAgentBusy) {
		t.Fatalf("Referrers: %v", err)
	}
	for i, r := range a.all() {
		if r.Header.Get(proto.HeaderIdempotencyKey) != "" {
			t.Errorf("request %d (%s) carries an Idempotency-Key", i, r.Path)
		}
	}
	if n := a.count(); n != 2 {
		t.Errorf("agent received %d requests, want 2", n)
	}
}

func TestRetryAttemptLimit(t *testing.T) {
	for _, tt := range []struct {
		max, want int
	}{{0, client.DefaultMaxAttempts}, {1, 1}, {-1, 1}, {5, 5}} {
		a := startAgent(t, problem(proto.CodeAgentBusy, ""))
		c := newClient(a)
		c.MaxAttempts = tt.max
		_, err := c.SignDSSE(context.Background(), signRequest())
		var e *client.Error
		if !errors.Is(err, client.ErrAgentBusy) || !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable {
			t.Errorf("MaxAttempts %d: err = %v, want the last agent_busy", tt.max, err)
		}
		if n := a.count(); n != tt.want {
			t.Errorf("MaxAttempts %d: %d attempts, want %d", tt.max, n, tt.want)
		}
		sameKey(t, a.all())
	}
}

func TestRetryRespectsContext(t *testing.T) {
	t.Run("Retry-After beyond the deadline", func(t *testing.T) {
		a := startAgent(t, script(t, problem(proto.CodePlanThrottled, "30"), signed))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c := newClient(a)
		c.MaxRetryWait = -1 // only the deadline bounds the wait
		_, err := c.SignDSSE(ctx, signRequest())
		if !errors.Is(err, client.ErrPlanThrottled) {
			t.Fatalf("err = %v, want plan_throttled at once", err)
		}
		if ctx.Err() != nil {
			t.Error("the client waited out the context instead of returning")
		}
		if n := a.count(); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})
	t.Run("Retry-After beyond MaxRetryWait", func(t *testing.T) {
		a := startAgent(t, script(t, problem(proto.CodePlanThrottled, "100"), signed))
		_, err := newClient(a).SignDSSE(context.Background(), signRequest()) // no deadline but DefaultTimeout (2 min)
		var e *client.Error
		if !errors.Is(err, client.ErrPlanThrottled) || !errors.As(err, &e) || e.RetryAfter != 100*time.Second {
			t.Fatalf("err = %v, want plan_throttled with its Retry-After at once", err)
		}
		if n := a.count(); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
		a2 := startAgent(t, script(t, problem(proto.CodeAgentBusy, "3"), signed))
		c2 := newClient(a2)
		c2.MaxRetryWait = 2 * time.Second
		if _, err := c2.SignDSSE(context.Background(), signRequest()); !errors.Is(err, client.ErrAgentBusy) || a2.count() != 1 {
			t.Errorf("MaxRetryWait 2s, Retry-After 3: err %v after %d attempts", err, a2.count())
		}
	})
	t.Run("Client.Timeout", func(t *testing.T) {
		a := startAgent(t, script(t, problem(proto.CodeAgentBusy, "30"), signed))
		c := newClient(a)
		c.Timeout = 2 * time.Second
		c.MaxRetryWait = -1
		if _, err := c.SignDSSE(context.Background(), signRequest()); !errors.Is(err, client.ErrAgentBusy) {
			t.Fatalf("err = %v", err)
		}
		if n := a.count(); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})
	t.Run("cancelled while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := startAgent(t, script(t, func(w http.ResponseWriter, r *http.Request) {
			problem(proto.CodeAgentBusy, "20")(w, r)
			http.NewResponseController(w).Flush()
			// Cancel while the client waits for Retry-After (20 s).
			time.AfterFunc(200*time.Millisecond, cancel)
		}, signed))
		c := newClient(a)
		c.MaxRetryWait = -1
		_, err := c.SignDSSE(ctx, signRequest())
		if !errors.Is(err, client.ErrAgentBusy) && !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if n := a.count(); n != 1 {
			t.Errorf("%d attempts, want 1", n)
		}
	})
}

func TestNoRetryOnOtherErrors(t *testing.T) {
	for _, code := range []proto.Code{
		proto.CodeInvalidRequest, proto.CodeInvalidToken, proto.CodeInvalidDPoPProof, proto.CodePeerNotAllowed,
		proto.CodeEntitlementDenied, proto.CodeKeyUnavailable, proto.CodeArtifactTooLarge,
		proto.CodeIdempotencyKeyReused, proto.CodePayloadTooLarge, proto.CodeInternalError,
	} {
		t.Run(string(code), func(t *testing.T) {
			a := startAgent(t, script(t, problem(code, "1"), signed))
			_, err := newClient(a).SignDSSE(context.Background(), signRequest())
			var e *client.Error
			if !errors.As(err, &e) || e.Code != code {
				t.Fatalf("err = %v, want %s", err, code)
			}
			if n := a.count(); n != 1 {
				t.Errorf("%d attempts, want 1", n)
			}
		})
	}
}

func TestIdempotencyKeys(t *testing.T) {
	a := startAgent(t, signed)
	c := newClient(a)
	for range 3 {
		if _, err := c.SignDSSE(context.Background(), signRequest()); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, r := range a.all() {
		k := r.Header.Get(proto.HeaderIdempotencyKey)
		if len(k) != 22 || seen[k] {
			t.Errorf("key %q: want a fresh 128-bit base64url key per call", k)
		}
		seen[k] = true
	}

	ctx := client.WithIdempotencyKey(context.Background(), "scan-42/sbom")
	c2 := newClient(a)
	c2.DisableIdempotencyKeys = true // an explicit key is still sent
	if _, err := c2.SignDSSE(ctx, signRequest()); err != nil {
		t.Fatal(err)
	}
	if got := a.last(t).Header.Get(proto.HeaderIdempotencyKey); got != "scan-42/sbom" {
		t.Errorf("explicit key: sent %q", got)
	}

	n := a.count()
	for _, bad := range []string{"", " x", strings.Repeat("k", 256), "a\nb", "clé"} {
		ctx := client.WithIdempotencyKey(context.Background(), bad)
		if _, err := c.SignDSSE(ctx, signRequest()); err == nil || !strings.Contains(err.Error(), "idempotency key") {
			t.Errorf("key %q: err = %v", bad, err)
		}
	}
	if a.count() != n {
		t.Error("a call with an invalid idempotency key was sent")
	}
}
