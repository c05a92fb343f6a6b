package entitlement

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stellaops/signer-agent/internal/clocktest"
	"github.com/stellaops/signer-agent/proto"
)

// newClock is the tests' fake clock at 2026-11-28 12:00 UTC.
func newClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
}

// licensing is a test licensing service with switches.
type licensing struct {
	srv     *httptest.Server
	mode    atomic.Value // "up", "down", "slow", "5xx", "revoked", "wrong-tenant"
	calls   atomic.Int32
	clock   *clocktest.Clock
	release chan struct{} // when set, requests wait for it (single-flight test)
}

func newLicensing(t *testing.T, c *clocktest.Clock) *licensing {
	l := &licensing{clock: c}
	l.mode.Store("up")
	l.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.calls.Add(1)
		if r.URL.Path != "/license/introspect" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		if l.release != nil {
			<-l.release
		}
		var in struct{ PoE string }
		_ = json.NewDecoder(r.Body).Decode(&in)
		exp := c.Now().Add(24 * time.Hour).Unix()
		switch l.mode.Load().(string) {
		case "down":
			hj, _ := w.(http.Hijacker)
			conn, _, _ := hj.Hijack()
			conn.Close()
		case "slow":
			time.Sleep(300 * time.Millisecond)
		case "5xx":
			http.Error(w, "boom", http.StatusBadGateway)
		case "revoked":
			json.NewEncoder(w).Encode(map[string]any{"active": false, "tid": "tenant-a", "reason": "license revoked"})
		case "wrong-tenant":
			json.NewEncoder(w).Encode(map[string]any{"active": true, "tid": "tenant-b", "inst": "node-1", "plan": "team", "exp": exp})
		default:
			json.NewEncoder(w).Encode(map[string]any{"active": true, "tid": "tenant-a", "inst": "node-1", "plan": "team", "exp": exp})
		}
	}))
	t.Cleanup(l.srv.Close)
	return l
}

