package quota

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Admitter is what the agent's quota gate needs, implemented by the node's
// own Limiter (quota.store: local) and by the shared Store (quota.store:
// redis). A reservation of n artifacts (a batch) is one call and, for the
// Store, one round trip.
//
// Idempotent replays (SPEC §4.6) are counted once by not admitting them:
// the agent answers a replay from its idempotency cache before calling
// AdmitN. A request found to be a replay only after admission calls
// Ticket.Release, which gives back the daily count and the concurrency
// slot (not the rate token: an attempt is an attempt).
type Admitter interface {
	// AdmitN checks the plan for n artifacts whose largest canonical
	// statement is size bytes and reserves what it grants. A refusal is
	// a *Denial (errors.Is with ErrTooLarge, ErrExhausted, ErrThrottled,
	// ErrConcurrency, ErrOverloaded or ErrUnavailable); any other error
	// is the caller's ctx ending. A ticket may grant fewer than n (see
	// Ticket.Short): the first Granted items go ahead, the rest are
	// refused with Short.
	AdmitN(ctx context.Context, tenant string, p Plan, size int64, n int) (*Ticket, error)
	// Seed adds a tenant's signatures on a UTC day from the node's audit
	// log. With the shared store it feeds only the local share used in an
	// outage; the shared count is the store's.
	Seed(tenant string, day time.Time, count int64)
	// Mode reports how quotas are being enforced now (for readiness).
	Mode() Mode
	// Close releases what the admitter holds; tickets still open settle
	// locally after it.
	Close() error
}

var (
	_ Admitter = (*Limiter)(nil)
	_ Admitter = (*Store)(nil)
)

// Mode is how quotas are enforced at the moment.
type Mode string

// Modes. The metric label of signer_quota_store_mode is the Mode string.
const (
	// ModeNode: quota.store is local; each node enforces the plan alone.
	ModeNode Mode = "node"
	// ModeShared: the shared store counts for the whole fleet.
	ModeShared Mode = "shared"
	// ModeLocalShare: the store is unreachable and the node serves its
	// share of the plan (quota.onStoreDown: local).
	ModeLocalShare Mode = "local_share"
	// ModeUnavailable: the store is unreachable and requests are refused
	// with ErrUnavailable (quota.onStoreDown: deny).
	ModeUnavailable Mode = "unavailable"
)

// ModeChange reports a switch between ModeShared and the outage mode. The
// Store calls Options.OnModeChange once per switch, in order, from one
// goroutine.
type ModeChange struct {
	From, To Mode
	At       time.Time
	// Err is why the store counts as down (on a switch away from
	// ModeShared); nil on the way back.
	Err error
	// Down is how long the store was down (on the way back).
	Down time.Duration
}

// Reservation outcomes, the outcome label of
// signer_quota_reservations_total.
const (
	OutcomeAdmitted    = "admitted"
	OutcomePartial     = "partial" // fewer than asked were granted
	OutcomeThrottled   = "throttled"
	OutcomeConcurrency = "concurrency"
	OutcomeExhausted   = "exhausted"
	OutcomeTooLarge    = "too_large"
	OutcomeOverloaded  = "overloaded"
	OutcomeUnavailable = "unavailable"
	OutcomeError       = "error" // the caller's ctx ended
)

// Outcomes lists every reservation outcome.
var Outcomes = []string{
	OutcomeAdmitted, OutcomePartial, OutcomeThrottled, OutcomeConcurrency, OutcomeExhausted,
	OutcomeTooLarge, OutcomeOverloaded, OutcomeUnavailable, OutcomeError,
}

// Store operations, the op label of the store metrics.
const (
	OpReserve = "reserve" // the reservation script (request path)
	OpSettle  = "settle"  // a batch of lease releases and refunds (asynchronous)
	OpProbe   = "probe"   // a reconnect probe while the store is down
)

// Observer receives the Store's measurements (internal/metrics implements
// it). Methods are called on the request path and must not block.
type Observer interface {
	// StoreRoundTrip is one command or pipeline to the store.
	StoreRoundTrip(op string, d time.Duration, err error)
	// Reservation is one AdmitN's outcome in the mode that decided it.
	Reservation(mode Mode, outcome string)
	// ModeChanged is the mode after a switch (and the initial mode).
	ModeChanged(m Mode)
	// SettleDropped counts lease releases or refunds that were not sent
	// (store down or queue full); their leases expire on their own.
	SettleDropped(n int)
}

// Ticket is an admitted reservation. Exactly one of Commit, Release or
// Settle must be called; later calls do nothing. Settling never blocks on
// the store: the shared Store queues its lease release and refund.
type Ticket struct {
	// Remaining is what is left of today's allowance after this
	// reservation, or -1 when the plan has no daily limit.
	Remaining int64
	// Granted is how many artifacts were reserved (1 ≤ Granted ≤ n).
	Granted int
	// Short says why the n-Granted others were refused; nil when all
	// were granted.
	Short *Denial
	// Mode is the mode that admitted the reservation.
	Mode Mode

	settle func(signed int)
	once   sync.Once
}

// Commit records that every granted artifact was signed.
func (t *Ticket) Commit() { t.Settle(t.Granted) }

// Release gives back what was reserved: nothing was signed.
func (t *Ticket) Release() { t.Settle(0) }

// Settle records that signed of the Granted artifacts were signed (a
// batch whose items partly failed) and gives back the rest. The
// concurrency slot is freed in every case.
func (t *Ticket) Settle(signed int) {
	t.once.Do(func() {
		signed = min(max(signed, 0), t.Granted)
		if t.settle != nil {
			t.settle(signed)
		}
	})
}

// DenialOf returns the *Denial in an AdmitN error (nil for an error that
// is not a refusal, such as the caller's ctx ending).
func DenialOf(err error) *Denial {
	var d *Denial
	if errors.As(err, &d) {
		return d
	}
	return nil
}

// CheckSize refuses a statement over the plan's size limit.
func (p Plan) CheckSize(size int64) *Denial {
	if p.MaxArtifactBytes > 0 && size > p.MaxArtifactBytes {
		return &Denial{Err: ErrTooLarge, Reason: fmt.Sprintf("statement %d bytes over plan %q limit %d", size, p.Name, p.MaxArtifactBytes)}
	}
	return nil
}

func exhausted(tenant string, p Plan, used int64, retry time.Duration) *Denial {
	return &Denial{Err: ErrExhausted, RetryAfter: retry,
		Reason: fmt.Sprintf("tenant %q used %d of %d artifacts today (plan %q)", tenant, used, p.ArtifactsPerDay, p.Name)}
}

func throttled(tenant string, p Plan, retry time.Duration) *Denial {
	return &Denial{Err: ErrThrottled, RetryAfter: retry,
		Reason: fmt.Sprintf("tenant %q over %g requests/s (burst %d, plan %q)", tenant, p.QPS, p.Burst, p.Name)}
}

func concurrency(tenant string, p Plan, inflight int) *Denial {
	return &Denial{Err: ErrConcurrency, RetryAfter: time.Second,
		Reason: fmt.Sprintf("tenant %q has %d requests in flight (plan %q limit %d)", tenant, inflight, p.Name, p.Concurrency)}
}

func overloaded() *Denial {
	return &Denial{Err: ErrOverloaded, RetryAfter: time.Second, Reason: "agent-wide concurrency limit reached"}
}

// untilMidnight is the time from now to the next UTC midnight.
func untilMidnight(now time.Time) time.Duration {
	u := now.UTC()
	return time.Date(u.Year(), u.Month(), u.Day()+1, 0, 0, 0, 0, time.UTC).Sub(now)
}
