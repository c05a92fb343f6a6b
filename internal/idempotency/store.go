// Package idempotency keeps the answers to signing requests that carried
// an Idempotency-Key (SPEC §4.6), so that a retry gets the first answer
// instead of a second signature, and is not counted twice.
//
// A Store holds, per tenant and for a window (10 minutes by default), each
// key with the hash of the request it came with and the answer's status and
// bytes. Memory is bounded per tenant by a number of entries and of bytes;
// the oldest entries go first. An entry is a claim while its request is
// being served: a second request with the same key and the same request
// waits for the first and then gets its answer (or, when the first one
// failed, becomes the claim itself); with a different request it is
// refused at once (ErrKeyReused).
//
// The answers survive a crash through a journal (journal.go): the agent
// persists an answer (Claim.Persist: one write and one fdatasync, group
// committed across requests) before it appends the audit record that allows
// it, and publishes it only once that record is durable. At start the
// journal is read back and an answer is kept only when every audit record
// it rests on is in the durable audit log (Config.Confirm): an answer whose
// audit record never became durable was never sent, and its request is
// served afresh. So a request killed between its audit commit and its
// response is answered, after the restart, with the original signature and
// counted once; one killed before its audit commit was never signed as far
// as anyone can tell, and is signed when retried.
//
// The package does not log.
package idempotency

import (
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultWindow     = 10 * time.Minute
	DefaultMaxEntries = 10000
	DefaultMaxBytes   = 64 << 20
)

// entryOverhead is what an entry costs in memory besides its body, key,
// tenant and audit ids: the map and list slots and the struct.
const entryOverhead = 256

// ErrKeyReused refuses a request whose key was seen with a different
// request (422 idempotency_key_reused).
var ErrKeyReused = errors.New("idempotency key reused with a different request")

// Hash identifies a request: see RequestHash.
type Hash [sha256.Size]byte

// RequestHash is the hash an entry is keyed with: SHA-256 over the route,
// one zero byte and the request's canonical bytes (RFC 8785). The route is
// part of it, so one key cannot be reused across endpoints either.
func RequestHash(route string, canonical []byte) Hash {
	h := sha256.New()
	h.Write([]byte(route))
	h.Write([]byte{0})
	h.Write(canonical)
	var out Hash
	h.Sum(out[:0])
	return out
}

// Entry is a stored answer.
type Entry struct {
	Tenant string
	Key    string
	Hash   Hash
	// Status and Body are the answer as sent.
	Status int
	Body   []byte
	// AuditIDs are the audit records the answer rests on (the allow
	// record of a signature; every item record of a batch).
	AuditIDs []string
	Created  time.Time
}

func (e *Entry) size() int64 {
	n := int64(entryOverhead + len(e.Body) + len(e.Key) + len(e.Tenant))
	for _, id := range e.AuditIDs {
		n += int64(len(id)) + 16
	}
	return n
}

// Config configures Open.
type Config struct {
	// Dir holds the journal (created 0700). Empty keeps answers in memory
	// only: they do not survive a restart (tests).
	Dir string
	// Window is how long an answer is kept (DefaultWindow when zero).
	Window time.Duration
	// MaxEntries and MaxBytes bound each tenant's answers in memory
	// (DefaultMaxEntries and DefaultMaxBytes when zero); the oldest are
	// dropped first. An answer larger than MaxBytes is not kept.
	MaxEntries int
	MaxBytes   int64
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Confirm is called once by Open with every audit id the journal's
	// answers rest on, each mapped to false; it sets to true those the
	// durable audit log holds. An answer with an id left false is dropped.
	// Nil confirms nothing: every journaled answer is dropped.
	Confirm func(ids map[string]bool) error
}

// Store is the idempotency store. It is safe for concurrent use. Close
// stops its journal writer.
type Store struct {
	cfg Config
	j   *journal // nil: memory only

	mu      sync.Mutex
	tenants map[string]*tenantState
	closed  bool
}

type tenantState struct {
	entries map[string]*list.Element // key -> *Entry in order
	order   *list.List               // oldest first
	bytes   int64
	claims  map[string]*Claim
}

// Stats counts what a Store holds, for metrics and tests.
type Stats struct {
	Entries int
	Bytes   int64
	Claims  int
	// Loaded is how many journaled answers Open put back in memory;
	// Dropped how many it dropped (expired, unconfirmed or over a bound).
	Loaded, Dropped int
}

// Open makes a Store and, with a Dir, reads the journal back (see the
// package doc), compacts it into one new file and starts its writer.
func Open(cfg Config) (*Store, error) {
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Store{cfg: cfg, tenants: map[string]*tenantState{}}
	if cfg.Dir == "" {
		return s, nil
	}
	j, loaded, err := openJournal(cfg, s.restore)
	if err != nil {
		return nil, err
	}
	s.j = j
	s.j.loaded = loaded
	return s, nil
}

// restore puts the journal's confirmed, unexpired answers back in memory
// (oldest first, so the bounds drop the oldest) and returns the ones kept,
// for the compacted journal.
func (s *Store) restore(es []Entry) []*Entry {
	now := s.cfg.Now()
	for i := range es {
		if e := &es[i]; now.Sub(e.Created) < s.cfg.Window {
			s.insert(e, now)
		}
	}
	var kept []*Entry
	for _, ts := range s.tenants {
		for el := ts.order.Front(); el != nil; el = el.Next() {
			kept = append(kept, el.Value.(*Entry))
		}
	}
	return kept
}

// Close stops the journal writer and closes its file. Claims still open
// can be published or aborted; Persist fails after Close.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	if s.j != nil {
		return s.j.close()
	}
	return nil
}