func online(t *testing.T) (*Checker, *licensing, *clocktest.Clock) {
	c := newClock()
	l := newLicensing(t, c)
	ch, err := New(Config{IntrospectionURL: l.srv.URL, Timeout: 100 * time.Millisecond, Retries: 1, Backoff: time.Millisecond,
		CacheTTL: 5 * time.Minute, Grace: time.Hour, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return ch, l, c
}

var opaque = &proto.PoE{Format: "opaque", Value: "license-token-123"}

func check(ch *Checker) (Verdict, error) {
	return ch.Check(context.Background(), opaque, "tenant-a", "node-1")
}

func wantState(t *testing.T, v Verdict, err error, state string, code proto.Code) {
	t.Helper()
	if v.State != state {
		t.Fatalf("state %q (%s), want %q (err %v)", v.State, v.Reason, state, err)
	}
	var e *Error
	switch {
	case code == "" && err != nil:
		t.Fatalf("unexpected error %v", err)
	case code != "" && (!errors.As(err, &e) || e.Code() != code):
		t.Fatalf("error %v, want code %s", err, code)
	}
	if v.PoEHash == "" {
		t.Fatal("no PoE hash")
	}
}

func TestOnlineCacheTTLGrace(t *testing.T) {
	ch, l, c := online(t)
	v, err := check(ch)
	wantState(t, v, err, StateValid, "")
	if v.Plan != "team" || v.Tenant != "tenant-a" {
		t.Fatalf("verdict %+v", v)
	}
	v, err = check(ch)
	wantState(t, v, err, StateCached, "")
	if n := ch.Upstream(); n != 1 {
		t.Fatalf("%d upstream calls, want 1 (cache)", n)
	}
	c.Advance(6 * time.Minute) // TTL over: refetch
	v, err = check(ch)
	wantState(t, v, err, StateValid, "")
	if n := ch.Upstream(); n != 2 {
		t.Fatalf("%d upstream calls after TTL, want 2", n)
	}
	for _, mode := range []string{"down", "5xx", "slow"} {
		l.mode.Store(mode)
		c.Advance(6 * time.Minute)
		v, err = check(ch)
		wantState(t, v, err, StateGrace, "") // within the hour of grace
	}
	c.Advance(time.Hour) // grace over
	v, err = check(ch)
	wantState(t, v, err, StateUnavailable, proto.CodeEntitlementUnavailable)
	l.mode.Store("up")
	v, err = check(ch)
	wantState(t, v, err, StateValid, "")
}

func TestRevokedNeverServedFromCache(t *testing.T) {
	ch, l, c := online(t)
	v, err := check(ch)
	wantState(t, v, err, StateValid, "")
	l.mode.Store("revoked")
	c.Advance(6 * time.Minute)
	v, err = check(ch)
	wantState(t, v, err, StateDenied, proto.CodeEntitlementDenied)
	// Licensing goes down: the negative verdict stays, no grace.
	l.mode.Store("down")
	c.Advance(time.Minute)
	v, err = check(ch)
	wantState(t, v, err, StateDenied, proto.CodeEntitlementDenied)
}

func TestOutageWithoutVerdictAndWrongTenant(t *testing.T) {
	ch, l, _ := online(t)
	l.mode.Store("5xx")
	v, err := check(ch)
	wantState(t, v, err, StateUnavailable, proto.CodeEntitlementUnavailable)
	if n := ch.Upstream(); n != 2 {
		t.Fatalf("%d attempts, want 1 + 1 retry", n)
	}
	l.mode.Store("wrong-tenant")
	v, err = check(ch)
	wantState(t, v, err, StateDenied, proto.CodeEntitlementDenied)
}

func TestSingleFlight(t *testing.T) {
	ch, l, _ := online(t)
	l.release = make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := check(ch)
			errs <- err
		}()
	}
	// Let the callers pile up on the one in-flight call, then answer it.
	for l.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(l.release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Callers that arrived after the answer was cached made no call either.
	if n := l.calls.Load(); n != 1 {
		t.Fatalf("%d upstream calls for 50 concurrent misses", n)
	}
}

func TestBypass(t *testing.T) {
	ch, l, c := online(t)
	l.mode.Store("down")
	ch.SetBypass(&Bypass{Reason: "licensing outage INC-42", Until: c.Now().Add(30 * time.Minute), SetAt: c.Now()})
	v, err := check(ch)
	wantState(t, v, err, StateBypass, "")
	if v.BypassReason != "licensing outage INC-42" {
		t.Fatal(v)
	}
	c.Advance(31 * time.Minute)
	v, err = check(ch)
	wantState(t, v, err, StateUnavailable, proto.CodeEntitlementUnavailable)
}

// Offline PoEs: a JWT signed by the licensing key.
func TestOfflinePoE(t *testing.T) {
	c := newClock()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ch, err := New(Config{LicensingKeys: []crypto.PublicKey{key.Public()}, Issuer: "https://licensing.example", Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	mint := func(k *ecdsa.PrivateKey, mutate func(map[string]any)) *proto.PoE {
		cl := map[string]any{
			"iss": "https://licensing.example", "sub": "node-1", "tid": "tenant-a", "plan": "team",
			"iat": c.Now().Unix(), "exp": c.Now().Add(30 * 24 * time.Hour).Unix(), "jti": "poe-1",
			"versionWindow": map[string]string{"earliest": "1.2.0", "latest": "1.9.9"},
			"quotas":        map[string]any{"artifactsPerDay": 500},
		}
		if mutate != nil {
			mutate(cl)
		}
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, nil)
		raw, _ := jwt.Signed(s).Claims(cl).Serialize()
		return &proto.PoE{Format: "jwt", Value: raw}
	}
	v, err := ch.Check(context.Background(), mint(key, nil), "tenant-a", "node-1")
	wantState(t, v, err, StateValid, "")
	if v.VersionWindow == nil || v.VersionWindow.Earliest != "1.2.0" || v.Quotas == nil || *v.Quotas.ArtifactsPerDay != 500 {
		t.Fatalf("claims: %+v", v)
	}
	// The verified PoE is cached, but its expiry still applies.
	valid := mint(key, nil)
	if _, err := ch.Check(context.Background(), valid, "tenant-a", "node-1"); err != nil {
		t.Fatal(err)
	}
	c.Advance(31 * 24 * time.Hour)
	if _, err := ch.Check(context.Background(), valid, "tenant-a", "node-1"); err == nil {
		t.Fatal("expired PoE served from the cache")
	}
	c.Advance(-31 * 24 * time.Hour)
	cases := []struct {
		name         string
		poe          *proto.PoE
		tenant, inst string
	}{
		{"bad signature", mint(other, nil), "tenant-a", "node-1"},
		{"expired", mint(key, func(m map[string]any) { m["exp"] = c.Now().Add(-time.Hour).Unix() }), "tenant-a", "node-1"},
		{"wrong tenant", mint(key, nil), "tenant-b", "node-1"},
		{"wrong installation", mint(key, nil), "tenant-a", "node-2"},
		{"wrong issuer", mint(key, func(m map[string]any) { m["iss"] = "https://evil.example" }), "tenant-a", "node-1"},
		{"no plan", mint(key, func(m map[string]any) { delete(m, "plan") }), "tenant-a", "node-1"},
		{"not a JWT", &proto.PoE{Format: "jwt", Value: "garbage"}, "tenant-a", "node-1"},
		{"opaque without licensing", &proto.PoE{Format: "opaque", Value: "x"}, "tenant-a", "node-1"},
		{"missing", nil, "tenant-a", "node-1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := ch.Check(context.Background(), tc.poe, tc.tenant, tc.inst)
			var e *Error
			if !errors.As(err, &e) || e.Code() != proto.CodeEntitlementDenied || v.State != StateDenied || v.Reason == "" {
				t.Fatalf("got %+v %v", v, err)
			}
		})
	}
}
