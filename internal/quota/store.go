package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
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

// admitOutage serves a request while the store is down.
func (s *Store) admitOutage(_ context.Context, tenant string, p Plan, size int64, n int) (*Ticket, error) {
	if s.outage == ModeUnavailable {
		s.obs.Reservation(ModeUnavailable, OutcomeUnavailable)
		return nil, &Denial{Err: ErrUnavailable, RetryAfter: UnavailableRetryAfter,
			Reason: "the shared quota store is unreachable and quota.onStoreDown is deny"}
	}
	t, d := s.fallback.admit(tenant, p.Share(s.cfg.LocalShare), size, n)
	if d != nil {
		s.obs.Reservation(ModeLocalShare, outcomeOf(d))
		return nil, d
	}
	if t.Short != nil {
		s.obs.Reservation(ModeLocalShare, OutcomePartial)
	} else {
		s.obs.Reservation(ModeLocalShare, OutcomeAdmitted)
	}
	t.Mode = ModeLocalShare
	local := t.settle
	t.settle = func(signed int) {
		local(signed)
		if signed > 0 {
			s.addUnsynced(tenant, int64(signed))
		}
	}
	return t, nil
}

// Share is the part of p one node serves alone: rates scaled by f,
// integer limits scaled and rounded up (at least 1 where the plan has
// the limit), so a fleet of 1/f nodes may exceed the plan by at most one
// per node and limit while the store is down.
func (p Plan) Share(f float64) Plan {
	if !(f > 0 && f < 1) {
		return p
	}
	up := func(v int64) int64 {
		if v <= 0 {
			return v
		}
		return max(1, int64(math.Ceil(float64(v)*f-1e-9)))
	}
	q := p
	q.QPS = p.QPS * f
	q.Burst = int(up(int64(p.Burst)))
	q.Concurrency = int(up(int64(p.Concurrency)))
	q.ArtifactsPerDay = up(p.ArtifactsPerDay)
	return q
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

// addUnsynced remembers signatures made from the local share, to be added
// to the shared daily count when the store is back.
func (s *Store) addUnsynced(tenant string, n int64) {
	day := s.cfg.Now().UTC().Unix() / 86400
	s.mu.Lock()
	defer s.mu.Unlock()
	u := s.unsynced[tenant]
	if u == nil || u.day != day {
		u = &unsynced{day: day}
		s.unsynced[tenant] = u
	}
	u.n += n
}

// markDown switches to the outage mode (once per outage) and wakes the
// monitor.
func (s *Store) markDown(err error) {
	s.mu.Lock()
	s.lastErr = err
	if s.down.CompareAndSwap(false, true) {
		s.status = Status{Mode: s.outage, Since: s.cfg.Now(), Err: err.Error()}
		s.mu.Unlock()
		select {
		case s.kick <- struct{}{}:
		default:
		}
		return
	}
	s.mu.Unlock()
}

// probe loads the scripts (on every shard), which proves the store
// answers and lets the reservation run as one EVALSHA.
func (s *Store) probe(ctx context.Context) error {
	start := time.Now()
	err := reserveScript.Load(ctx, s.client).Err()
	if err == nil {
		err = settleScript.Load(ctx, s.client).Err()
	}
	if err != nil {
		s.obs.StoreRoundTrip(OpProbe, time.Since(start), err)
		return fmt.Errorf("quota store: %w", err)
	}
	s.obs.StoreRoundTrip(OpProbe, time.Since(start), nil)
	return nil
}

// monitor reports each outage and probes the store with backoff until it
// answers, then adds back what was signed from the local share and
// returns to shared counting.
func (s *Store) monitor(ctx context.Context, startDown bool) {
	from := ModeShared
	if startDown {
		from = ""
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		if !s.down.Load() {
			continue
		}
		s.mu.Lock()
		cause, since := s.lastErr, s.status.Since
		s.mu.Unlock()
		s.emit(ModeChange{From: from, To: s.outage, At: since, Err: cause})
		from = ModeShared
		delay := s.cfg.ProbeMin
		for {
			if !sleep(ctx, jitter(delay)) {
				return
			}
			pctx, cancel := context.WithTimeout(ctx, s.timeout+s.cfg.Redis.withDefaults().DialTimeout)
			err := s.probe(pctx)
			cancel()
			if err == nil {
				break
			}
			s.mu.Lock()
			s.lastErr = err
			if s.down.Load() {
				s.status.Err = err.Error()
			}
			s.mu.Unlock()
			delay = min(2*delay, s.cfg.ProbeMax)
		}
		s.syncLocal(ctx)
		now := s.cfg.Now()
		s.mu.Lock()
		s.down.Store(false)
		s.status = Status{Mode: ModeShared, Since: now}
		s.mu.Unlock()
		s.emit(ModeChange{From: s.outage, To: ModeShared, At: now, Down: now.Sub(since)})
	}
}

// emit reports a switch (the status has already changed).
func (s *Store) emit(mc ModeChange) {
	s.obs.ModeChanged(mc.To)
	if s.cfg.OnModeChange != nil {
		s.cfg.OnModeChange(mc)
	}
}

// syncLocal adds the signatures made from the local share during the
// outage to the shared daily counts (one pipeline), so the day's total
// stays right after the store returns. Best effort: a failure leaves them
// uncounted in the store.
func (s *Store) syncLocal(ctx context.Context) {
	s.mu.Lock()
	pending := s.unsynced
	s.unsynced = map[string]*unsynced{}
	s.mu.Unlock()
	var ops []settleOp
	for tenant, u := range pending {
		if u.n > 0 {
			ops = append(ops, settleOp{keys: keysFor(s.prefix, tenant), day: u.day, delta: u.n})
		}
	}
	if len(ops) > 0 {
		_ = s.sendSettle(ctx, ops)
	}
}

// enqueue hands a lease release or refund to the settler; it never
// blocks (a full queue drops it: the lease expires, the refund is lost,
// both in the fleet's favour).
func (s *Store) enqueue(op settleOp) {
	s.pending.Add(1)
	select {
	case s.settleq <- op:
	default:
		s.pending.Add(-1)
		s.obs.SettleDropped(1)
	}
}

// settler sends queued settlements in batches, one pipeline per batch,
// off the request path.
func (s *Store) settler(ctx context.Context) {
	for {
		var op settleOp
		select {
		case <-ctx.Done():
			return
		case op = <-s.settleq:
		}
		batch := s.drain([]settleOp{op})
		if s.down.Load() {
			s.obs.SettleDropped(len(batch))
		} else if err := s.sendSettle(ctx, batch); err != nil && ctx.Err() == nil {
			s.markDown(err)
		}
		s.pending.Add(-int64(len(batch)))
	}
}

// drain adds whatever else is queued, up to settleBatch.
func (s *Store) drain(batch []settleOp) []settleOp {
	for len(batch) < settleBatch {
		select {
		case op := <-s.settleq:
			batch = append(batch, op)
		default:
			return batch
		}
	}
	return batch
}

// flushQueued sends what is still queued at Close, within the timeout.
func (s *Store) flushQueued() {
	batch := s.drain(nil)
	if len(batch) == 0 {
		return
	}
	defer s.pending.Add(-int64(len(batch)))
	if s.down.Load() {
		s.obs.SettleDropped(len(batch))
		return
	}
	_ = s.sendSettle(context.Background(), batch)
}

// settled reports whether every queued lease release and refund has been
// sent (or dropped).
func (s *Store) settled() bool { return s.pending.Load() == 0 }

func (s *Store) sendSettle(ctx context.Context, ops []settleOp) error {
	sctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	start := time.Now()
	pipe := s.client.Pipeline()
	cmds := make([]*redis.Cmd, len(ops))
	for i, op := range ops {
		cmds[i] = settleScript.EvalSha(sctx, pipe, []string{op.keys.day, op.keys.leases}, op.day, op.delta, op.lease)
	}
	_, err := pipe.Exec(sctx)
	if err != nil {
		// A server restarted since the last probe has lost the script:
		// send those again with its source.
		var again []int
		for i, c := range cmds {
			if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
				again = append(again, i)
			}
		}
		if len(again) > 0 {
			pipe = s.client.Pipeline()
			for _, i := range again {
				op := ops[i]
				cmds[i] = settleScript.Eval(sctx, pipe, []string{op.keys.day, op.keys.leases}, op.day, op.delta, op.lease)
			}
			_, _ = pipe.Exec(sctx)
			err = nil
			for _, c := range cmds {
				if c.Err() != nil {
					err = c.Err()
					break
				}
			}
		}
	}
	s.obs.StoreRoundTrip(OpSettle, time.Since(start), err)
	if err != nil {
		s.obs.SettleDropped(countFailed(cmds))
		return fmt.Errorf("quota store settle: %w", err)
	}
	return nil
}

func countFailed(cmds []*redis.Cmd) int {
	n := 0
	for _, c := range cmds {
		if c.Err() != nil {
			n++
		}
	}
	return n
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// jitter spreads d over [d/2, d) so a fleet does not probe in step.
func jitter(d time.Duration) time.Duration {
	var b [8]byte
	_, _ = rand.Read(b[:])
	u := float64(uint64(b[0])|uint64(b[1])<<8|uint64(b[2])<<16) / float64(1<<24)
	return d/2 + time.Duration(u*float64(d/2))
}

type nopObserver struct{}

func (nopObserver) StoreRoundTrip(string, time.Duration, error) {}
func (nopObserver) Reservation(Mode, string)                    {}
func (nopObserver) ModeChanged(Mode)                            {}
func (nopObserver) SettleDropped(int)                           {}
