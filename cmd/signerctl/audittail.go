package main

import (
	"context"
	"time"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/proto"
)

// auditPage is the most records one GET /admin/v1/audit returns (the
// agent's upper bound for limit).
const auditPage = 100000

// adminTail prints the last n records of the agent's audit log through the
// admin socket, then, with follow, the new ones every interval until ctx
// ends. The admin API serves records oldest first after a sequence number,
// so the last n are found by paging to the end with afterSeq, keeping n.
func (a *app) adminTail(ctx context.Context, n int, follow bool, interval time.Duration, fn func(audit.Record) error) error {
	ring := make([]audit.Record, 0, n)
	var last uint64
	for {
		got, err := a.auditPageAfter(ctx, last, func(r audit.Record) {
			if n == 0 {
				return
			}
			if len(ring) == n {
				copy(ring, ring[1:])
				ring = ring[:n-1]
			}
			ring = append(ring, r)
		}, &last)
		if err != nil {
			return err
		}
		if got < auditPage {
			break
		}
	}
	for _, r := range ring {
		if err := fn(r); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		var ferr error
		if _, err := a.auditPageAfter(ctx, last, func(r audit.Record) {
			if ferr == nil {
				ferr = fn(r)
			}
		}, &last); err != nil {
			return err
		}
		if ferr != nil {
			return ferr
		}
	}
}

// auditPageAfter asks for the records after seq after (one page), passes
// each to fn, moves *after to the last one seen and returns how many there
// were.
func (a *app) auditPageAfter(ctx context.Context, after uint64, fn func(audit.Record), last *uint64) (int, error) {
	count := 0
	err := a.admin().Audit(ctx, proto.AuditQuery{AfterSeq: after, Limit: auditPage}, func(r proto.AuditRecord) error {
		fn(r)
		count++
		*last = max(*last, r.Seq)
		return nil
	})
	return count, err
}
