// Package quota enforces a tenant's plan limits (SPEC §1 step 6, §8):
// requests per second as a token bucket with burst (x/time/rate), concurrent
// requests, the size of the canonical statement, and successful signatures
// per UTC day. Limits are keyed by tenant, never by process id. A global
// concurrency limit protects slow key backends from every tenant at once.
//
// Daily counts are not kept in a file of their own: the agent seeds them at
// start from the durable audit log (every allowed signature has a record
// that was fsynced before its response), so neither a restart nor a crash
// resets a tenant's day.
//
// Two Admitters enforce plans: Limiter, each node on its own (quota.store:
// local), and Store, one count per tenant for a whole fleet in Redis or
// Valkey (quota.store: redis, SPEC §16; store.go, docs/fleet.md), with a
// defined outage mode. The package does not log; the Store reports through
// StoreConfig.OnModeChange and an Observer.
package quota

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Plan is one plan's limits. Zero means unlimited for that dimension.
type Plan struct {
	Name             string
	QPS              float64
	Burst            int
	Concurrency      int
	MaxArtifactBytes int64
	ArtifactsPerDay  int64
}

// Reasons a request is refused.
var (
	ErrThrottled  = errors.New("plan rate or concurrency limit reached") // plan_throttled
	ErrExhausted  = errors.New("daily artifact quota exhausted")         // quota_exhausted
	ErrTooLarge   = errors.New("artifact over the plan's size limit")    // artifact_too_large
	ErrOverloaded = errors.New("agent-wide concurrency limit reached")   // plan_throttled
	// ErrUnavailable: the shared quota store is unreachable and
	// quota.onStoreDown is deny (quota_unavailable, 503).
	ErrUnavailable = errors.New("shared quota store unavailable")
	// ErrInvalid: a reservation of fewer than one artifact (a bug in the
	// caller; internal_error).
	ErrInvalid = errors.New("invalid quota reservation")
	// ErrConcurrency is ErrThrottled for the tenant's concurrency limit.
	ErrConcurrency = fmt.Errorf("%w: too many requests in flight", ErrThrottled)
)

// Denial explains a refusal: the sentinel, a Retry-After hint and a reason
// for the audit log.
type Denial struct {
	Err        error
	RetryAfter time.Duration
	Reason     string
}

func (d *Denial) Error() string { return d.Reason }
func (d *Denial) Unwrap() error { return d.Err }

// Limiter holds the per-tenant state. It is safe for concurrent use and
// survives configuration reloads (plans are passed per request).
type Limiter struct {
	now    func() time.Time
	global chan struct{} // nil: no global limit

	mu      sync.Mutex
	tenants map[string]*tenantState
}

type tenantState struct {
	bucket      *rate.Limiter
	planKey     string // rebuild the bucket when the plan changes
	inflight    int
	day         string // UTC day of count, "2006-01-02"
	count       int64  // successful signatures today
	reservedDay int64  // reserved but not yet committed
}

// New makes a limiter. globalConcurrency 0 means unlimited.
func New(globalConcurrency int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{now: now, tenants: map[string]*tenantState{}}
	if globalConcurrency > 0 {
		l.global = make(chan struct{}, globalConcurrency)
	}
	return l
}

// Seed sets a tenant's count for a UTC day (from the audit log at start).
func (l *Limiter) Seed(tenant string, day time.Time, count int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.state(tenant)
	d := day.UTC().Format(time.DateOnly)
	if ts.day != d {
		ts.day, ts.count = d, 0
	}
	ts.count += count
}

func (l *Limiter) state(tenant string) *tenantState {
	ts := l.tenants[tenant]
	if ts == nil {
		ts = &tenantState{}
		l.tenants[tenant] = ts
	}
	return ts
}

// Admit checks every limit for one request whose canonical statement is
// size bytes, in the order size → daily → rate → tenant concurrency →
// global concurrency, and reserves what it takes. It is AdmitN for one
// artifact, with the *Denial typed.
func (l *Limiter) Admit(tenant string, p Plan, size int64) (*Ticket, *Denial) {
	t, d := l.admit(tenant, p, size, 1)
	if d != nil {
		return nil, d
	}
	return t, nil
}

// AdmitN implements Admitter with the node's own counts. ctx is unused: a
// local admission never waits.
func (l *Limiter) AdmitN(_ context.Context, tenant string, p Plan, size int64, n int) (*Ticket, error) {
	t, d := l.admit(tenant, p, size, n)
	if d != nil {
		return nil, d
	}
	return t, nil
}

