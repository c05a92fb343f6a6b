package auth

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/auth/authoritytest"
)

func TestReplayCache(t *testing.T) {
	c := newReplayCache(1000, 10*time.Minute)
	now := authoritytest.Epoch
	k := replayKey("jkt", "a")
	if err := c.add(k, now, now); err != nil {
		t.Fatal(err)
	}
	if err := c.check(k, now, now.Add(time.Minute)); !errors.Is(err, errReplayed) {
		t.Fatalf("replay: %v", err)
	}
	if err := c.add(k, now, now.Add(time.Minute)); !errors.Is(err, errReplayed) {
		t.Fatalf("replay add: %v", err)
	}
	if err := c.check(replayKey("other-jkt", "a"), now, now); err != nil {
		t.Fatalf("same jti, other key: %v", err)
	}
	// After the retention the entry is gone (the proof's iat would be long
	// refused by then).
	if err := c.check(k, now, now.Add(10*time.Minute)); err != nil {
		t.Fatalf("after retention: %v", err)
	}
}

// TestReplayCacheOverflow: a full cache evicts the oldest jti and from then
// on refuses every proof not newer than it, so no replay slips through.
func TestReplayCacheOverflow(t *testing.T) {
	c := newReplayCache(3, 10*time.Minute)
	now := authoritytest.Epoch
	for i := range 3 {
		if err := c.add(replayKey("k", fmt.Sprint(i)), now.Add(time.Duration(i)*time.Second), now); err != nil {
			t.Fatal(err)
		}
	}
	// The fourth evicts jti 0 (iat +0s): floor = +0s.
	if err := c.add(replayKey("k", "3"), now.Add(3*time.Second), now); err != nil {
		t.Fatal(err)
	}
	if err := c.check(replayKey("k", "0"), now, now); !errors.Is(err, errTooOld) {
		t.Fatalf("evicted jti replayed: %v", err)
	}
	if err := c.check(replayKey("k", "1"), now.Add(time.Second), now); !errors.Is(err, errReplayed) {
		t.Fatalf("kept jti replayed: %v", err)
	}
	if err := c.check(replayKey("k", "new"), now.Add(time.Second), now); err != nil {
		t.Fatalf("fresh proof after overflow: %v", err)
	}
	if n := len(c.queue) - c.head; n != 3 {
		t.Fatalf("%d entries, max 3", n)
	}
}

func TestReplayCacheCompacts(t *testing.T) {
	c := newReplayCache(100, time.Minute)
	now := authoritytest.Epoch
	for i := range 10000 {
		now = now.Add(time.Second)
		if err := c.add(replayKey("k", fmt.Sprint(i)), now, now); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.seen) > 61 || len(c.queue) > 4*100+2048 {
		t.Fatalf("cache grew: %d seen, queue %d", len(c.seen), len(c.queue))
	}
	if c.hasFloor {
		t.Fatal("floor raised without overflow")
	}
}
