package auth

import (
	"sync"
	"time"
)

// tokenCache remembers verified tokens by SHA-256 so each token's signature
// and static claims are checked once. Entries live until the token's
// exp+skew; the time checks are still made on every use. When full, expired
// entries go first, then arbitrary ones (a miss only costs a signature
// check).
type tokenCache struct {
	mu  sync.Mutex
	max int
	m   map[[32]byte]tokenEntry
}

type tokenEntry struct {
	claims *Claims
	until  time.Time
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{max: max, m: map[[32]byte]tokenEntry{}}
}

func (c *tokenCache) get(h [32]byte, now time.Time) (*Claims, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[h]
	if !ok {
		return nil, false
	}
	if now.After(e.until) {
		delete(c.m, h)
		return nil, false
	}
	return e.claims, true
}

func (c *tokenCache) put(h [32]byte, cl *Claims, until, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		for k, e := range c.m {
			if now.After(e.until) {
				delete(c.m, k)
			}
		}
		// Free an eighth at once so a full cache does not scan per insert.
		for k := range c.m {
			if len(c.m) < c.max-c.max/8 {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[h] = tokenEntry{claims: cl, until: until}
}

func (c *tokenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
