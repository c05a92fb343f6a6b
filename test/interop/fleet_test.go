package interop

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/quota"
	"github.com/stellaops/signer-agent/test/harness"
)

// sharedQuota edits the dev config: the dev plan allows perDay artifacts
// a day, counted in the shared store at addr, with the given outage mode.
func sharedQuota(addr string, perDay int64, onDown string) func(*config.Config) {
	return func(c *config.Config) {
		harness.DevPlan(c).ArtifactsPerDay = perDay
		c.Quota = config.Quota{Store: config.QuotaStoreRedis, OnStoreDown: onDown,
			Redis: config.QuotaRedis{Addr: addr, KeyPrefix: "fleet-test", Timeout: 2 * time.Second}}
		if onDown == "local" {
			c.Quota.LocalShare = 0.5
		}
	}
}

// TestFleetSharedDailyCap: two agents on one Redis sign concurrently for
// one tenant whose plan allows 40 artifacts a day; of 60 attempts exactly
// 40 are signed and 20 get quota_exhausted.
func TestFleetSharedDailyCap(t *testing.T) {
	r := harness.StartRedis(t)
	var agents []*harness.Agent
	for range 2 {
		agents = append(agents, harness.StartAgent(t, harness.Options{Edit: sharedQuota(r.Addr(), 40, "deny")}))
	}
	ctx := context.Background()
	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		signed, exhausted int
		other             []error
	)
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := agents[i%2].Client.SignDSSE(ctx, signRequestFor("f"))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				signed++
			case errors.Is(err, client.ErrQuotaExhausted):
				exhausted++
			default:
				other = append(other, err)
			}
		}()
	}
	wg.Wait()
	if signed != 40 || exhausted != 20 || len(other) != 0 {
		t.Fatalf("signed %d, quota_exhausted %d, other %v; want 40 and 20", signed, exhausted, other)
	}
	n := 0
	for _, h := range agents {
		n += len(h.Signed())
		if h, err := h.Client.Ready(ctx); err != nil || h.Checks["quota"] != "ok (shared store)" {
			t.Fatalf("readiness: %+v %v", h, err)
		}
	}
	if n != 40 {
		t.Fatalf("%d allow records, want 40", n)
	}
}

// TestFleetStoreOutage: with onStoreDown deny the agent answers
// quota_unavailable while the store is down; with local it serves the
// node's share; each switch is audited, and shared counting resumes when
// the store is back.
func TestFleetStoreOutage(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []string{"deny", "local"} {
		t.Run(mode, func(t *testing.T) {
			r := harness.StartRedis(t)
			h := harness.StartAgent(t, harness.Options{Edit: sharedQuota(r.Addr(), 1000, mode)})
			if _, err := h.Client.SignDSSE(ctx, signRequestFor("f")); err != nil {
				t.Fatal(err)
			}
			r.Stop()
			_, err := h.Client.SignDSSE(ctx, signRequestFor("f"))
			switch mode {
			case "deny":
				var ce *client.Error
				if !errors.Is(err, client.ErrQuotaUnavailable) || !errors.As(err, &ce) || ce.RetryAfter <= 0 {
					t.Fatalf("sign with the store down: %v", err)
				}
				if _, rerr := h.Client.Ready(ctx); rerr == nil {
					t.Fatal("ready while refusing every request")
				}
			case "local":
				if err != nil {
					t.Fatalf("sign from the local share: %v", err)
				}
			}
			waitNotice(t, h, string(quota.ModeShared)+" -> ")
			r.Start()
			deadline := time.Now().Add(30 * time.Second)
			for {
				if _, err := h.Client.SignDSSE(ctx, signRequestFor("f")); err == nil {
					if hr, _ := h.Client.Ready(ctx); hr != nil && hr.Checks["quota"] == "ok (shared store)" {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatal("shared counting did not resume")
				}
				time.Sleep(100 * time.Millisecond)
			}
			waitNotice(t, h, "-> "+string(quota.ModeShared))
		})
	}
}

// waitNotice waits for an audited quota mode switch whose reason contains
// s.
func waitNotice(t *testing.T, h *harness.Agent, s string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, r := range h.Audit.Records() {
			if r.Decision == audit.Notice && r.Gate == "quota" && strings.Contains(r.Reason, s) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audited quota mode switch %q", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestFleetOneRoundTripPerSign: with shared quotas, a sign request costs
// exactly one reservation round trip to the store (the release of its
// concurrency lease is queued and pipelined off the request path), and a
// plan without a shared limit costs none.
func TestFleetOneRoundTripPerSign(t *testing.T) {
	r := harness.StartRedis(t)
	h := harness.StartAgent(t, harness.Options{Edit: sharedQuota(r.Addr(), 1000, "deny")})
	ctx := context.Background()
	if _, err := h.Client.SignDSSE(ctx, signRequestFor("1")); err != nil { // scripts loaded
		t.Fatal(err)
	}
	before := scriptCalls(t, r)
	const n = 25
	for range n {
		if _, err := h.Client.SignDSSE(ctx, signRequestFor("1")); err != nil {
			t.Fatal(err)
		}
	}
	if got := scriptCalls(t, r) - before; got != n {
		t.Fatalf("%d reservation round trips for %d sign requests, want one each", got, n)
	}
}

// scriptCalls is how many times the store ran a script (EVALSHA or EVAL).
func scriptCalls(t *testing.T, r *harness.Redis) int {
	t.Helper()
	out, err := exec.Command("redis-cli", "-s", r.Sock, "INFO", "commandstats").Output()
	if err != nil {
		t.Fatalf("redis-cli: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		for _, cmd := range []string{"cmdstat_evalsha:", "cmdstat_eval:"} {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(line), cmd); ok {
				calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
				c, _ := strconv.Atoi(calls)
				n += c
			}
		}
	}
	return n
}
