package audit

import (
	"context"
	"fmt"
	"time"
)

// AppendBatch makes rs durable as one group: the records are written
// consecutively, in order, with one write and one fdatasync whenever
// together they fit in one chunk (1 MiB of encoded records: any batch of
// ordinary records) and in one segment (a batch that does not fit in the
// rest of the active segment starts the next one). Only a batch larger
// than a chunk is split over several writes.
//
// It returns how many records, from the first, are durable: len(rs) and
// nil, or fewer and an error wrapping ErrUnavailable (or ErrTooLarge, or
// the ctx error before anything was queued, with n = 0). Like Append it
// sets each durable record's Seq, PrevHash and Hash, and AuditID and Time
// when empty; once queued, the batch is waited for even if ctx ends.
func (l *Log) AppendBatch(ctx context.Context, rs []*Record) (int, error) {
	if len(rs) == 0 {
		return 0, nil
	}
	start := time.Now()
	req := &request{op: opAppend, recs: make([]pendingRecord, len(rs)), err: make(chan error, 1)}
	for i, r := range rs {
		pre, err := l.prepare(r)
		if err != nil {
			l.st.failed.Add(uint64(len(rs)))
			return 0, fmt.Errorf("append audit batch: record %d: %w", i, err)
		}
		req.recs[i].pre = pre
	}
	if err := l.send(ctx, req); err != nil {
		l.st.failed.Add(uint64(len(rs)))
		return 0, err
	}
	err := <-req.err
	for i := 0; i < req.done; i++ {
		p := &req.recs[i]
		rs[i].Seq, rs[i].PrevHash, rs[i].Hash, rs[i].Recovered = p.seq, p.prev, p.hash, nil
	}
	if err != nil {
		l.st.failed.Add(uint64(len(rs) - req.done))
		return req.done, err
	}
	l.st.lastAppend.Store(int64(time.Since(start)))
	return len(rs), nil
}

// AppendBatch implements the Log's AppendBatch in memory: all records or,
// with Fail set, none.
func (m *Memory) AppendBatch(_ context.Context, rs []*Record) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return 0, m.Fail
	}
	for _, r := range rs {
		if r.AuditID == "" {
			r.AuditID = NewID()
		}
		m.seq++
		r.Seq = m.seq
		m.records = append(m.records, *r)
	}
	return len(rs), nil
}
