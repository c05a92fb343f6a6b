package auth

import (
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/auth/authoritytest"
)

func TestNonceWindows(t *testing.T) {
	n := newNonceSource([]byte("0123456789abcdef"), 5*time.Minute)
	start := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // a window boundary
	a := n.current(start)
	if got := n.current(start.Add(5*time.Minute - time.Nanosecond)); got != a {
		t.Fatal("nonce changed inside its window")
	}
	b := n.current(start.Add(5 * time.Minute))
	if b == a {
		t.Fatal("nonce did not change at the window boundary")
	}
	for _, tc := range []struct {
		nonce string
		at    time.Duration
		ok    bool
	}{
		{a, 0, true},
		{a, 9*time.Minute + 59*time.Second, true}, // previous window
		{a, 10 * time.Minute, false},              // two windows on
		{b, 0, false},                             // from the future
		{b, 5 * time.Minute, true},
		{"", 0, false},
		{a[:31] + "A", 0, false},
		{a + "A", 0, false},
	} {
		if got := n.valid(tc.nonce, start.Add(tc.at)); got != tc.ok {
			t.Errorf("valid(%q, +%s) = %v, want %v", tc.nonce, tc.at, got, tc.ok)
		}
	}
	other := newNonceSource([]byte("fedcba9876543210"), 5*time.Minute)
	if other.valid(a, start) {
		t.Fatal("nonce valid under another key")
	}
	// Before 1970 the window index is negative; it still works.
	old := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)
	if !n.valid(n.current(old), old.Add(time.Minute)) {
		t.Fatal("negative window index")
	}
}

func TestNonceFromVerifier(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	a := f.v.Nonce()
	f.clock.Advance(time.Second)
	if f.v.Nonce() != a {
		t.Fatal("Nonce changed within its window")
	}
	f.clock.Set(authoritytest.Epoch.Add(DefaultNonceWindow))
	if f.v.Nonce() == a {
		t.Fatal("Nonce did not change at the window boundary")
	}
}
