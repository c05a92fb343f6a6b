package fault

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/proto"
)

// licensing is a licensing service's introspection endpoint on
// 127.0.0.1 that can fail (503) or go away (its listener closed).
type licensing struct {
	t       *testing.T
	addr    string
	failing atomic.Bool
	calls   atomic.Int64

	mu  sync.Mutex
	srv *http.Server
	wg  sync.WaitGroup
}

func startLicensing(t *testing.T) *licensing {
	t.Helper()
	s := &licensing{t: t}
	s.up()
	t.Cleanup(s.down)
	return s
}

// ServeHTTP answers POST /license/introspect: PoEs starting "revoked"
// are inactive, others active for the dev tenant and plan.
func (s *licensing) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls.Add(1)
	if r.Method != http.MethodPost || r.URL.Path != "/license/introspect" {
		http.NotFound(w, r)
		return
	}
	if s.failing.Load() {
		http.Error(w, "licensing overloaded", http.StatusServiceUnavailable)
		return
	}
	var in struct {
		PoE string `json:"poe"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	out := map[string]any{"active": true, "tid": devauth.Tenant, "inst": devauth.Installation, "plan": devauth.Plan,
		"exp": time.Now().Add(time.Hour).Unix()}
	if strings.HasPrefix(in.PoE, "revoked") {
		out = map[string]any{"active": false, "tid": devauth.Tenant, "inst": devauth.Installation, "reason": "revoked by the test"}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// up serves (again, on the same address).
func (s *licensing) up() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("licensing listen %s: %v", addr, err)
	}
	s.addr = ln.Addr().String()
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.srv.Serve(ln)
	}()
}

// down closes the listener and every connection: licensing is gone.
func (s *licensing) down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	s.wg.Wait()
}

// TestLicensingOutage: PoEs checked by online introspection (opaque
// PoEs) while licensing fails and then disappears. Within the grace
// period the last positive verdict signs (audited as grace); a PoE never
// seen is entitlement_unavailable; after grace every PoE is; a negative
// verdict stays negative through the outage; licensing back, everything
// signs again. Offline JWT PoEs sign throughout.
func TestLicensingOutage(t *testing.T) {
	lic := startLicensing(t)
	const grace = 8 * time.Second
	p := newAgent(t, procOptions{edit: func(c *config.Config) {
		c.Entitlement.IntrospectionURL = "http://" + lic.addr
		c.Entitlement.CacheTTL = time.Second
		c.Entitlement.Grace = grace
		c.Entitlement.Timeout = 500 * time.Millisecond
		c.Entitlement.Retries = 1
	}})
	l := newLedger(t, p)
	ld := startLoad(t, p, l, 1) // offline JWT PoEs
	defer ld.halt()
	c := p.client()
	defer c.CloseIdleConnections()
	ctx := context.Background()
	sign := func(poe string) error {
		req := signRequest(int(l.seq.Load()))
		req.PoE = &proto.PoE{Format: "opaque", Value: poe}
		_, err := l.sign(ctx, c, req)
		return err
	}
	must := func(what string, err, want error) {
		t.Helper()
		if (want == nil) != (err == nil) || (want != nil && !errors.Is(err, want)) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
	}

	must("licensing up", sign("poe-A"), nil)
	must("revoked PoE", sign("revoked-R"), client.ErrEntitlementDenied)

	// Licensing fails: after the cache TTL the last positive verdict
	// serves (grace); a PoE never seen cannot be checked.
	lic.failing.Store(true)
	time.Sleep(1200 * time.Millisecond)
	must("failing, cached PoE in grace", sign("poe-A"), nil)
	must("failing, new PoE", sign("poe-B"), client.ErrEntitlementUnavailable)
	must("failing, revoked PoE", sign("revoked-R"), client.ErrEntitlementDenied)

	// Licensing gone (connection refused): the same.
	lic.down()
	must("down, cached PoE in grace", sign("poe-A"), nil)
	must("down, new PoE", sign("poe-B"), client.ErrEntitlementUnavailable)
	must("down, revoked PoE", sign("revoked-R"), client.ErrEntitlementDenied)
	time.Sleep(loadFor(t, 0, 2))

	// Grace ends.
	waitFor(t, 2*grace+30*time.Second, "grace to end", func() bool {
		return errors.Is(sign("poe-A"), client.ErrEntitlementUnavailable)
	})

	// Licensing back.
	lic.failing.Store(false)
	lic.up()
	waitFor(t, 30*time.Second, "licensing back", func() bool { return sign("poe-A") == nil })
	must("back, new PoE", sign("poe-B"), nil)
	must("back, revoked PoE", sign("revoked-R"), client.ErrEntitlementDenied)
	time.Sleep(loadFor(t, 0, 2))
	ld.halt()
	if lic.calls.Load() == 0 {
		t.Fatal("licensing was never asked")
	}

	finish(t, p, l, checkOpts{})
	states := map[string]int{}
	err := audit.Query(p.auditDir, audit.Filter{}, func(r audit.Record) error {
		if strings.HasPrefix(r.RequestID, l.prefix) && r.PoEState != "" {
			states[r.Decision+"/"+r.PoEState+"/"+r.Code]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("PoE states in the audit log: %v", states)
	if states["allow/grace/"] < 2 || states["allow/valid/"] < 2 {
		t.Fatalf("want signatures audited as valid and as grace: %v", states)
	}
}