// Window is the configured window.
func (s *Store) Window() time.Duration { return s.cfg.Window }

// Stats returns the store's counts.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var st Stats
	for _, ts := range s.tenants {
		st.Entries += ts.order.Len()
		st.Bytes += ts.bytes
		st.Claims += len(ts.claims)
	}
	if s.j != nil {
		st.Loaded, st.Dropped = s.j.loaded.kept, s.j.loaded.dropped
	}
	return st
}

func (s *Store) tenant(t string) *tenantState {
	ts := s.tenants[t]
	if ts == nil {
		ts = &tenantState{entries: map[string]*list.Element{}, order: list.New(), claims: map[string]*Claim{}}
		s.tenants[t] = ts
	}
	return ts
}

// expire drops the tenant's answers older than the window.
func (s *Store) expire(ts *tenantState, now time.Time) {
	for el := ts.order.Front(); el != nil; el = ts.order.Front() {
		e := el.Value.(*Entry)
		if now.Sub(e.Created) < s.cfg.Window {
			return
		}
		s.remove(ts, el)
	}
}

func (s *Store) remove(ts *tenantState, el *list.Element) {
	e := ts.order.Remove(el).(*Entry)
	delete(ts.entries, e.Key)
	ts.bytes -= e.size()
}

// insert stores e (replacing an older answer under its key) and drops the
// tenant's oldest answers while a bound is passed. It reports false, and
// stores nothing, when e alone is over MaxBytes.
func (s *Store) insert(e *Entry, now time.Time) bool {
	size := e.size()
	if size > s.cfg.MaxBytes {
		return false
	}
	ts := s.tenant(e.Tenant)
	s.expire(ts, now)
	if el, ok := ts.entries[e.Key]; ok {
		s.remove(ts, el)
	}
	for ts.order.Len() > 0 && (ts.order.Len() >= s.cfg.MaxEntries || ts.bytes+size > s.cfg.MaxBytes) {
		s.remove(ts, ts.order.Front())
	}
	ts.entries[e.Key] = ts.order.PushBack(e)
	ts.bytes += size
	return true
}

// Begin looks up (tenant, key) for a request with hash h:
//
//   - a stored answer for the same request: it is returned (a replay);
//   - a stored answer, or a request in flight, for another request:
//     ErrKeyReused;
//   - the same request in flight: Begin waits for it to end, then looks
//     again (its answer, or, if it failed, a claim for this request);
//   - nothing: a Claim, which the caller must end with Publish or Abort.
//
// An error other than ErrKeyReused is ctx's, while waiting.
func (s *Store) Begin(ctx context.Context, tenant, key string, h Hash) (*Claim, *Entry, error) {
	for {
		s.mu.Lock()
		ts := s.tenant(tenant)
		s.expire(ts, s.cfg.Now())
		if el, ok := ts.entries[key]; ok {
			e := el.Value.(*Entry)
			s.mu.Unlock()
			if e.Hash != h {
				return nil, nil, ErrKeyReused
			}
			return nil, e, nil
		}
		if c, ok := ts.claims[key]; ok {
			s.mu.Unlock()
			if c.hash != h {
				return nil, nil, ErrKeyReused
			}
			select {
			case <-c.done:
				continue
			case <-ctx.Done():
				return nil, nil, fmt.Errorf("waiting for the first request with this idempotency key: %w", ctx.Err())
			}
		}
		c := &Claim{s: s, tenant: tenant, key: key, hash: h, done: make(chan struct{})}
		ts.claims[key] = c
		s.mu.Unlock()
		return c, nil, nil
	}
}

// Claim is a request in flight under an idempotency key. Its answer is
// persisted (Persist) before the audit record that allows it is appended,
// and published (Publish) once that record is durable; Abort ends it with
// nothing stored. Publish and Abort may be called several times; the first
// call counts.
type Claim struct {
	s      *Store
	tenant string
	key    string
	hash   Hash
	done   chan struct{}
	once   sync.Once
	entry  *Entry
}

// Persist records the answer durably in the journal (one write and one
// fdatasync, group committed with other requests'), without publishing
// it. It reports false, and records nothing, when the answer is over the
// tenant's byte bound: the request is then served without idempotency.
// auditIDs are the records the answer rests on (at least one). An error
// means the answer could not be made durable.
func (c *Claim) Persist(ctx context.Context, status int, body []byte, auditIDs []string) (bool, error) {
	if len(auditIDs) == 0 {
		return false, errors.New("idempotency: an answer must rest on at least one audit record")
	}
	e := &Entry{Tenant: c.tenant, Key: c.key, Hash: c.hash, Status: status, Body: body,
		AuditIDs: auditIDs, Created: c.s.cfg.Now().UTC()}
	if e.size() > c.s.cfg.MaxBytes {
		return false, nil
	}
	if c.s.j != nil {
		if err := c.s.j.append(ctx, e); err != nil {
			return false, err
		}
	}
	c.entry = e
	return true, nil
}

// Publish makes the persisted answer visible to retries and wakes the
// requests waiting for this one. Without a persisted answer it is Abort.
func (c *Claim) Publish() { c.end(true) }

// Abort ends the claim with nothing stored (the request failed, or its
// audit record could not be made durable); a request waiting for it
// becomes the next claim.
func (c *Claim) Abort() { c.end(false) }

func (c *Claim) end(publish bool) {
	c.once.Do(func() {
		s := c.s
		s.mu.Lock()
		ts := s.tenant(c.tenant)
		if ts.claims[c.key] == c {
			delete(ts.claims, c.key)
		}
		if publish && c.entry != nil {
			s.insert(c.entry, s.cfg.Now())
		}
		s.mu.Unlock()
		close(c.done)
	})
}
