package quota

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestFleetDailyExact: two agents on one store, one tenant with 40
// artifacts a day, 60 concurrent attempts: exactly 40 are admitted and
// committed, 20 get ErrExhausted, and the store counts 40.
func TestFleetDailyExact(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix(t)
	agents := []*Store{openStore(t, storeOpts(srv, prefix)), openStore(t, storeOpts(srv, prefix))}
	p := Plan{Name: "team", ArtifactsPerDay: 40, Concurrency: 100}
	var admitted, exhausted, other atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 60; i++ {
		wg.Add(1)
		go func(a *Store) {
			defer wg.Done()
			<-start
			tk, err := a.AdmitN(context.Background(), "tenant", p, 100, 1)
			switch {
			case err == nil:
				admitted.Add(1)
				tk.Commit()
			case errors.Is(err, ErrExhausted):
				exhausted.Add(1)
			default:
				other.Add(1)
				t.Errorf("admit: %v (%s)", err, a.Status().Err)
			}
		}(agents[i%2])
	}
	close(start)
	wg.Wait()
	if admitted.Load() != 40 || exhausted.Load() != 20 || other.Load() != 0 {
		t.Fatalf("admitted %d, exhausted %d, other %d; want 40, 20, 0", admitted.Load(), exhausted.Load(), other.Load())
	}
	for _, a := range agents {
		waitSettled(t, a)
		if a.Mode() != ModeShared {
			t.Fatalf("mode %s", a.Mode())
		}
	}
	if n := srv.dayCount(prefix, "tenant"); n != 40 {
		t.Fatalf("store counts %d, want 40", n)
	}
	if n := srv.leases(prefix, "tenant"); n != 0 {
		t.Fatalf("%d leases left after every ticket settled", n)
	}
}

// TestFleetRate: two agents admitting as fast as they can stay, together,
// within rate × time + burst (the store's clock decides; the slack covers
// the span between our clock readings and the server's).
func TestFleetRate(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix(t)
	agents := []*Store{openStore(t, storeOpts(srv, prefix)), openStore(t, storeOpts(srv, prefix))}
	const qps, burst = 40.0, 8
	p := Plan{Name: "rate", QPS: qps, Burst: burst}
	var admitted, throttled atomic.Int64
	var wg sync.WaitGroup
	begin := time.Now()
	stop := begin.Add(1500 * time.Millisecond)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(a *Store) {
			defer wg.Done()
			for time.Now().Before(stop) {
				tk, err := a.AdmitN(context.Background(), "tenant", p, 1, 1)
				switch {
				case err == nil:
					admitted.Add(1)
					tk.Commit()
				case errors.Is(err, ErrThrottled):
					throttled.Add(1)
					time.Sleep(2 * time.Millisecond)
				default:
					t.Errorf("admit: %v (%s)", err, a.Status().Err)
					return
				}
			}
		}(agents[g%2])
	}
	wg.Wait()
	elapsed := time.Since(begin).Seconds()
	limit := qps*elapsed + burst
	got := float64(admitted.Load())
	t.Logf("%d admitted, %d throttled in %.2fs (limit %.1f)", admitted.Load(), throttled.Load(), elapsed, limit)
	if got > limit+1 {
		t.Fatalf("%v admitted, over rate × time + burst = %.1f", got, limit)
	}
	// The limiter admits, it does not just refuse: at least the burst and
	// a quarter of the rate over the run (a loaded machine may not ask
	// often enough for more).
	if got < burst+qps*elapsed/4 || throttled.Load() == 0 {
		t.Fatalf("%v admitted, %d throttled: the bucket is not being used", got, throttled.Load())
	}
}

// events records a Store's mode changes.
type events struct {
	ch chan ModeChange
}

func newEvents() *events { return &events{ch: make(chan ModeChange, 16)} }

func (e *events) record(mc ModeChange) { e.ch <- mc }

func (e *events) next(t *testing.T, from, to Mode) ModeChange {
	t.Helper()
	select {
	case mc := <-e.ch:
		if mc.From != from || mc.To != to {
			t.Fatalf("mode change %s → %s, want %s → %s", mc.From, mc.To, from, to)
		}
		if to != ModeShared && mc.Err == nil {
			t.Fatalf("switch to %s without a cause", to)
		}
		return mc
	case <-time.After(20 * time.Second):
		t.Fatalf("no mode change %s → %s", from, to)
	}
	return ModeChange{}
}

func (e *events) none(t *testing.T) {
	t.Helper()
	select {
	case mc := <-e.ch:
		t.Fatalf("unexpected mode change %+v", mc)
	default:
	}
}

