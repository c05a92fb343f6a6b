package quota

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/clocktest"
)

func newClock() *clocktest.Clock {
	return clocktest.New(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
}

func TestBurstThenThrottle(t *testing.T) {
	c := newClock()
	l := New(0, c.Now)
	p := Plan{Name: "team", QPS: 2, Burst: 3}
	for i := 0; i < 3; i++ {
		tk, d := l.Admit("a", p, 10)
		if d != nil {
			t.Fatalf("request %d within burst refused: %v", i, d)
		}
		tk.Commit()
	}
	_, d := l.Admit("a", p, 10)
	if d == nil || !errors.Is(d, ErrThrottled) {
		t.Fatalf("4th request: %v", d)
	}
	if d.RetryAfter <= 0 || d.RetryAfter > 500*time.Millisecond {
		t.Fatalf("Retry-After %v, want (0, 500ms] at 2 qps", d.RetryAfter)
	}
	// Another tenant has its own bucket.
	if tk, d := l.Admit("b", p, 10); d != nil {
		t.Fatalf("tenant b throttled by a: %v", d)
	} else {
		tk.Release()
	}
	c.Advance(d.RetryAfter)
	if tk, d := l.Admit("a", p, 10); d != nil {
		t.Fatalf("after Retry-After: %v", d)
	} else {
		tk.Commit()
	}
}

func TestConcurrencyCap(t *testing.T) {
	l := New(0, nil)
	p := Plan{Name: "p", Concurrency: 2}
	t1, _ := l.Admit("a", p, 1)
	t2, _ := l.Admit("a", p, 1)
	if _, d := l.Admit("a", p, 1); d == nil || !errors.Is(d, ErrThrottled) {
		t.Fatalf("third in flight: %v", d)
	}
	t1.Release()
	t1.Release() // idempotent
	t3, d := l.Admit("a", p, 1)
	if d != nil {
		t.Fatalf("after release: %v", d)
	}
	t2.Commit()
	t3.Commit()
}

func TestGlobalConcurrency(t *testing.T) {
	l := New(1, nil)
	tk, _ := l.Admit("a", Plan{}, 1)
	if _, d := l.Admit("b", Plan{}, 1); d == nil || !errors.Is(d, ErrOverloaded) {
		t.Fatalf("global limit: %v", d)
	}
	tk.Commit()
	if tk, d := l.Admit("b", Plan{}, 1); d != nil {
		t.Fatal(d)
	} else {
		tk.Commit()
	}
}

func TestSizeAndDaily(t *testing.T) {
	c := newClock()
	l := New(0, c.Now)
	p := Plan{Name: "free", MaxArtifactBytes: 100, ArtifactsPerDay: 3}
	if _, d := l.Admit("a", p, 101); d == nil || !errors.Is(d, ErrTooLarge) {
		t.Fatalf("size: %v", d)
	}
	l.Seed("a", c.Now(), 1) // one signature earlier today (from the audit log)
	tk, d := l.Admit("a", p, 100)
	if d != nil || tk.Remaining != 1 {
		t.Fatalf("admit: %v remaining %d", d, tk.Remaining)
	}
	// A released request gives its reservation back.
	tk2, _ := l.Admit("a", p, 1)
	tk2.Release()
	tk.Commit()
	tk3, _ := l.Admit("a", p, 1)
	tk3.Commit()
	_, d = l.Admit("a", p, 1)
	if d == nil || !errors.Is(d, ErrExhausted) {
		t.Fatalf("daily cap: %v", d)
	}
	if d.RetryAfter != 12*time.Hour {
		t.Fatalf("Retry-After %v, want until UTC midnight", d.RetryAfter)
	}
	if l.Used("a") != 3 {
		t.Fatalf("used %d", l.Used("a"))
	}
	c.Advance(12 * time.Hour)
	if tk, d := l.Admit("a", p, 1); d != nil {
		t.Fatalf("next day: %v", d)
	} else {
		tk.Commit()
	}
}

// TestReservationsUnderLoad: concurrent admissions never exceed the daily
// cap, and commits and releases balance.
func TestReservationsUnderLoad(t *testing.T) {
	l := New(0, nil)
	p := Plan{Name: "p", ArtifactsPerDay: 100}
	var wg sync.WaitGroup
	var mu sync.Mutex
	admitted := 0
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				tk, d := l.Admit("a", p, 1)
				if d != nil {
					continue
				}
				if (g+i)%3 == 0 {
					tk.Release()
					continue
				}
				mu.Lock()
				admitted++
				mu.Unlock()
				tk.Commit()
			}
		}(g)
	}
	wg.Wait()
	if admitted > 100 || l.Used("a") != int64(admitted) {
		t.Fatalf("admitted %d, used %d", admitted, l.Used("a"))
	}
}
