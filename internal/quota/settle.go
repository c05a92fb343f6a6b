package quota

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// The settle queue: lease releases and refunds, sent in pipelined batches
// off the request path.

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
