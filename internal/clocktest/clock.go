// Package clocktest is the one fake clock of the tests: a settable time
// source for the Now func() time.Time hooks that packages take (audit,
// release, quota, entitlement, fido2, auth). It is safe for concurrent use.
//
// testing/synctest was considered: its fake time covers only goroutines
// started inside the bubble and real I/O (httptest servers, the file
// system, swtpm) does not count as blocking there, so it does not fit the
// tests that need a clock. Those tests inject Now instead.
package clocktest

import (
	"sync"
	"time"
)

// Epoch is the default start of a Clock: 2026-03-01 12:00:00 UTC.
var Epoch = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// Clock is a fake clock. Its time moves only through Advance and Set, and,
// when Step is set, by Step after each Now (so that successive readings
// differ, as real timestamps of successive events do).
type Clock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

// New returns a clock at t (Epoch when t is zero).
func New(t time.Time) *Clock {
	if t.IsZero() {
		t = Epoch
	}
	return &Clock{t: t}
}

// NewStepping returns a clock at t (Epoch when zero) that advances by step
// after every reading.
func NewStepping(t time.Time, step time.Duration) *Clock {
	c := New(t)
	c.step = step
	return c
}

// Now returns the clock's time (then advances it by the step, if any).
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.t
	c.t = c.t.Add(c.step)
	return now
}

// Advance moves the clock by d (which may be negative).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}
