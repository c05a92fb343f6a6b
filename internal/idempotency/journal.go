package idempotency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stellaops/signer-agent/internal/aiosync"
	"github.com/stellaops/signer-agent/internal/fsutil"
)

// The journal: files journal-NNNNNNNNNNNN.log in Config.Dir (format in
// record.go), appended to by one writer goroutine that group commits (one
// write and one fdatasync for whatever queued meanwhile). A new file is
// started once the active one is a window old or maxFileBytes long, and a
// closed file is deleted once its last answer is a window old: it holds
// nothing a retry may still ask for. At Open the files are read, the
// unexpired and confirmed answers written into one new file, and the old
// files deleted.
//
// The active file keeps zero-filled space ahead of its writes
// (preallocBytes, written and fsynced after a commit's acknowledgements),
// so a commit's fdatasync has no size change or block allocation to
// persist: on ext4 and xfs it flushes data pages without a metadata
// journal commit, which made it the agent's single largest kernel cost
// per request (docs/perf.md §14). Readers stop at the first frame that
// does not check (a zero length is one), so the zeros read as the end of
// the file; rotation and Close cut them off.

const (
	journalPrefix = "journal-"
	journalSuffix = ".log"
	lockName      = "lock"
	// maxFileBytes starts a new file past this size.
	maxFileBytes = 64 << 20
	// queueDepth bounds the appends waiting for the writer.
	queueDepth = 256
	// preallocBytes is the zero-filled space kept ahead of the writes
	// (refilled when less than half is left).
	preallocBytes = 4 << 20
)

// ErrClosed is returned by Persist after Close.
var ErrClosed = errors.New("idempotency journal closed")

type journal struct {
	dir    string
	window time.Duration
	now    func() time.Time
	lock   *os.File
	loaded loadStats

	mu     sync.RWMutex // guards closed against sends on reqs
	closed bool
	reqs   chan *journalAppend
	done   chan struct{}

	aio *aiosync.Syncer // nil: blocking fdatasync

	// Owned by the writer goroutine (and by openJournal before it starts).
	f      *os.File
	num    int
	opened time.Time
	size   int64     // end of the last durable frame (where the next write goes)
	alloc  int64     // end of the zero-filled space (>= size)
	nopre  int       // commits to skip preallocating after it failed
	last   time.Time // the newest answer in the active file
	broken bool      // a failed write may be left in the active file
	old    []journalFile
	buf    []byte
}

type journalFile struct {
	path string
	last time.Time
}

type loadStats struct{ kept, dropped int }

type journalAppend struct {
	frame []byte
	err   chan error
}

func journalName(n int) string { return fmt.Sprintf("%s%012d%s", journalPrefix, n, journalSuffix) }

// listJournal returns the journal files of dir by number.
func listJournal(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var nums []int
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, journalPrefix) || !strings.HasSuffix(name, journalSuffix) {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, journalPrefix), journalSuffix))
		if err != nil || n < 0 || journalName(n) != name {
			continue
		}
		nums = append(nums, n)
	}
	sort.Ints(nums)
	return nums, nil
}

// openJournal reads the journal in cfg.Dir back, hands the confirmed,
// unexpired answers to restore, writes the ones it keeps into a new file
// and deletes the old ones.
func openJournal(cfg Config, restore func([]Entry) []*Entry) (_ *journal, st loadStats, err error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, st, fmt.Errorf("idempotency journal: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, st, err
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	nums, err := listJournal(cfg.Dir)
	if err != nil {
		return nil, st, fmt.Errorf("idempotency journal: %w", err)
	}
	now := cfg.Now()
	var all []Entry
	for _, n := range nums {
		b, err := os.ReadFile(filepath.Join(cfg.Dir, journalName(n)))
		if err != nil {
			return nil, st, fmt.Errorf("idempotency journal: %w", err)
		}
		es, _ := parseFrames(b)
		for _, e := range es {
			if now.Sub(e.Created) < cfg.Window {
				all = append(all, e)
			} else {
				st.dropped++
			}
		}
	}
	ids := map[string]bool{}
	for _, e := range all {
		for _, id := range e.AuditIDs {
			ids[id] = false
		}
	}
	if len(ids) > 0 && cfg.Confirm != nil {
		if err := cfg.Confirm(ids); err != nil {
			return nil, st, fmt.Errorf("idempotency journal: confirming answers against the audit log: %w", err)
		}
	}
	confirmed := all[:0]
	for _, e := range all {
		ok := true
		for _, id := range e.AuditIDs {
			ok = ok && ids[id]
		}
		if ok {
			confirmed = append(confirmed, e)
		} else {
			st.dropped++
		}
	}
	kept := restore(confirmed)
	st.kept = len(kept)
	st.dropped += len(confirmed) - len(kept)

	j := &journal{dir: cfg.Dir, window: cfg.Window, now: cfg.Now, lock: lock,
		reqs: make(chan *journalAppend, queueDepth), done: make(chan struct{})}
	if len(nums) > 0 {
		j.num = nums[len(nums)-1] + 1
	}
	sort.SliceStable(kept, func(a, b int) bool { return kept[a].Created.Before(kept[b].Created) })
	var data []byte
	for _, e := range kept {
		if data, err = appendFrame(data, e); err != nil {
			return nil, st, err
		}
		j.last = e.Created
	}
	path := filepath.Join(cfg.Dir, journalName(j.num))
	if err := fsutil.CreateFileAtomic(path, data, 0o600); err != nil {
		return nil, st, fmt.Errorf("idempotency journal: compact: %w", err)
	}
	for _, n := range nums {
		if err := os.Remove(filepath.Join(cfg.Dir, journalName(n))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, st, fmt.Errorf("idempotency journal: remove compacted file: %w", err)
		}
	}
	if err := fsutil.SyncDir(cfg.Dir); err != nil {
		return nil, st, fmt.Errorf("idempotency journal: %w", err)
	}
	if j.f, err = os.OpenFile(path, os.O_WRONLY, 0o600); err != nil {
		return nil, st, fmt.Errorf("idempotency journal: %w", err)
	}
	j.size, j.alloc, j.opened = int64(len(data)), int64(len(data)), now
	j.preallocate()
	// Without AIO (a seccomp filter, fs.aio-max-nr exhausted) commits
	// flush with a blocking fdatasync: slower, as durable.
	j.aio, _ = aiosync.New()
	go j.run()
	return j, st, nil
}

// lockDir takes an exclusive flock on DIR/lock: one agent per journal.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("idempotency journal: lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("idempotency journal %s is in use by another process: %w", dir, err)
	}
	return f, nil
}

