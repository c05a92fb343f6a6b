package auth

import (
	"crypto/sha256"
	"errors"
	"sync"
	"time"
)

var (
	errReplayed = errors.New("jti already used")
	errTooOld   = errors.New("proof older than the replay history kept (replay cache overflow)")
)

// replayCache remembers DPoP jtis for the retention period (the longest a
// proof can stay acceptable). It is bounded: when full it evicts the oldest
// entry and raises a floor, and any proof whose iat is not after the floor is
// refused, because its jti might have been forgotten. Eviction therefore
// costs availability for old proofs, never a replay.
type replayCache struct {
	mu        sync.Mutex
	max       int
	retention time.Duration
	seen      map[[32]byte]time.Time // key -> expiry
	queue     []replayEntry          // insertion order; queue[head:] live
	head      int
	floor     time.Time
	hasFloor  bool
}

type replayEntry struct {
	key     [32]byte
	iat     time.Time
	expires time.Time
}

func newReplayCache(max int, retention time.Duration) *replayCache {
	return &replayCache{max: max, retention: retention, seen: map[[32]byte]time.Time{}}
}

// replayKey scopes a jti to the proof key, so clients cannot collide.
func replayKey(jkt, jti string) [32]byte {
	h := sha256.New()
	h.Write([]byte(jkt))
	h.Write([]byte{0})
	h.Write([]byte(jti))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// extend raises the retention to at least d (for entries added from now on).
func (c *replayCache) extend(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.retention = max(c.retention, d)
}

// check reports whether the proof would be refused, without recording it.
func (c *replayCache) check(key [32]byte, iat, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkLocked(key, iat, now)
}

// add records the proof; it fails if the proof is refused (a concurrent
// request used the same jti first).
func (c *replayCache) add(key [32]byte, iat, now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkLocked(key, iat, now); err != nil {
		return err
	}
	if len(c.queue)-c.head >= c.max {
		e := c.queue[c.head]
		c.pop()
		if !c.hasFloor || e.iat.After(c.floor) {
			c.floor, c.hasFloor = e.iat, true
		}
	}
	exp := now.Add(c.retention)
	c.seen[key] = exp
	c.queue = append(c.queue, replayEntry{key: key, iat: iat, expires: exp})
	return nil
}

func (c *replayCache) checkLocked(key [32]byte, iat, now time.Time) error {
	for c.head < len(c.queue) && !now.Before(c.queue[c.head].expires) {
		c.pop()
	}
	if c.hasFloor && !iat.After(c.floor) {
		return errTooOld
	}
	if exp, ok := c.seen[key]; ok && now.Before(exp) {
		return errReplayed
	}
	return nil
}

func (c *replayCache) pop() {
	e := c.queue[c.head]
	if exp, ok := c.seen[e.key]; ok && exp.Equal(e.expires) {
		delete(c.seen, e.key)
	}
	c.queue[c.head] = replayEntry{}
	c.head++
	if c.head > 1024 && c.head*2 > len(c.queue) {
		n := copy(c.queue, c.queue[c.head:])
		clear(c.queue[n:])
		c.queue = c.queue[:n]
		c.head = 0
	}
}
