package clocktest

import (
	"sync"
	"testing"
	"time"
)

func TestClock(t *testing.T) {
	c := New(time.Time{})
	if !c.Now().Equal(Epoch) {
		t.Fatalf("zero start: %v, want Epoch", c.Now())
	}
	if !c.Now().Equal(Epoch) {
		t.Fatal("a plain clock moved by itself")
	}
	c.Advance(90 * time.Second)
	if got := c.Now(); !got.Equal(Epoch.Add(90 * time.Second)) {
		t.Fatalf("after Advance: %v", got)
	}
	c.Advance(-time.Hour)
	if got := c.Now(); !got.Equal(Epoch.Add(90*time.Second - time.Hour)) {
		t.Fatalf("after a negative Advance: %v", got)
	}
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	c.Set(at)
	if !c.Now().Equal(at) {
		t.Fatal("Set ignored")
	}
	if got := New(at).Now(); !got.Equal(at) {
		t.Fatalf("New(at) = %v", got)
	}
}

func TestStepping(t *testing.T) {
	c := NewStepping(time.Time{}, time.Millisecond)
	a, b := c.Now(), c.Now()
	if !a.Equal(Epoch) || b.Sub(a) != time.Millisecond {
		t.Fatalf("readings %v, %v", a, b)
	}
	c.Advance(time.Second)
	if got := c.Now(); got.Sub(b) != time.Second+time.Millisecond {
		t.Fatalf("after Advance: %v", got.Sub(b))
	}
}

func TestConcurrent(t *testing.T) {
	c := NewStepping(time.Time{}, time.Nanosecond)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				c.Now()
				c.Advance(time.Nanosecond)
			}
		}()
	}
	wg.Wait()
	if got := c.Now().Sub(Epoch); got != 1600*time.Nanosecond {
		t.Fatalf("clock moved %v, want 1.6µs", got)
	}
}
