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
package quota

import (
	"errors"
	"fmt"
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

// Ticket is an admitted request. Exactly one of Commit (signed) or Release
// (not signed) must be called; later calls do nothing.
type Ticket struct {
	l        *Limiter
	tenant   string
	day      string // UTC day the reservation was made on
	reserved bool   // a daily reservation is held
	global   bool   // a global concurrency slot is held
	once     sync.Once
	// Remaining is what is left of today's allowance after this request,
	// or -1 when the plan has no daily limit.
	Remaining int64
}

// Admit checks every limit for one request whose canonical statement is
// size bytes, in the order size → daily → rate → tenant concurrency →
// global concurrency, and reserves what it takes.
func (l *Limiter) Admit(tenant string, p Plan, size int64) (*Ticket, *Denial) {
	if p.MaxArtifactBytes > 0 && size > p.MaxArtifactBytes {
		return nil, &Denial{Err: ErrTooLarge, Reason: fmt.Sprintf("statement %d bytes over plan %q limit %d", size, p.Name, p.MaxArtifactBytes)}
	}
	now := l.now()
	today := now.UTC().Format(time.DateOnly)
	l.mu.Lock()
	ts := l.state(tenant)
	if ts.day != today {
		ts.day, ts.count, ts.reservedDay = today, 0, 0
	}
	remaining := int64(-1)
	if p.ArtifactsPerDay > 0 {
		used := ts.count + ts.reservedDay
		if used >= p.ArtifactsPerDay {
			l.mu.Unlock()
			midnight := time.Date(now.UTC().Year(), now.UTC().Month(), now.UTC().Day()+1, 0, 0, 0, 0, time.UTC)
			return nil, &Denial{Err: ErrExhausted, RetryAfter: midnight.Sub(now),
				Reason: fmt.Sprintf("tenant %q used %d of %d artifacts today (plan %q)", tenant, used, p.ArtifactsPerDay, p.Name)}
		}
		remaining = p.ArtifactsPerDay - used - 1
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
		r := ts.bucket.ReserveN(now, 1)
		if d := r.DelayFrom(now); d > 0 {
			r.CancelAt(now)
			l.mu.Unlock()
			return nil, &Denial{Err: ErrThrottled, RetryAfter: d,
				Reason: fmt.Sprintf("tenant %q over %g requests/s (burst %d, plan %q)", tenant, p.QPS, p.Burst, p.Name)}
		}
	}
	if p.Concurrency > 0 && ts.inflight >= p.Concurrency {
		l.mu.Unlock()
		return nil, &Denial{Err: ErrConcurrency, RetryAfter: time.Second,
			Reason: fmt.Sprintf("tenant %q has %d requests in flight (plan %q limit %d)", tenant, ts.inflight, p.Name, p.Concurrency)}
	}
	ts.inflight++
	if p.ArtifactsPerDay > 0 {
		ts.reservedDay++
	}
	l.mu.Unlock()

	t := &Ticket{l: l, tenant: tenant, day: today, reserved: p.ArtifactsPerDay > 0, Remaining: remaining}
	if l.global != nil {
		select {
		case l.global <- struct{}{}:
			t.global = true
		default:
			t.Release()
			return nil, &Denial{Err: ErrOverloaded, RetryAfter: time.Second, Reason: "agent-wide concurrency limit reached"}
		}
	}
	return t, nil
}

// Commit records a successful signature against today's allowance.
func (t *Ticket) Commit() { t.once.Do(func() { t.finish(true) }) }

// Release gives back what Admit reserved (nothing was signed).
func (t *Ticket) Release() { t.once.Do(func() { t.finish(false) }) }

func (t *Ticket) finish(signed bool) {
	l := t.l
	if t.global {
		<-l.global
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := l.state(t.tenant)
	ts.inflight--
	if ts.day == t.day {
		if t.reserved {
			ts.reservedDay--
		}
		if signed {
			ts.count++
		}
		return
	}
	// The UTC day rolled over while signing (the old day's reservations
	// were dropped with it): count the signature on the new day, the
	// conservative choice.
	if signed {
		if today := l.now().UTC().Format(time.DateOnly); ts.day != today {
			ts.day, ts.count, ts.reservedDay = today, 0, 0
		}
		ts.count++
	}
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