// Mode reports ModeNode: the plan holds per node.
func (l *Limiter) Mode() Mode { return ModeNode }

// Close does nothing; a Limiter holds no resources.
func (l *Limiter) Close() error { return nil }

func (l *Limiter) admit(tenant string, p Plan, size int64, n int) (*Ticket, *Denial) {
	if n < 1 {
		return nil, &Denial{Err: ErrInvalid, Reason: fmt.Sprintf("reservation of %d artifacts", n)}
	}
	if d := p.CheckSize(size); d != nil {
		return nil, d
	}
	now := l.now()
	today := now.UTC().Format(time.DateOnly)
	granted := n
	var short *Denial
	l.mu.Lock()
	ts := l.state(tenant)
	if ts.day != today {
		ts.day, ts.count, ts.reservedDay = today, 0, 0
	}
	remaining := int64(-1)
	if p.ArtifactsPerDay > 0 {
		used := ts.count + ts.reservedDay
		left := p.ArtifactsPerDay - used
		if left <= 0 {
			l.mu.Unlock()
			return nil, exhausted(tenant, p, used, untilMidnight(now))
		}
		if left < int64(granted) {
			granted = int(left)
			short = exhausted(tenant, p, p.ArtifactsPerDay, untilMidnight(now))
		}
	}
	if p.QPS > 0 {
		key := fmt.Sprintf("%g/%d", p.QPS, p.Burst)
		if ts.bucket == nil || ts.planKey != key {
			burst := p.Burst
			if burst < 1 {
				burst = 1
			}
			ts.bucket = rate.NewLimiter(rate.Limit(p.QPS), burst)
			ts.planKey = key
		}
		if avail := int(math.Floor(ts.bucket.TokensAt(now))); avail < granted {
			if avail < 1 {
				r := ts.bucket.ReserveN(now, 1)
				d := r.DelayFrom(now)
				r.CancelAt(now)
				l.mu.Unlock()
				return nil, throttled(tenant, p, d)
			}
			granted = avail
			short = throttled(tenant, p, time.Duration(float64(time.Second)/p.QPS))
		}
		ts.bucket.ReserveN(now, granted)
	}
	if p.Concurrency > 0 && ts.inflight >= p.Concurrency {
		l.mu.Unlock()
		return nil, concurrency(tenant, p, ts.inflight)
	}
	ts.inflight++
	reserved := int64(0)
	if p.ArtifactsPerDay > 0 {
		reserved = int64(granted)
		ts.reservedDay += reserved
		remaining = p.ArtifactsPerDay - (ts.count + ts.reservedDay)
	}
	l.mu.Unlock()

	lt := &localTicket{l: l, tenant: tenant, day: today, reserved: reserved}
	t := &Ticket{Remaining: remaining, Granted: granted, Short: short, Mode: ModeNode, settle: lt.settle}
	if l.global != nil {
		select {
		case l.global <- struct{}{}:
			lt.global = true
		default:
			t.Release()
			return nil, overloaded()
		}
	}
	return t, nil
}

// localTicket is what a local reservation gives back.
type localTicket struct {
	l        *Limiter
	tenant   string
	day      string // UTC day the reservation was made on
	reserved int64  // daily reservations held
	global   bool   // a global concurrency slot is held
}

func (lt *localTicket) settle(signed int) {
	l := lt.l
	if lt.global {
		<-l.global
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.state(lt.tenant)
	ts.inflight--
	if ts.day == lt.day {
		ts.reservedDay -= lt.reserved
		ts.count += int64(signed)
		return
	}
	// The UTC day rolled over while signing (the old day's reservations
	// were dropped with it): count the signatures on the new day, the
	// conservative choice.
	if signed > 0 {
		if today := l.now().UTC().Format(time.DateOnly); ts.day != today {
			ts.day, ts.count, ts.reservedDay = today, 0, 0
		}
		ts.count += int64(signed)
	}
}

// countSigned adds signatures made under another mode (the shared store)
// to the node's own daily count, which the local share falls back on.
func (l *Limiter) countSigned(tenant string, now time.Time, n int64) {
	l.Seed(tenant, now, n)
}

// Used reports a tenant's successful signatures today.
func (l *Limiter) Used(tenant string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.tenants[tenant]
	if ts == nil || ts.day != l.now().UTC().Format(time.DateOnly) {
		return 0
	}
	return ts.count
}
