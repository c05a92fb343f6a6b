package quota

import (
	"context"
	"errors"
	"strconv"
	"testing"
)

func TestPlanShare(t *testing.T) {
	p := Plan{Name: "team", QPS: 10, Burst: 5, Concurrency: 3, MaxArtifactBytes: 100, ArtifactsPerDay: 40}
	cases := map[string]struct {
		f    float64
		want Plan
	}{
		"whole plan":         {1, p},
		"half":               {0.5, Plan{Name: "team", QPS: 5, Burst: 3, Concurrency: 2, MaxArtifactBytes: 100, ArtifactsPerDay: 20}},
		"an eighth, rounded": {0.125, Plan{Name: "team", QPS: 1.25, Burst: 1, Concurrency: 1, MaxArtifactBytes: 100, ArtifactsPerDay: 5}},
		"tiny share":         {0.001, Plan{Name: "team", QPS: 0.01, Burst: 1, Concurrency: 1, MaxArtifactBytes: 100, ArtifactsPerDay: 1}},
		"no share is whole":  {0, p},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if got := p.Share(c.f); got != c.want {
				t.Fatalf("Share(%v) = %+v, want %+v", c.f, got, c.want)
			}
		})
	}
	// Unlimited dimensions stay unlimited.
	if got := (Plan{QPS: 4}).Share(0.5); got.Burst != 0 || got.Concurrency != 0 || got.ArtifactsPerDay != 0 || got.QPS != 2 {
		t.Fatalf("unlimited dimensions: %+v", got)
	}
}

// TestStoreGlobalConcurrency: the node-wide limit is local in every mode,
// and a refused reservation gives its global slot back.
func TestStoreGlobalConcurrency(t *testing.T) {
	srv := startRedis(t)
	cfg := storeOpts(srv, uniquePrefix(t))
	cfg.GlobalConcurrency = 1
	s := openStore(t, cfg)
	p := Plan{Name: "p", ArtifactsPerDay: 1}
	ctx := context.Background()
	tk, err := s.AdmitN(ctx, "a", p, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdmitN(ctx, "b", p, 1, 1); !errors.Is(err, ErrOverloaded) {
		t.Fatalf("second in flight: %v", err)
	}
	tk.Commit()
	if _, err := s.AdmitN(ctx, "a", p, 1, 1); !errors.Is(err, ErrExhausted) {
		t.Fatalf("a at its cap: %v", err)
	}
	// The refusal above did not keep the slot.
	tk, err = s.AdmitN(ctx, "b", p, 1, 1)
	if err != nil {
		t.Fatalf("after a refusal: %v", err)
	}
	tk.Release()
}

func TestDenialOf(t *testing.T) {
	_, err := New(0, nil).AdmitN(context.Background(), "a", Plan{MaxArtifactBytes: 1}, 2, 1)
	if d := DenialOf(err); d == nil || !errors.Is(d, ErrTooLarge) {
		t.Fatalf("DenialOf(%v) = %v", err, d)
	}
	if d := DenialOf(context.Canceled); d != nil {
		t.Fatalf("a ctx error is not a denial: %v", d)
	}
	if d := DenialOf(nil); d != nil {
		t.Fatal("nil error")
	}
}

// TestStoreKeysExpire: no key the store writes lives forever. The day key
// expires an hour after the server's next UTC midnight (set when the day
// starts, kept by later admissions the same day), the rate key once the
// bucket would be full again, the lease set after the lease TTL.
func TestStoreKeysExpire(t *testing.T) {
	srv := startRedis(t)
	prefix := uniquePrefix(t)
	s := openStore(t, storeOpts(srv, prefix))
	p := Plan{Name: "p", QPS: 100, Burst: 10, Concurrency: 4, ArtifactsPerDay: 1000}
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		tk, err := s.AdmitN(ctx, "a", p, 1, 1)
		if err != nil {
			t.Fatal(err)
		}
		if i < 2 {
			tk.Commit()
		}
	}
	k := keysFor(prefix, "a")
	tm := srv.do("TIME").([]any)
	secs, _ := strconv.ParseInt(tm[0].(string), 10, 64)
	wantDay := ((secs/86400)+1)*86400000 + 3600000
	if got := srv.do("PEXPIRETIME", k.day).(int64); got != wantDay {
		t.Fatalf("day key expires at %d ms, want %d (next UTC midnight + 1 h)", got, wantDay)
	}
	for _, key := range []string{k.rate, k.leases} {
		if ttl := srv.do("PTTL", key).(int64); ttl <= 0 {
			t.Fatalf("%s: PTTL %d, want an expiry", key, ttl)
		}
	}
	if n := srv.dayCount(prefix, "a"); n != 3 {
		t.Fatalf("day count %d, want 3", n)
	}
}
