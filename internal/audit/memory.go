package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ErrNotDurable is returned by the operations of a Memory that only a
// durable Log can do (export, rotate).
var ErrNotDurable = errors.New("in-memory audit log: not a durable log")

// Memory keeps records in memory: for tests. It offers the same operations
// as a Log (Query, Ready, Prune, Rotate, Export), so an agent given one
// behaves as with a Log, except that rotation and export fail with
// ErrNotDurable.
type Memory struct {
	mu      sync.Mutex
	records []Record
	seq     uint64
	// Fail makes Append fail (to test audit_unavailable).
	Fail error
}

// Append implements Auditor. It assigns the audit id and sequence number.
func (m *Memory) Append(_ context.Context, r *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if r.AuditID == "" {
		r.AuditID = NewID()
	}
	m.seq++
	r.Seq = m.seq
	m.records = append(m.records, *r)
	return nil
}

// Close implements Auditor.
func (m *Memory) Close() error { return nil }

// Records returns a copy of what was appended.
func (m *Memory) Records() []Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Record(nil), m.records...)
}

// SetFail sets or clears the failure injected into Append.
func (m *Memory) SetFail(err error) {
	m.mu.Lock()
	m.Fail = err
	m.mu.Unlock()
}

// Query streams the records that match f to fn, in append order.
func (m *Memory) Query(f Filter, fn func(Record) error) error {
	n := 0
	for _, r := range m.Records() {
		if f.Limit > 0 && n >= f.Limit {
			return nil
		}
		if !f.match(&r) {
			continue
		}
		n++
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Ready reports the injected failure, if any.
func (m *Memory) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return fmt.Errorf("audit log not writable: %w", m.Fail)
	}
	return nil
}

// Prune removes nothing: memory holds what the test appended.
func (m *Memory) Prune() ([]string, error) { return nil, nil }

// Rotate fails with ErrNotDurable.
func (m *Memory) Rotate(context.Context) error { return ErrNotDurable }

// Export fails with ErrNotDurable.
func (m *Memory) Export(context.Context, string, uint64) (*Manifest, error) {
	return nil, ErrNotDurable
}
