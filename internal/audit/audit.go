// Package audit holds the agent's audit trail (SPEC §10): the Record every
// decision produces, the Auditor interface the agent appends through, and
// the durable, hash-chained Log that implements it.
//
// The Log keeps append-only segment files (segment-000001.jsonl, …) in one
// directory, one JSON record per line. Concurrent Appends are group
// committed by a single writer goroutine: one write and one fdatasync per
// batch, and an Append returns only once its record is on disk. The
// fdatasync runs through Linux AIO where it can, so the writer waits on the
// runtime's poller instead of holding a thread (aio_linux.go), and the
// active segment ends in zero-filled, preallocated space that records
// overwrite (LogConfig.PreallocateBytes): records never contain a NUL byte,
// so the first NUL ends a segment's data. Closed segments are trimmed to
// their last record. Every record
// carries a sequence number and the hash of its predecessor, so Verify can
// prove that nothing was edited, removed, reordered or inserted; the exact
// hash preimage is documented on [GenesisHash]. Query, Tail and Verify read a
// log directory without opening it for writing, so signerctl and the admin
// endpoint can use them on a live log.
//
// Memory is an in-memory Auditor for tests.
package audit

import (
	"github.com/stellaops/signer-agent/proto"

	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
)

// Decisions.
const (
	Allow = "allow"
	Deny  = "deny"
	// Notice marks a record the log writes about itself (a recovery), not
	// a decision on a request.
	Notice = "notice"
)

// Record is one audited decision (SPEC §10); the wire type of the admin
// socket's audit stream. See proto.AuditRecord.
type Record = proto.AuditRecord

// Auditor appends records. Append returns only once the record is as
// durable as the implementation promises; an error means the decision must
// not take effect (the agent answers audit_unavailable).
type Auditor interface {
	Append(ctx context.Context, r *Record) error
	Close() error
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit log closed")

// NewID returns a random audit id.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// maxBatch bounds one group commit.
const maxBatch = 256
