package quota

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"time"
)

// The Store in an outage: serving the local share or refusing, the
// monitor that reports each switch and probes the store with backoff, and
// adding the local share's signatures back when the store returns.

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
