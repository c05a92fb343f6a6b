package audit

import (
	"github.com/stellaops/signer-agent/internal/aiosync"
	"github.com/stellaops/signer-agent/internal/fsutil"
	"github.com/stellaops/signer-agent/proto"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultSegmentBytes is the segment size at which the Log starts a new
// segment when LogConfig.SegmentBytes is zero.
const DefaultSegmentBytes = 64 << 20

// DefaultPreallocateBytes is how much zero-filled space the Log keeps ahead
// of its writes when LogConfig.PreallocateBytes is zero.
const DefaultPreallocateBytes = 1 << 20

const (
	// maxRecordBytes bounds one encoded record; Append refuses larger ones.
	maxRecordBytes = 512 << 10
	// maxChunkBytes bounds one write: the writer fsyncs after each chunk,
	// so no more than this is ever unacknowledged in a segment.
	maxChunkBytes = 1 << 20
	// tornTolerance is the most Open truncates from the end of a segment as
	// an incomplete write: the chunk in flight, plus one that failed and
	// was truncated without the truncation reaching the disk (see repair).
	// More than that is damage to acknowledged records, which Open leaves
	// in place.
	tornTolerance = 2 * maxChunkBytes
)

// Errors callers branch on.
var (
	// ErrUnavailable wraps every write, fsync or segment-creation failure:
	// the record is not durable and the decision must not take effect
	// (proto code audit_unavailable).
	ErrUnavailable = errors.New("audit log unavailable")
	// ErrLocked is returned by Open when another process has the log open.
	ErrLocked = errors.New("audit log in use by another process")
	// ErrTooLarge is returned by Append for a record whose encoding passes
	// 512 KiB.
	ErrTooLarge = errors.New("audit record too large")
)

// LogConfig configures Open.
type LogConfig struct {
	// Dir holds the segments, the state file and the lock file. It is
	// created 0700 when missing.
	Dir string
	// SegmentBytes is the size past which a new segment is started;
	// DefaultSegmentBytes when zero. A record is never split: a segment
	// may pass SegmentBytes by one record when that record alone is larger.
	SegmentBytes int64
	// Retention says which closed segments Prune deletes.
	Retention Retention
	// Now is the clock for record times, retention and export marks;
	// time.Now when nil.
	Now func() time.Time
	// WrapFile, when set, wraps every segment the Log opens for writing,
	// so tests can inject ENOSPC or EIO. f is the real segment file; the
	// wrapper should delegate to it.
	WrapFile func(f File) File
	// PreallocateBytes is the zero-filled space the Log writes ahead of
	// the records in the active segment, in steps of this size
	// (DefaultPreallocateBytes when zero; negative turns it off). Records
	// then overwrite blocks that are already allocated and inside the file
	// size, so a commit's fdatasync has no allocation or size change to
	// persist: on a journalling file system no journal commit, on any file
	// system fewer writes per flush. It buys nothing on copy-on-write file
	// systems (btrfs, ZFS), which allocate on every overwrite. Readers
	// treat the first NUL byte in a segment as the end of its data.
	PreallocateBytes int64
	// BlockingSync makes segment flushes plain, blocking fdatasync(2)
	// calls instead of Linux AIO flushes waited for on the poller (see
	// Stats.SyncMode). Where AIO is not available the Log falls back to
	// blocking flushes by itself.
	BlockingSync bool
	// Observer, when set, is told about commits and maintenance events.
	Observer Observer
	// Forwarder, when set, gets the lines of every commit once they are
	// durable (JournalForwarder ships them to the systemd journal).
	Forwarder Forwarder
	// MinFreeBytes is the room the audit volume must have for Ready to
	// report the log ready (DefaultMinFreeBytes when zero; negative turns
	// the space check off, for file systems whose statfs says nothing
	// useful). See Ready.
	MinFreeBytes int64
}

// Retention says which closed segments Prune may delete. Segments are only
// ever deleted from the oldest end, so what remains still chains (Verify
// checks the first remaining record against the recorded prune anchor).
// The active segment and the newest segment holding records are never
// deleted.
type Retention struct {
	// MaxAge deletes segments closed longer ago than this (file mtime);
	// zero keeps them.
	MaxAge time.Duration
	// MaxBytes deletes the oldest segments while all segments together
	// pass this size; zero means no limit.
	MaxBytes int64
	// DeleteUnexported lets retention delete segments that Export has not
	// shipped. By default retention stops at the first unexported segment.
	DeleteUnexported bool
}

// Recovery reasons.
const (
	// RecoveryTruncated: an incomplete write at the end of a segment (a
	// crash mid-write) was cut off. Those bytes were never acknowledged.
	RecoveryTruncated = "truncated"
	// RecoveryAbandoned: bytes past Offset could not be truncated (I/O
	// error); they stay in the file and are not part of the chain. The
	// log went on in a new segment.
	RecoveryAbandoned = "abandoned"
	// RecoveryCorrupt: Open found invalid data in the segment followed by
	// more than one write could leave: acknowledged records were damaged.
	// The file is left as it is for inspection; Verify reports the break.
	RecoveryCorrupt = "corrupt"
)

// Recovery describes one repair of a segment's end.
type Recovery = proto.AuditRecovery

// Log is the durable, hash-chained audit log (see the package doc and
// GenesisHash). It implements Auditor. All methods are safe for concurrent
// use.
type Log struct {
	cfg     LogConfig
	dir     string
	segSize int64
	lock    *os.File
	obs     Observer
	aio     *aiosync.Syncer // nil: blocking fdatasync
	syncWhy string          // why aio is nil, for Stats

	mu     sync.RWMutex // guards closed against sends on reqs
	closed bool
	reqs   chan *request
	done   chan struct{}

	// Owned by the writer goroutine (and by Open before it starts).
	f        File
	num      int    // active segment
	off      int64  // end of the last durable record in the active segment
	alloc    int64  // size of the active segment: off plus zero-filled space
	prealloc int64  // preallocation step, 0 when off
	minFree  int64  // Ready's space threshold, 0 when off
	nopre    int    // commits to skip preallocating after it failed
	seq      uint64 // last durable record
	hash     string // its hash
	broken   bool   // the active segment may hold a failed write past off
	pending  []Recovery
	buf      []byte
	line     []byte
	body     []byte
	closeErr error

	activeNum  atomic.Int64 // num, for Prune and Export
	lastRecNum atomic.Int64 // the newest segment holding a record

	maint     sync.Mutex // serialises Prune, Export and the state file
	pruneCh   chan struct{}
	stop      chan struct{}
	maintDone chan struct{}

	st counters
}

var _ Auditor = (*Log)(nil)

// request is one Append, one AppendBatch or a control operation for the
// writer. The records of one request go into one write and one fdatasync
// whenever they fit in a chunk (see commit).
type request struct {
	op   int
	recs []pendingRecord
	// done is how many of recs are durable; set by the writer before it
	// answers on err.
	done int
	err  chan error
}

// pendingRecord is one record of a request: its encoding without chain
// fields and the chain fields the writer assigns.
type pendingRecord struct {
	pre  []byte
	seq  uint64
	prev string
	hash string
}

const (
	opAppend = iota
	opRotate
	opFlush
)

// Open opens (creating) the log in cfg.Dir and recovers it: an incomplete
// write at the end of the last segment is truncated away and recorded in a
// Notice record (see Recovery). Acknowledged records are never removed.
// Only one process may have a log open.
func Open(cfg LogConfig) (*Log, error) {
	if cfg.Dir == "" {
		return nil, errors.New("audit log: no directory")
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	if cfg.PreallocateBytes == 0 {
		cfg.PreallocateBytes = DefaultPreallocateBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinFreeBytes == 0 {
		cfg.MinFreeBytes = DefaultMinFreeBytes
	}
	if _, err := os.Stat(cfg.Dir); err != nil {
		if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("audit dir: %w", err)
		}
		_ = syncDir(filepath.Dir(cfg.Dir)) // best effort: the entry of the new directory
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	l := &Log{
		cfg:       cfg,
		dir:       cfg.Dir,
		segSize:   cfg.SegmentBytes,
		prealloc:  max(cfg.PreallocateBytes, 0),
		minFree:   max(cfg.MinFreeBytes, 0),
		lock:      lock,
		obs:       cfg.Observer,
		reqs:      make(chan *request, maxBatch),
		done:      make(chan struct{}),
		pruneCh:   make(chan struct{}, 1),
		stop:      make(chan struct{}),
		maintDone: make(chan struct{}),
	}
	if l.obs == nil {
		l.obs = nopObserver{}
	}
	if cfg.BlockingSync {
		l.syncWhy = "configured"
	} else if l.aio, err = aiosync.New(); err != nil {
		l.syncWhy = err.Error()
	}
	if err := l.recover(); err != nil {
		if l.f != nil {
			l.f.Close()
		}
		if l.aio != nil {
			l.aio.Close()
		}
		lock.Close()
		return nil, err
	}
	l.publishRoom()
	go l.run()
	go l.maintain()
	if len(l.pending) > 0 {
		// Record the repair now, so it is visible even if nothing else is
		// ever appended. When the disk refuses, the notice stays pending
		// and goes first into the next successful commit.
		_ = l.control(context.Background(), opFlush)
	}
	l.kickPrune()
	return l, nil
}

// Append implements Auditor: it returns once r is on disk (written and
// fdatasynced) or with an error wrapping ErrUnavailable. It sets r.Seq,
// r.PrevHash and r.Hash on success, r.AuditID when empty and r.Time (from
// LogConfig.Now) when zero. Once queued, a record is waited for even if
// ctx ends, so the caller never acts on a record whose fate is unknown.
func (l *Log) Append(ctx context.Context, r *Record) error {
	start := time.Now()
	pre, err := l.prepare(r)
	if err != nil {
		l.st.failed.Add(1)
		return fmt.Errorf("append audit record: %w", err)
	}
	req := &request{op: opAppend, recs: []pendingRecord{{pre: pre}}, err: make(chan error, 1)}
	if err := l.send(ctx, req); err != nil {
		l.st.failed.Add(1)
		return err
	}
	if err := <-req.err; err != nil {
		l.st.failed.Add(1)
		return err
	}
	p := &req.recs[0]
	r.Seq, r.PrevHash, r.Hash, r.Recovered = p.seq, p.prev, p.hash, nil
	l.st.lastAppend.Store(int64(time.Since(start)))
	return nil
}

// prepare sets r's AuditID and Time when empty and returns its JSON without
// the chain fields, which the writer fills in.
func (l *Log) prepare(r *Record) ([]byte, error) {
	if r.AuditID == "" {
		r.AuditID = NewID()
	}
	if r.Time.IsZero() {
		r.Time = l.cfg.Now()
	}
	c := *r
	c.Seq, c.PrevHash, c.Recovered, c.Hash = 0, "", nil, ""
	pre, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	if len(pre) > maxRecordBytes {
		return nil, fmt.Errorf("%w (%d bytes)", ErrTooLarge, len(pre))
	}
	return pre, nil
}

// Rotate closes the active segment and starts a new one, so that Export
// can ship everything appended so far. It does nothing when the active
// segment is empty.
func (l *Log) Rotate(ctx context.Context) error { return l.control(ctx, opRotate) }

func (l *Log) control(ctx context.Context, op int) error {
	req := &request{op: op, err: make(chan error, 1)}
	if err := l.send(ctx, req); err != nil {
		return err
	}
	return <-req.err
}

func (l *Log) send(ctx context.Context, req *request) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	select {
	case l.reqs <- req:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("append audit record: %w", ctx.Err())
	}
}

// Close implements Auditor: queued records are committed, the active
// segment is closed and the directory lock released.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	close(l.reqs)
	l.mu.Unlock()
	<-l.done
	close(l.stop)
	<-l.maintDone
	err := l.closeErr
	if l.aio != nil {
		_ = l.aio.Close()
	}
	if cerr := l.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// run is the writer goroutine: it takes whatever has queued (up to
// maxBatch requests) and commits it with as few writes and fsyncs as the
// segment and chunk limits allow.
func (l *Log) run() {
	defer close(l.done)
	batch := make([]*request, 0, maxBatch)
	for first := range l.reqs {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case r, ok := <-l.reqs:
				if !ok {
					break drain
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		start := 0
		for i, r := range batch {
			if r.op == opAppend {
				continue
			}
			l.commit(batch[start:i])
			r.err <- l.do(r.op)
			start = i + 1
		}
		l.commit(batch[start:])
		clear(batch)
		// After the acknowledgements: the next batch waits for it, this
		// one does not.
		l.preallocate()
		l.publishRoom()
	}
	if l.f != nil {
		l.trim()
		l.closeErr = l.f.Close()
		l.f = nil
	}
}

func (l *Log) do(op int) error {
	switch op {
	case opFlush:
		return l.commit(nil)
	case opRotate:
		if err := l.ready(); err != nil {
			return err
		}
		if l.off == 0 {
			return nil
		}
		return l.rotate()
	}
	return fmt.Errorf("audit log: unknown operation %d", op)
}

// commit makes reqs durable, preceded by a Notice record when a recovery
// is pending, and answers every request. Records go into chunks of at most
// maxChunkBytes; each chunk is one write and one fdatasync, so a record is
// acknowledged only once it and everything before it are on disk. The
// records of one request (an AppendBatch) go into one chunk, and into one
// segment, whenever they fit in a chunk: a request that does not fit after
// the records already in the chunk starts the next chunk, and one that does
// not fit in the rest of the active segment starts the next segment. Only
// a request larger than a chunk is split over several, record by record.
// A chunk that fails is cut off the segment again (see ready) and fails
// every request from it on; request.done tells how many records of the
// first failed request were already durable.
func (l *Log) commit(reqs []*request) error {
	if len(reqs) == 0 && len(l.pending) == 0 {
		return nil
	}
	t0 := time.Now()
	// Counted before any acknowledgement, so a caller that sees its ack
	// sees its commit counted.
	l.st.batches.Add(1)
	var (
		err     error
		i, k    int // next request, and its next record (k > 0: split over chunks)
		records int
		bytes   int
	)
	for err == nil && (i < len(reqs) || len(l.pending) > 0) {
		if err = l.ready(); err != nil {
			break
		}
		buf := l.buf[:0]
		seq, prev := l.seq, l.hash
		notice := false
		j, jk := i, k
		fits := func(n int) bool {
			end := l.off + int64(len(buf))
			return end == 0 || end+int64(n) <= l.segSize
		}
		if len(l.pending) > 0 {
			var h string
			l.line, h = appendLine(l.line[:0], prev, l.noticeBody(seq+1, prev))
			if fits(len(l.line)) {
				buf = append(buf, l.line...)
				seq, prev, notice = seq+1, h, true
			}
		}
		// encode appends record e of request r to buf and advances the chain.
		encode := func(r *request, e int) {
			p := &r.recs[e]
			l.body = appendBody(l.body[:0], seq+1, prev, p.pre)
			var h string
			l.line, h = appendLine(l.line[:0], prev, l.body)
			buf = append(buf, l.line...)
			p.seq, p.prev, p.hash = seq+1, prev, h
			seq, prev = seq+1, h
		}
	fill:
		for j < len(reqs) && (notice || len(l.pending) == 0) {
			r := reqs[j]
			mark, seq0, prev0 := len(buf), seq, prev
			for e := jk; e < len(r.recs); e++ {
				encode(r, e)
			}
			start := l.off + int64(mark)
			inSegment := start == 0 || l.off+int64(len(buf)) <= l.segSize
			inChunk := len(buf) <= maxChunkBytes || (mark == 0 && len(r.recs)-jk == 1)
			if inSegment && inChunk {
				j, jk = j+1, 0
				continue
			}
			// The request's remaining records do not all fit: take them
			// back, and end the chunk before them unless the chunk is
			// empty.
			buf, seq, prev = buf[:mark], seq0, prev0
			if mark > 0 || !inSegment {
				break // a new chunk, or (empty chunk) a new segment
			}
			// Alone in an empty chunk and still larger than one: split it,
			// record by record, over chunks.
			for jk < len(r.recs) {
				p := &r.recs[jk]
				l.body = appendBody(l.body[:0], seq+1, prev, p.pre)
				var h string
				l.line, h = appendLine(l.line[:0], prev, l.body)
				if !fits(len(l.line)) || (len(buf) > 0 && len(buf)+len(l.line) > maxChunkBytes) {
					break fill
				}
				buf = append(buf, l.line...)
				p.seq, p.prev, p.hash = seq+1, prev, h
				seq, prev = seq+1, h
				jk++
			}
			j, jk = j+1, 0
			break
		}
		l.buf = buf
		if len(buf) == 0 {
			// The next record (or request) does not fit in the active
			// segment.
			err = l.rotate()
			continue
		}
		if err = l.write(buf); err != nil {
			break
		}
		l.seq, l.hash = seq, prev
		l.off += int64(len(buf))
		l.lastRecNum.Store(int64(l.num))
		if notice {
			l.st.recoveries.Add(uint64(len(l.pending)))
			l.pending = nil
		}
		n := countRecords(reqs, i, k, j, jk)
		records += n
		bytes += len(buf)
		// Counters first, so a caller that sees its ack sees them too.
		l.st.appends.Add(uint64(n))
		l.st.bytes.Add(uint64(len(buf)))
		l.st.lastSeq.Store(l.seq)
		l.st.unavailable.Store(false)
		for _, r := range reqs[i:j] {
			r.done = len(r.recs)
			r.err <- nil
		}
		if jk > 0 {
			reqs[j].done = jk
		}
		if l.cfg.Forwarder != nil {
			l.cfg.Forwarder.Forward(buf)
		}
		i, k = j, jk
	}
	d := time.Since(t0)
	l.st.lastCommit.Store(int64(d))
	if err != nil {
		l.st.unavailable.Store(true)
	}
	failed := 0
	for _, r := range reqs[i:] {
		failed += len(r.recs) - r.done
		r.err <- err
	}
	l.obs.Committed(Commit{Records: records, Failed: failed, Bytes: bytes, Latency: d, Err: err})
	return err
}

// countRecords counts the records from request i, record k, up to (not
// including) request j, record jk.
func countRecords(reqs []*request, i, k, j, jk int) int {
	n := jk - k
	for _, r := range reqs[i:j] {
		n += len(r.recs)
	}
	return n
}

// noticeBody encodes the Notice record for the pending recoveries.
func (l *Log) noticeBody(seq uint64, prev string) []byte {
	r := Record{
		Seq:       seq,
		PrevHash:  prev,
		Recovered: l.pending,
		Time:      l.cfg.Now(),
		AuditID:   NewID(),
		Route:     "audit",
		Decision:  Notice,
		Gate:      "audit",
		Reason:    "audit log repaired the end of a segment",
	}
	b, _ := json.Marshal(&r) // a Record always encodes
	return b
}

// write appends one chunk and fdatasyncs it. On failure the segment is cut
// back to the last durable record at once; if that fails too, the log is
// broken until ready repairs it.
func (l *Log) write(buf []byte) error {
	_, err := l.f.WriteAt(buf, l.off)
	if err == nil {
		l.alloc = max(l.alloc, l.off+int64(len(buf)))
		l.st.fsyncs.Add(1)
		err = l.f.Sync()
	}
	if err == nil {
		return nil
	}
	l.broken = true
	l.repair()
	return fmt.Errorf("%w: write %s: %w", ErrUnavailable, segmentName(l.num), err)
}

// repair cuts a failed write off the active segment.
func (l *Log) repair() {
	if l.cut() {
		l.broken = false
	}
}

// cut truncates the active segment to the last durable record (a failed
// write, or zero-filled space, goes) and reports whether it could. The
// fdatasync after the truncation is best effort: if it fails, the next
// commit's fdatasync persists the new size with the new records, and a
// crash before that leaves at most one write's worth of unacknowledged
// bytes, which Open cuts, or zero-filled space, which readers skip.
func (l *Log) cut() bool {
	if err := l.f.Truncate(l.off); err != nil {
		l.obs.Event(Event{Kind: EventWriteFailed, Segment: segmentName(l.num), Err: err})
		return false
	}
	l.alloc = l.off
	l.st.fsyncs.Add(1)
	if err := l.f.Sync(); err != nil {
		l.obs.Event(Event{Kind: EventWriteFailed, Segment: segmentName(l.num), Err: err})
	}
	return true
}

// ready makes sure there is an active segment whose end is the last
// durable record. A segment that still holds a failed write it cannot cut
// off is abandoned: the bytes stay, a Recovery records where its records
// end, and the log goes on in a new segment whose first record (the Notice)
// chains to the last durable record.
func (l *Log) ready() error {
	if l.f != nil && l.broken {
		l.repair()
		if l.broken {
			l.abandon()
		}
	}
	if l.f != nil {
		return nil
	}
	return l.openSegment()
}

func (l *Log) abandon() {
	name := segmentName(l.num)
	path := filepath.Join(l.dir, name)
	var size int64
	if fi, err := os.Stat(path); err == nil {
		size = fi.Size()
	}
	_ = l.f.Close()
	l.f, l.broken = nil, false
	if l.off == 0 && os.Remove(path) == nil {
		// It held no record: start it again under the same number.
		_ = syncDir(l.dir)
		return
	}
	l.pending = append(l.pending, Recovery{
		Segment:        name,
		Offset:         l.off,
		AbandonedBytes: max(size-l.off, 0),
		Reason:         RecoveryAbandoned,
		Detail:         "a write failed and could not be cut off",
	})
	l.obs.Event(Event{Kind: EventAbandoned, Segment: name})
	l.num++
}

// rotate closes the active segment (everything in it is durable) and
// starts the next one.
func (l *Log) rotate() error {
	l.trim()
	if err := l.f.Close(); err != nil {
		l.obs.Event(Event{Kind: EventWriteFailed, Segment: segmentName(l.num), Err: err})
	}
	l.f = nil
	l.num++
	if err := l.openSegment(); err != nil {
		return err
	}
	l.st.rotations.Add(1)
	l.obs.Event(Event{Kind: EventRotated, Segment: segmentName(l.num)})
	l.kickPrune()
	return nil
}

// openSegment creates segment l.num (or reopens it when a previous attempt
// left it empty), fsyncs it and the directory, and makes it active.
func (l *Log) openSegment() error {
	name := segmentName(l.num)
	f, err := os.OpenFile(filepath.Join(l.dir, name), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("%w: create %s: %w", ErrUnavailable, name, err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != 0 {
		f.Close()
		if err == nil {
			err = errors.New("new segment is not empty")
		}
		return fmt.Errorf("%w: create %s: %w", ErrUnavailable, name, err)
	}
	wf := l.wrap(f)
	l.st.fsyncs.Add(2)
	err = wf.Sync()
	if err == nil {
		err = syncDir(l.dir)
	}
	if err != nil {
		wf.Close()
		return fmt.Errorf("%w: create %s: %w", ErrUnavailable, name, err)
	}
	l.f, l.off, l.alloc, l.nopre = wf, 0, 0, 0
	l.activeNum.Store(int64(l.num))
	l.preallocate()
	return nil
}

// preallocate keeps zero-filled space ahead of the records in the active
// segment (see LogConfig.PreallocateBytes): when less than half a step is
// left, it writes another step of zeros past the end and makes it durable.
// It is best effort: when it fails (a full disk) the zeros written are cut
// off again, records extend the file as they would without it, and it is
// tried again only after 1024 commits or in the next segment.
func (l *Log) preallocate() {
	if l.prealloc == 0 || l.f == nil || l.broken || l.alloc >= l.segSize || l.alloc-l.off >= l.prealloc/2 {
		return
	}
	if l.nopre > 0 {
		l.nopre--
		return
	}
	n := min(l.prealloc, l.segSize-l.alloc)
	err := fsutil.WriteZeros(l.f, l.alloc, n)
	if err == nil {
		l.st.fsyncs.Add(1)
		err = l.f.Sync()
	}
	if err != nil {
		l.nopre = 1024
		_ = l.f.Truncate(l.alloc)
		l.obs.Event(Event{Kind: EventPreallocFailed, Segment: segmentName(l.num), Err: err})
		return
	}
	l.alloc += n
	l.st.prealloc.Add(uint64(n))
}

// trim cuts the zero-filled space off the active segment before it is
// closed, so closed segments end with their last record. Readers do not
// depend on it: a segment that keeps its zeros (trim failed, or a crash)
// reads the same.
func (l *Log) trim() {
	if l.alloc > l.off && !l.broken {
		l.cut()
	}
}

func (l *Log) wrap(f *os.File) File {
	var wf File = osFile{File: f, aio: l.aio}
	if l.cfg.WrapFile != nil {
		wf = l.cfg.WrapFile(wf)
	}
	return wf
}