// TestOutageLocalShare: the store dies mid-run; the agent serves its local
// share (half the plan, less what it signed today), reports the switch
// once, and when the store is back resumes shared counting with the
// outage's signatures added to the day.
func TestOutageLocalShare(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix(t)
	ev := newEvents()
	cfg := storeOpts(srv, prefix)
	cfg.OnStoreDown, cfg.LocalShare, cfg.OnModeChange = OnDownLocal, 0.5, ev.record
	obs := &countingObserver{}
	cfg.Observer = obs
	s := openStore(t, cfg)
	p := Plan{Name: "p", ArtifactsPerDay: 10, Concurrency: 4}
	ctx := context.Background()

	tk, err := s.AdmitN(ctx, "tenant", p, 1, 1)
	if err != nil || tk.Mode != ModeShared {
		t.Fatalf("shared admit: %v %+v", err, tk)
	}
	tk.Commit()
	waitSettled(t, s)

	srv.stop()
	// Local share: ceil(10 × 0.5) = 5 a day, of which this node has
	// signed 1 (counted on shared commits too).
	for i := 0; i < 4; i++ {
		tk, err := s.AdmitN(ctx, "tenant", p, 1, 1)
		if err != nil || tk.Mode != ModeLocalShare {
			t.Fatalf("local admit %d: %v %+v", i, err, tk)
		}
		tk.Commit()
	}
	if _, err := s.AdmitN(ctx, "tenant", p, 1, 1); !errors.Is(err, ErrExhausted) {
		t.Fatalf("past the local share: %v", err)
	}
	mc := ev.next(t, ModeShared, ModeLocalShare)
	if st := s.Status(); st.Mode != ModeLocalShare || st.Err == "" || s.Mode() != ModeLocalShare {
		t.Fatalf("status %+v", st)
	}
	ev.none(t) // one event per switch, however many requests failed
	t.Logf("down: %v", mc.Err)

	srv.start()
	up := ev.next(t, ModeLocalShare, ModeShared)
	if up.Down <= 0 || s.Mode() != ModeShared {
		t.Fatalf("back: %+v mode %s", up, s.Mode())
	}
	// The fresh server counts the 4 signed from the local share.
	if n := srv.dayCount(prefix, "tenant"); n != 4 {
		t.Fatalf("store counts %d after the outage, want 4", n)
	}
	tk, err = s.AdmitN(ctx, "tenant", p, 1, 1)
	if err != nil || tk.Mode != ModeShared || tk.Remaining != 5 {
		t.Fatalf("shared again: %v %+v", err, tk)
	}
	tk.Commit()
	if obs.modes() != "shared,local_share,shared" {
		t.Fatalf("observed modes %s", obs.modes())
	}
}

// TestOutageDeny: with onStoreDown deny the agent refuses with
// ErrUnavailable and a Retry-After, and serves again when the store is
// back.
func TestOutageDeny(t *testing.T) {
	srv := startRedis(t)
	ev := newEvents()
	cfg := storeOpts(srv, uniquePrefix(t))
	cfg.OnModeChange = ev.record
	s := openStore(t, cfg)
	p := Plan{Name: "p", ArtifactsPerDay: 10}
	ctx := context.Background()
	if tk, err := s.AdmitN(ctx, "tenant", p, 1, 1); err != nil {
		t.Fatal(err)
	} else {
		tk.Commit()
	}
	srv.stop()
	for i := 0; i < 3; i++ {
		_, err := s.AdmitN(ctx, "tenant", p, 1, 1)
		var d *Denial
		if !errors.As(err, &d) || !errors.Is(err, ErrUnavailable) || d.RetryAfter <= 0 {
			t.Fatalf("store down, deny mode: %v", err)
		}
	}
	ev.next(t, ModeShared, ModeUnavailable)
	if s.Mode() != ModeUnavailable {
		t.Fatalf("mode %s", s.Mode())
	}
	srv.start()
	ev.next(t, ModeUnavailable, ModeShared)
	if tk, err := s.AdmitN(ctx, "tenant", p, 1, 1); err != nil || tk.Mode != ModeShared {
		t.Fatalf("after recovery: %v", err)
	} else {
		tk.Commit()
	}
}

// TestSlowStore: a store that stops answering (SIGSTOP) counts as down
// after the timeout; the request is served by the outage mode instead of
// waiting on the store.
func TestSlowStore(t *testing.T) {
	srv := startRedis(t)
	ev := newEvents()
	cfg := storeOpts(srv, uniquePrefix(t))
	cfg.OnStoreDown, cfg.LocalShare, cfg.OnModeChange = OnDownLocal, 1, ev.record
	cfg.Redis.Timeout = 300 * time.Millisecond
	s := openStore(t, cfg)
	p := Plan{Name: "p", Concurrency: 2}
	srv.pause()
	tk, err := s.AdmitN(context.Background(), "tenant", p, 1, 1)
	if err != nil || tk.Mode != ModeLocalShare {
		t.Fatalf("frozen store: %v %+v", err, tk)
	}
	tk.Release()
	ev.next(t, ModeShared, ModeLocalShare)
	srv.resume()
	ev.next(t, ModeLocalShare, ModeShared)
}

