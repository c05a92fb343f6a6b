// Package audit holds the agent's audit trail (SPEC §10): the Record every
// decision produces, the Auditor interface the agent appends through, and
// the durable, hash-chained Log that implements it.
//
// The Log keeps append-only segment files (segment-000001.jsonl, …) in one
// directory, one JSON record per line. Concurrent Appends are group
// committed by a single writer goroutine: one write and one fdatasync per
// batch, and an Append returns only once its record is on disk. Every record
// carries a sequence number and the hash of its predecessor, so Verify can
// prove that nothing was edited, removed, reordered or inserted; the exact
// hash preimage is documented on [GenesisHash]. Query, Tail and Verify read a
// log directory without opening it for writing, so signerctl and the admin
// endpoint can use them on a live log.
//
// JSONLines (no fsync, no chain) and Memory (tests) are the older and the
// in-memory Auditors.
package audit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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

// JSONLines appends one JSON object per line to a file. Appends are group
// committed: callers encode their record in parallel, one writer goroutine
// writes whatever has queued with a single write, and each Append returns
// once its line has reached the file. It does not fsync or chain records:
// the durable log replaces it.
type JSONLines struct {
	mu     sync.RWMutex // guards closed against sends on reqs
	closed bool
	reqs   chan appendReq
	done   chan struct{}
	f      *os.File
}

type appendReq struct {
	line []byte
	err  chan error
}

// maxBatch bounds one group commit.
const maxBatch = 256

// OpenJSONLines opens (creating) dir/audit.jsonl for appending.
func OpenJSONLines(dir string) (*JSONLines, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "audit.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open audit log: %w", err)
	}
	j := &JSONLines{reqs: make(chan appendReq, maxBatch), done: make(chan struct{}), f: f}
	go j.writer()
	return j, nil
}

// Append implements Auditor.
func (j *JSONLines) Append(ctx context.Context, r *Record) error {
	if r.AuditID == "" {
		r.AuditID = NewID()
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	req := appendReq{line: append(line, '\n'), err: make(chan error, 1)}
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		return ErrClosed
	}
	j.reqs <- req
	j.mu.RUnlock()
	// The record is queued; wait for the write even if ctx ends, so the
	// caller never acts on an unwritten record.
	return <-req.err
}

func (j *JSONLines) writer() {
	defer close(j.done)
	var buf []byte
	batch := make([]appendReq, 0, maxBatch)
	for first := range j.reqs {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-j.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		buf = buf[:0]
		for _, r := range batch {
			buf = append(buf, r.line...)
		}
		_, err := j.f.Write(buf)
		if err != nil {
			err = fmt.Errorf("append audit record: %w", err)
		}
		for _, r := range batch {
			r.err <- err
		}
	}
}

// Close implements Auditor: queued records are written, then the file is
// closed.
func (j *JSONLines) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.reqs)
	j.mu.Unlock()
	<-j.done
	return j.f.Close()
}

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
