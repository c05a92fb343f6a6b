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
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/stellaops/signer-agent/internal/peercred"
)

// Decisions.
const (
	Allow = "allow"
	Deny  = "deny"
	// Notice marks a record the log writes about itself (a recovery), not
	// a decision on a request.
	Notice = "notice"
)

// Record is one audited decision (SPEC §10). It never holds tokens, PINs,
// key material or payloads: only hashes and identifiers.
//
// Seq, PrevHash, Recovered and Hash belong to the chain: the Log assigns
// them and ignores whatever the caller put there (see [GenesisHash]). Their
// order in the struct is part of the on-disk format: Seq, PrevHash and
// Recovered come first and Hash last.
type Record struct {
	// Seq numbers the records of a log from 1, across segments.
	Seq uint64 `json:"seq,omitempty"`
	// PrevHash is the Hash of the record before, GenesisHash for seq 1.
	PrevHash string `json:"prevHash,omitempty"`
	// Recovered is set on the notice record the log writes after it had to
	// repair or abandon the end of a segment (crash, I/O error).
	Recovered []Recovery `json:"recovered,omitempty"`

	Time           time.Time      `json:"time"`
	AuditID        string         `json:"auditId"`
	RequestID      string         `json:"requestId"`
	TraceID        string         `json:"traceId,omitempty"`
	Route          string         `json:"route"`
	Peer           *peercred.Cred `json:"peer,omitempty"`
	Tenant         string         `json:"tenant,omitempty"`
	Installation   string         `json:"installation,omitempty"`
	TokenSubject   string         `json:"tokenSubject,omitempty"`
	TokenIssuer    string         `json:"tokenIssuer,omitempty"`
	TokenJTIHash   string         `json:"tokenJtiHash,omitempty"`
	PoEState       string         `json:"poeState,omitempty"`
	PoEHash        string         `json:"poeHash,omitempty"`
	Plan           string         `json:"plan,omitempty"`
	ScannerDigest  string         `json:"scannerImageDigest,omitempty"`
	ReleaseVerdict string         `json:"releaseVerdict,omitempty"`
	PredicateType  string         `json:"predicateType,omitempty"`
	SubjectDigests []string       `json:"subjectDigests,omitempty"`
	KeyIDs         []string       `json:"keyIds,omitempty"`
	KeySources     []string       `json:"keySources,omitempty"`
	PayloadDigest  string         `json:"payloadDigest,omitempty"`
	BundleHash     string         `json:"bundleHash,omitempty"`
	Decision       string         `json:"decision"`
	Code           string         `json:"code,omitempty"`
	// Gate is the gate that denied, or "sign"/"admin" for allowed records.
	Gate string `json:"gate,omitempty"`
	// Reason is the precise, operator-facing cause of a denial. It is never
	// shown to the caller.
	Reason    string  `json:"reason,omitempty"`
	LatencyMS float64 `json:"latencyMs"`
	// Admin describes an admin change (reload, rotate, revoke, bypass).
	Admin string `json:"admin,omitempty"`

	// Hash chains this record to PrevHash; it must stay the last field.
	Hash string `json:"hash,omitempty"`
}

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

// Memory keeps records in memory: for tests.
type Memory struct {
	mu      sync.Mutex
	records []Record
	// Fail makes Append fail (to test audit_unavailable).
	Fail error
}

// Append implements Auditor.
func (m *Memory) Append(_ context.Context, r *Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.Fail != nil {
		return m.Fail
	}
	if r.AuditID == "" {
		r.AuditID = NewID()
	}
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