// append makes e durable. Once queued, it is waited for even if ctx ends,
// so the caller never acts on an answer whose fate is unknown.
func (j *journal) append(ctx context.Context, e *Entry) error {
	frame, err := appendFrame(nil, e)
	if err != nil {
		return err
	}
	req := &journalAppend{frame: frame, err: make(chan error, 1)}
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		return ErrClosed
	}
	select {
	case j.reqs <- req:
	case <-ctx.Done():
		j.mu.RUnlock()
		return fmt.Errorf("idempotency journal: %w", ctx.Err())
	}
	j.mu.RUnlock()
	return <-req.err
}

func (j *journal) close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	close(j.reqs)
	j.mu.Unlock()
	<-j.done
	j.trim()
	if j.aio != nil {
		_ = j.aio.Close()
	}
	err := j.f.Close()
	if cerr := j.lock.Close(); err == nil {
		err = cerr
	}
	return err
}

// run is the writer goroutine.
func (j *journal) run() {
	defer close(j.done)
	batch := make([]*journalAppend, 0, queueDepth)
	for first := range j.reqs {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < queueDepth {
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
		err := j.commit(batch)
		for _, r := range batch {
			r.err <- err
		}
		clear(batch)
		// After the acknowledgements: the next batch waits for it, this
		// one does not.
		j.preallocate()
	}
}

// commit writes the frames of batch with one write and one fdatasync.
func (j *journal) commit(batch []*journalAppend) error {
	now := j.now()
	if j.broken || j.size >= maxFileBytes || now.Sub(j.opened) >= j.window {
		if err := j.rotate(now); err != nil && j.broken {
			return err
		}
	}
	buf := j.buf[:0]
	for _, r := range batch {
		buf = append(buf, r.frame...)
	}
	j.buf = buf
	if len(buf) > 4<<20 {
		j.buf = nil // do not keep one huge batch's buffer
	}
	_, err := j.f.WriteAt(buf, j.size)
	if err == nil {
		err = aiosync.Sync(j.aio, j.f)
	}
	if err != nil {
		// Cut the failed write (and the zeros after it) off; if that
		// fails too, the next commit starts a new file (readers stop at
		// the damaged frame anyway).
		if terr := j.f.Truncate(j.size); terr != nil {
			j.broken = true
		} else {
			j.alloc = j.size
		}
		return fmt.Errorf("idempotency journal: write: %w", err)
	}
	j.size += int64(len(buf))
	j.alloc = max(j.alloc, j.size)
	j.last = now
	return nil
}

// rotate starts the next file and deletes closed files whose answers have
// all expired.
func (j *journal) rotate(now time.Time) error {
	path := filepath.Join(j.dir, journalName(j.num+1))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("idempotency journal: new file: %w", err)
	}
	if err := f.Sync(); err == nil {
		err = fsutil.SyncDir(j.dir)
	}
	if err != nil {
		f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("idempotency journal: new file: %w", err)
	}
	j.old = append(j.old, journalFile{path: filepath.Join(j.dir, journalName(j.num)), last: j.last})
	j.trim()
	_ = j.f.Close()
	j.f, j.num, j.size, j.alloc, j.opened, j.broken = f, j.num+1, 0, 0, now, false
	keep := j.old[:0]
	removed := false
	for _, o := range j.old {
		if now.Sub(o.last) >= j.window {
			if os.Remove(o.path) == nil {
				removed = true
				continue
			}
		}
		keep = append(keep, o)
	}
	j.old = keep
	if removed {
		_ = fsutil.SyncDir(j.dir)
	}
	return nil
}

// preallocate writes zeros ahead of the active file's frames when less
// than half of preallocBytes is left, and fsyncs them, so that commits
// overwrite allocated, written blocks. A failure is not an error (commits
// then extend the file as they go); it is tried again after 1024 commits.
func (j *journal) preallocate() {
	if j.broken || j.alloc-j.size >= preallocBytes/2 || j.size >= maxFileBytes {
		return
	}
	if j.nopre > 0 {
		j.nopre--
		return
	}
	err := fsutil.WriteZeros(j.f, j.alloc, preallocBytes)
	if err == nil {
		err = j.f.Sync()
	}
	if err != nil {
		j.nopre = 1024
		if j.f.Truncate(j.alloc) != nil {
			j.broken = true
		}
		return
	}
	j.alloc += preallocBytes
}

// trim cuts the zero-filled space off the active file before it is closed,
// so closed files end with their last frame. Readers do not depend on it.
func (j *journal) trim() {
	if j.alloc > j.size && !j.broken && j.f.Truncate(j.size) == nil {
		j.alloc = j.size
		_ = j.f.Sync()
	}
}
