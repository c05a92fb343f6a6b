package quota

import (
	"context"
	"errors"
	"testing"
	"time"
)

// impl is one Admitter under the shared suite, with a way to wait until
// its releases have reached wherever it counts.
type impl struct {
	name   string
	open   func(t *testing.T) Admitter
	settle func(t *testing.T, a Admitter)
}

// impls are the node's Limiter and the shared Store on a real redis-server.
func impls(t *testing.T) []impl {
	srv := startRedis(t)
	return []impl{
		{name: "local", open: func(*testing.T) Admitter { return New(0, nil) }, settle: func(*testing.T, Admitter) {}},
		{name: "redis",
			open: func(t *testing.T) Admitter { return openStore(t, storeOpts(srv, uniquePrefix(t))) },
			settle: func(t *testing.T, a Admitter) {
				waitSettled(t, a.(*Store))
			}},
	}
}

func admit(t *testing.T, a Admitter, tenant string, p Plan, n int) (*Ticket, *Denial) {
	t.Helper()
	tk, err := a.AdmitN(context.Background(), tenant, p, 1, n)
	if err != nil {
		var d *Denial
		if !errors.As(err, &d) {
			t.Fatalf("AdmitN: %v (not a *Denial)", err)
		}
		return nil, d
	}
	return tk, nil
}

// TestAdmitterSuite runs one behaviour table against every Admitter: the
// agent can swap them without noticing.
func TestAdmitterSuite(t *testing.T) {
	for _, im := range impls(t) {
		t.Run(im.name, func(t *testing.T) {
			t.Run("daily cap, remaining and release", func(t *testing.T) {
				a := im.open(t)
				p := Plan{Name: "free", ArtifactsPerDay: 3}
				tk, d := admit(t, a, "a", p, 1)
				if d != nil || tk.Remaining != 2 || tk.Granted != 1 || tk.Short != nil {
					t.Fatalf("first: %v %+v", d, tk)
				}
				tk.Commit()
				tk2, _ := admit(t, a, "a", p, 1)
				tk2.Release() // nothing signed: the reservation comes back
				tk2.Release()
				im.settle(t, a)
				for i := 0; i < 2; i++ {
					tk, d := admit(t, a, "a", p, 1)
					if d != nil {
						t.Fatalf("admit %d after release: %v", i, d)
					}
					tk.Commit()
				}
				_, d = admit(t, a, "a", p, 1)
				if d == nil || !errors.Is(d, ErrExhausted) {
					t.Fatalf("over the cap: %v", d)
				}
				if d.RetryAfter <= 0 || d.RetryAfter > 24*time.Hour {
					t.Fatalf("Retry-After %v, want until UTC midnight", d.RetryAfter)
				}
				// Another tenant has its own count.
				if tk, d := admit(t, a, "b", p, 1); d != nil {
					t.Fatalf("tenant b: %v", d)
				} else {
					tk.Commit()
				}
			})
			t.Run("concurrency", func(t *testing.T) {
				a := im.open(t)
				p := Plan{Name: "p", Concurrency: 2}
				t1, _ := admit(t, a, "a", p, 1)
				t2, _ := admit(t, a, "a", p, 1)
				if t1 == nil || t2 == nil {
					t.Fatal("two within the limit refused")
				}
				_, d := admit(t, a, "a", p, 1)
				if d == nil || !errors.Is(d, ErrConcurrency) || !errors.Is(d, ErrThrottled) || d.RetryAfter <= 0 {
					t.Fatalf("third in flight: %v", d)
				}
				t1.Commit() // success frees the slot too
				im.settle(t, a)
				t3, d := admit(t, a, "a", p, 1)
				if d != nil {
					t.Fatalf("after commit: %v", d)
				}
				t2.Release()
				t3.Release()
			})
			t.Run("batch partly granted, partly signed", func(t *testing.T) {
				a := im.open(t)
				p := Plan{Name: "p", ArtifactsPerDay: 5}
				tk, d := admit(t, a, "a", p, 3)
				if d != nil || tk.Granted != 3 || tk.Remaining != 2 {
					t.Fatalf("batch of 3: %v %+v", d, tk)
				}
				tk.Settle(1) // two items failed: their count comes back
				im.settle(t, a)
				tk, d = admit(t, a, "a", p, 6)
				if d != nil || tk.Granted != 4 || tk.Remaining != 0 || tk.Short == nil || !errors.Is(tk.Short, ErrExhausted) {
					t.Fatalf("batch of 6 with 4 left: %v %+v", d, tk)
				}
				tk.Commit()
				if _, d := admit(t, a, "a", p, 1); d == nil || !errors.Is(d, ErrExhausted) {
					t.Fatalf("after the cap: %v", d)
				}
			})
			t.Run("rate burst then throttle", func(t *testing.T) {
				a := im.open(t)
				p := Plan{Name: "slow", QPS: 0.01, Burst: 3}
				tk, d := admit(t, a, "a", p, 2)
				if d != nil || tk.Granted != 2 {
					t.Fatalf("2 of burst 3: %v %+v", d, tk)
				}
				tk.Commit()
				tk, d = admit(t, a, "a", p, 2)
				if d != nil || tk.Granted != 1 || tk.Short == nil || !errors.Is(tk.Short, ErrThrottled) {
					t.Fatalf("2 more with 1 token: %v %+v", d, tk)
				}
				tk.Commit()
				_, d = admit(t, a, "a", p, 1)
				if d == nil || !errors.Is(d, ErrThrottled) || errors.Is(d, ErrConcurrency) {
					t.Fatalf("empty bucket: %v", d)
				}
				// One token per 100 s.
				if d.RetryAfter < 90*time.Second || d.RetryAfter > 100*time.Second {
					t.Fatalf("Retry-After %v, want about 100 s", d.RetryAfter)
				}
			})
			t.Run("bad input", func(t *testing.T) {
				a := im.open(t)
				p := Plan{Name: "p", MaxArtifactBytes: 10}
				for name, c := range map[string]struct {
					size int64
					n    int
					want error
				}{
					"over the size limit": {11, 1, ErrTooLarge},
					"zero artifacts":      {1, 0, ErrInvalid},
					"negative artifacts":  {1, -1, ErrInvalid},
				} {
					t.Run(name, func(t *testing.T) {
						tk, err := a.AdmitN(context.Background(), "a", p, c.size, c.n)
						if tk != nil || !errors.Is(err, c.want) {
							t.Fatalf("got %v, %v; want %v", tk, err, c.want)
						}
					})
				}
			})
		})
	}
}
