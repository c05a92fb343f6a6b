package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// What the node does while the shared store is down (quota.onStoreDown).
const (
	OnDownLocal = "local" // serve the node's share of the plan
	OnDownDeny  = "deny"  // refuse with ErrUnavailable (quota_unavailable)
)

// Defaults of the Store.
const (
	// DefaultLeaseTTL is how long a concurrency lease outlives a crashed
	// agent; it must exceed the longest request (the agent's write
	// timeout, 120 s by default).
	DefaultLeaseTTL = 150 * time.Second
	// UnavailableRetryAfter is the Retry-After of ErrUnavailable.
	UnavailableRetryAfter = 5 * time.Second
	defaultProbeMin       = 100 * time.Millisecond
	defaultProbeMax       = 5 * time.Second
	settleQueue           = 4096
	settleBatch           = 256
)

// StoreConfig configures a Store.
type StoreConfig struct {
	Redis RedisConfig
	// OnStoreDown is OnDownLocal or OnDownDeny (default deny: fail
	// closed).
	OnStoreDown string
	// LocalShare is the fraction of each plan a node serves on its own
	// while the store is down, in (0, 1]; required with OnDownLocal.
	LocalShare float64
	// LeaseTTL is the life of a concurrency lease (default
	// DefaultLeaseTTL).
	LeaseTTL time.Duration
	// GlobalConcurrency caps this node's requests in flight across all
	// tenants (0: unlimited); it is always local.
	GlobalConcurrency int
	// Now is the clock of the local share (default time.Now); the shared
	// counts use the store's clock.
	Now func() time.Time
	// OnModeChange is told of every switch between shared counting and
	// the outage mode, once each and in order, from one goroutine; at
	// Open too when the store cannot be reached (From is then empty).
	// The agent audits, meters and logs it. It must not call Close.
	OnModeChange func(ModeChange)
	// Observer receives metrics (nil: none).
	Observer Observer
	// ProbeMin and ProbeMax bound the reconnect backoff (defaults 100 ms
	// and 5 s); the delay doubles per failed probe, with jitter.
	ProbeMin, ProbeMax time.Duration
}

// Status is the Store's state for readiness.
type Status struct {
	Mode  Mode
	Since time.Time // when the mode began
	Err   string    // why the store is down ("" when shared)
}