// TestStartWithStoreDown: an agent started while the store is down serves
// the outage mode from the start, says so, and joins when it comes up.
func TestStartWithStoreDown(t *testing.T) {
	srv := startRedis(t)
	srv.stop()
	ev := newEvents()
	cfg := storeOpts(srv, uniquePrefix(t))
	cfg.OnModeChange = ev.record
	s := openStore(t, cfg)
	ev.next(t, "", ModeUnavailable)
	if _, err := s.AdmitN(context.Background(), "tenant", Plan{Name: "p", ArtifactsPerDay: 5}, 1, 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("got %v", err)
	}
	// A plan with no limit the store keeps needs no store.
	if tk, err := s.AdmitN(context.Background(), "tenant", Plan{Name: "open", MaxArtifactBytes: 10}, 1, 1); err != nil {
		t.Fatalf("plan without shared limits: %v", err)
	} else {
		tk.Commit()
	}
	srv.start()
	ev.next(t, ModeUnavailable, ModeShared)
}

// TestLeaseExpiry: an agent that never releases its concurrency slots (it
// hangs, or dies) holds them only until the lease TTL.
func TestLeaseExpiry(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix(t)
	cfg := storeOpts(srv, prefix)
	cfg.LeaseTTL = 500 * time.Millisecond
	holder, other := openStore(t, cfg), openStore(t, cfg)
	p := Plan{Name: "p", Concurrency: 2}
	for i := 0; i < 2; i++ {
		if _, err := holder.AdmitN(context.Background(), "tenant", p, 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := other.AdmitN(context.Background(), "tenant", p, 1, 1); !errors.Is(err, ErrConcurrency) {
		t.Fatalf("slots held: %v", err)
	}
	var tk *Ticket
	eventually(t, "the leases to expire", func() bool {
		var err error
		tk, err = other.AdmitN(context.Background(), "tenant", p, 1, 1)
		return err == nil
	})
	tk.Release()
}

// TestLeaseOfKilledAgent: the same with a real process killed by SIGKILL
// while it holds the slots.
func TestLeaseOfKilledAgent(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holderAddr+"="+srv.addr(), holderPrefix+"="+prefix, holderSlots+"=3", holderTTL+"=700ms")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "holding" {
		t.Fatalf("holder: %q %v", line, err)
	}
	s := openStore(t, storeOpts(srv, prefix))
	p := Plan{Name: "p", Concurrency: 3}
	if _, err := s.AdmitN(context.Background(), "tenant", p, 1, 1); !errors.Is(err, ErrConcurrency) {
		t.Fatalf("slots held by the other agent: %v", err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	eventually(t, "the killed agent's leases to expire", func() bool {
		tk, err := s.AdmitN(context.Background(), "tenant", p, 1, 1)
		if err == nil {
			tk.Release()
		}
		return err == nil
	})
}

// TestIsolation: a tenant at its cap does not affect another tenant, nor
// the same tenant under another key prefix (another fleet on the store).
func TestIsolation(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix(t)
	a := openStore(t, storeOpts(srv, prefix))
	otherFleet := openStore(t, storeOpts(srv, prefix+"other:"))
	p := Plan{Name: "p", ArtifactsPerDay: 1, Concurrency: 1, QPS: 0.001, Burst: 1}
	ctx := context.Background()
	tk, err := a.AdmitN(ctx, "tenant", p, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer tk.Commit()
	if _, err := a.AdmitN(ctx, "tenant", p, 1, 1); err == nil {
		t.Fatal("second admission of a capped tenant")
	}
	for name, c := range map[string]struct {
		s      *Store
		tenant string
	}{
		"another tenant":             {a, "tenant-b"},
		"a tenant that needs escape": {a, "tenant}{:day"},
		"another key prefix":         {otherFleet, "tenant"},
	} {
		t.Run(name, func(t *testing.T) {
			tk, err := c.s.AdmitN(ctx, c.tenant, p, 1, 1)
			if err != nil {
				t.Fatalf("affected: %v", err)
			}
			tk.Commit()
		})
	}
}

// countingObserver records what the Store reports.
type countingObserver struct {
	mu       sync.Mutex
	modeList []string
	trips    map[string]int
	outcomes map[string]int
	dropped  int
}

func (o *countingObserver) StoreRoundTrip(op string, _ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.trips == nil {
		o.trips = map[string]int{}
	}
	k := op
	if err != nil {
		k += "!"
	}
	o.trips[k]++
}

func (o *countingObserver) Reservation(m Mode, outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.outcomes == nil {
		o.outcomes = map[string]int{}
	}
	o.outcomes[string(m)+"/"+outcome]++
}

func (o *countingObserver) ModeChanged(m Mode) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.modeList = append(o.modeList, string(m))
}

func (o *countingObserver) SettleDropped(n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.dropped += n
}

func (o *countingObserver) modes() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return strings.Join(o.modeList, ",")
}