// Store enforces plans across a fleet through Redis or Valkey (SPEC §16):
// each tenant's token bucket, daily count and concurrency leases live in
// the store and are checked and reserved by one script call per
// admission. While the store is unreachable the Store serves the node's
// share of the plan or refuses, as configured, and probes the store with
// backoff until it answers again.
//
// A Store owns two goroutines (the outage monitor and the settle queue);
// Close stops and joins them.
type Store struct {
	cfg      StoreConfig
	client   redis.UniversalClient
	prefix   string
	timeout  time.Duration
	leaseTTL time.Duration
	outage   Mode
	fallback *Limiter // the node's own counts; serves the local share
	obs      Observer
	nodeID   string
	seq      atomic.Uint64

	down    atomic.Bool
	kick    chan struct{}
	settleq chan settleOp
	pending atomic.Int64 // settlements queued or being sent

	mu       sync.Mutex
	status   Status
	lastErr  error
	unsynced map[string]*unsynced // local-share signatures to add back

	stop      context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

type settleOp struct {
	keys  tenantKeys
	day   int64
	delta int64
	lease string
}

type unsynced struct {
	day int64
	n   int64
}

// OpenRedis connects to the shared store. The store being down is not an
// error: the Store starts in the outage mode and reconnects in the
// background. Errors are bad settings or unreadable files.
func OpenRedis(ctx context.Context, cfg StoreConfig) (*Store, error) {
	rc := cfg.Redis.withDefaults()
	switch cfg.OnStoreDown {
	case "":
		cfg.OnStoreDown = OnDownDeny
	case OnDownLocal, OnDownDeny:
	default:
		return nil, fmt.Errorf("quota: onStoreDown %q: want local or deny", cfg.OnStoreDown)
	}
	if cfg.OnStoreDown == OnDownLocal && !(cfg.LocalShare > 0 && cfg.LocalShare <= 1) {
		return nil, fmt.Errorf("quota: localShare %v: want a fraction in (0, 1]", cfg.LocalShare)
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = DefaultLeaseTTL
	}
	if cfg.LeaseTTL < time.Millisecond {
		return nil, fmt.Errorf("quota: leaseTTL %v too short", cfg.LeaseTTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ProbeMin <= 0 {
		cfg.ProbeMin = defaultProbeMin
	}
	if cfg.ProbeMax < cfg.ProbeMin {
		cfg.ProbeMax = max(defaultProbeMax, cfg.ProbeMin)
	}
	client, err := newClient(rc)
	if err != nil {
		return nil, err
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	s := &Store{
		cfg: cfg, client: client, prefix: rc.KeyPrefix, timeout: rc.Timeout, leaseTTL: cfg.LeaseTTL,
		outage: ModeUnavailable, fallback: New(cfg.GlobalConcurrency, cfg.Now), obs: cfg.Observer,
		nodeID: hex.EncodeToString(id[:]), kick: make(chan struct{}, 1), settleq: make(chan settleOp, settleQueue),
		unsynced: map[string]*unsynced{},
	}
	if cfg.OnStoreDown == OnDownLocal {
		s.outage = ModeLocalShare
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	s.status = Status{Mode: ModeShared, Since: cfg.Now()}
	pctx, cancel := context.WithTimeout(ctx, rc.DialTimeout+rc.Timeout)
	err = s.probe(pctx)
	cancel()
	if err != nil {
		s.down.Store(true)
		s.lastErr = err
		s.status = Status{Mode: s.outage, Since: cfg.Now(), Err: err.Error()}
		s.kick <- struct{}{}
	} else {
		s.obs.ModeChanged(ModeShared)
	}
	startDown := err != nil
	bg, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.wg.Add(2)
	go func() { defer s.wg.Done(); s.monitor(bg, startDown) }()
	go func() { defer s.wg.Done(); s.settler(bg) }()
	return s, nil
}

// Close stops the background goroutines, sends the releases still queued
// (within the store timeout) and closes the connections. Tickets settled
// after Close give back their local state only; their leases expire.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.stop()
		s.wg.Wait()
		s.flushQueued()
		err = s.client.Close()
	})
	return err
}

// Seed adds a tenant's signatures on a UTC day from the node's audit log
// to the node's own count, which bounds the local share in an outage. The
// shared count is the store's and is not touched.
func (s *Store) Seed(tenant string, day time.Time, count int64) { s.fallback.Seed(tenant, day, count) }

// Mode reports ModeShared, or the outage mode while the store is down.
func (s *Store) Mode() Mode {
	if s.down.Load() {
		return s.outage
	}
	return ModeShared
}

// Status reports the mode with when it began and, while the store is
// down, why.
func (s *Store) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

// AdmitN implements Admitter: size, then this node's global concurrency,
// then one script call to the store for the tenant's daily count, bucket
// and concurrency. A store error or a store slower than the timeout
// switches to the outage mode for this request and the following ones
// until a probe succeeds.
func (s *Store) AdmitN(ctx context.Context, tenant string, p Plan, size int64, n int) (*Ticket, error) {
	if n < 1 {
		return nil, &Denial{Err: ErrInvalid, Reason: fmt.Sprintf("reservation of %d artifacts", n)}
	}
	if d := p.CheckSize(size); d != nil {
		s.obs.Reservation(s.Mode(), OutcomeTooLarge)
		return nil, d
	}
	if !p.limited() {
		// Nothing of this plan lives in the store: only this node's
		// global limit applies, and no round trip is made.
		return s.admitUnlimited(tenant, p, size, n)
	}
	if s.down.Load() {
		return s.admitOutage(ctx, tenant, p, size, n)
	}
	global := s.fallback.global
	if global != nil {
		select {
		case global <- struct{}{}:
		default:
			s.obs.Reservation(ModeShared, OutcomeOverloaded)
			return nil, overloaded()
		}
	}
	freeGlobal := func() {
		if global != nil {
			<-global
		}
	}
	keys := keysFor(s.prefix, tenant)
	lease := ""
	if p.Concurrency > 0 {
		lease = s.nodeID + ":" + strconv.FormatUint(s.seq.Add(1), 36)
	}
	r, err := s.reserve(ctx, keys, p, n, lease)
	if err != nil {
		freeGlobal()
		if ctx.Err() != nil {
			// The caller gave up; that says nothing about the store.
			s.obs.Reservation(ModeShared, OutcomeError)
			return nil, fmt.Errorf("quota store: %w", ctx.Err())
		}
		s.markDown(fmt.Errorf("quota store: reservation: %w", err))
		return s.admitOutage(ctx, tenant, p, size, n)
	}
	if r.granted == 0 {
		freeGlobal()
		var d *Denial
		switch r.reason {
		case reasonDaily:
			d = exhausted(tenant, p, r.detail, r.retry)
			s.obs.Reservation(ModeShared, OutcomeExhausted)
		case reasonConcurrency:
			d = concurrency(tenant, p, int(r.detail))
			s.obs.Reservation(ModeShared, OutcomeConcurrency)
		default:
			d = throttled(tenant, p, r.retry)
			s.obs.Reservation(ModeShared, OutcomeThrottled)
		}
		return nil, d
	}
	t := &Ticket{Remaining: r.remaining, Granted: int(r.granted), Mode: ModeShared}
	switch r.reason {
	case reasonDaily:
		t.Short = exhausted(tenant, p, p.ArtifactsPerDay, r.retry)
	case reasonRate:
		t.Short = throttled(tenant, p, r.retry)
	}
	if t.Short != nil {
		s.obs.Reservation(ModeShared, OutcomePartial)
	} else {
		s.obs.Reservation(ModeShared, OutcomeAdmitted)
	}
	day := r.day
	t.settle = func(signed int) {
		freeGlobal()
		if signed > 0 {
			s.fallback.countSigned(tenant, s.cfg.Now(), int64(signed))
		}
		refund := int64(t.Granted - signed)
		if lease != "" || refund > 0 {
			s.enqueue(settleOp{keys: keys, day: day, delta: -refund, lease: lease})
		}
	}
	return t, nil
}

// reserve runs reserveScript within the store timeout.
func (s *Store) reserve(ctx context.Context, keys tenantKeys, p Plan, n int, lease string) (reserveReply, error) {
	interval := 0.0
	if p.QPS > 0 {
		interval = 1e6 / p.QPS
	}
	burst := max(p.Burst, 1)
	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	v, err := reserveScript.Run(rctx, s.client, []string{keys.rate, keys.day, keys.leases},
		n, strconv.FormatFloat(interval, 'f', -1, 64), burst, p.Concurrency, p.ArtifactsPerDay,
		s.leaseTTL.Milliseconds(), lease).Result()
	s.obs.StoreRoundTrip(OpReserve, time.Since(start), err)
	if err != nil {
		return reserveReply{}, err
	}
	r, err := parseReserveReply(v)
	if err == nil && r.granted > int64(n) {
		err = fmt.Errorf("quota store: granted %d of %d", r.granted, n)
	}
	return r, err
}

// limited reports whether p has a limit the store keeps.
func (p Plan) limited() bool { return p.QPS > 0 || p.Concurrency > 0 || p.ArtifactsPerDay > 0 }

// admitUnlimited admits against a plan with no shared limit (no plan, or
// only a size limit): the node's global concurrency and its own count.
func (s *Store) admitUnlimited(tenant string, p Plan, size int64, n int) (*Ticket, error) {
	mode := s.Mode()
	t, d := s.fallback.admit(tenant, p, size, n)
	if d != nil {
		s.obs.Reservation(mode, outcomeOf(d))
		return nil, d
	}
	s.obs.Reservation(mode, OutcomeAdmitted)
	t.Mode = mode
	return t, nil
}

func outcomeOf(d *Denial) string {
	switch {
	case errors.Is(d, ErrTooLarge):
		return OutcomeTooLarge
	case errors.Is(d, ErrExhausted):
		return OutcomeExhausted
	case errors.Is(d, ErrConcurrency):
		return OutcomeConcurrency
	case errors.Is(d, ErrOverloaded):
		return OutcomeOverloaded
	case errors.Is(d, ErrUnavailable):
		return OutcomeUnavailable
	default:
		return OutcomeThrottled
	}
}

type nopObserver struct{}

func (nopObserver) StoreRoundTrip(string, time.Duration, error) {}
func (nopObserver) Reservation(Mode, string)                    {}
func (nopObserver) ModeChanged(Mode)                            {}
func (nopObserver) SettleDropped(int)                           {}
