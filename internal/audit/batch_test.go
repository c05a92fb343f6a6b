package audit

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// countingFile counts the writes and syncs of the segments it wraps.
type countingFile struct {
	File
	writes, syncs *atomic.Int64
}

func (f countingFile) WriteAt(p []byte, off int64) (int, error) {
	f.writes.Add(1)
	return f.File.WriteAt(p, off)
}

func (f countingFile) Sync() error {
	f.syncs.Add(1)
	return f.File.Sync()
}

func batchOf(from, n int) []*Record {
	rs := make([]*Record, n)
	for i := range rs {
		rs[i] = rec(from + i)
	}
	return rs
}

// One batch of 64 records is one write and one fdatasync, its records
// consecutive and in order, and the chain verifies.
func TestAppendBatchIsOneWriteAndOneSync(t *testing.T) {
	var writes, syncs atomic.Int64
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, PreallocateBytes: -1, WrapFile: func(f File) File {
		return countingFile{f, &writes, &syncs}
	}})
	appendN(t, l, 0, 2)
	w0, s0, b0 := writes.Load(), syncs.Load(), l.Stats().Batches
	rs := batchOf(100, 64)
	n, err := l.AppendBatch(context.Background(), rs)
	if err != nil || n != 64 {
		t.Fatalf("AppendBatch: %d %v", n, err)
	}
	if w, s, b := writes.Load()-w0, syncs.Load()-s0, l.Stats().Batches-b0; w != 1 || s != 1 || b != 1 {
		t.Fatalf("batch took %d writes, %d syncs, %d commits; want 1 each", w, s, b)
	}
	for i, r := range rs {
		if r.Seq != uint64(3+i) || r.AuditID == "" || r.Hash == "" || r.Time.IsZero() {
			t.Fatalf("record %d: seq %d id %q hash %q", i, r.Seq, r.AuditID, r.Hash)
		}
		if i > 0 && r.PrevHash != rs[i-1].Hash {
			t.Fatalf("record %d does not chain to %d", i, i-1)
		}
	}
	l.Close()
	if rep := mustVerify(t, dir); rep.Records != 66 {
		t.Fatalf("%d records", rep.Records)
	}
	got := all(t, dir)
	for i, r := range rs {
		if got[2+i].AuditID != r.AuditID || got[2+i].RequestID != r.RequestID {
			t.Fatalf("record %d out of place", i)
		}
	}
}

// Appends racing a batch never land inside it: the batch's records are
// consecutive.
func TestAppendBatchStaysContiguousUnderConcurrency(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir})
	var wg sync.WaitGroup
	batches := make([][]*Record, 8)
	for g := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			appendN(t, l, 1000*g, 20)
		}()
		go func() {
			defer wg.Done()
			batches[g] = batchOf(1000*g+500, 16)
			if n, err := l.AppendBatch(context.Background(), batches[g]); err != nil || n != 16 {
				t.Errorf("batch %d: %d %v", g, n, err)
			}
		}()
	}
	wg.Wait()
	for g, rs := range batches {
		for i := 1; i < len(rs); i++ {
			if rs[i].Seq != rs[0].Seq+uint64(i) {
				t.Fatalf("batch %d: seqs %d and %d are not consecutive", g, rs[0].Seq, rs[i].Seq)
			}
		}
	}
	l.Close()
	if rep := mustVerify(t, dir); rep.Records != 8*36 {
		t.Fatalf("%d records", rep.Records)
	}
}

// A batch that does not fit in the rest of the active segment starts the
// next one, whole; one larger than a chunk (1 MiB) is split over writes
// and still chains.
func TestAppendBatchSegmentsAndChunks(t *testing.T) {
	t.Run("next segment", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "audit")
		l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 8 << 10, PreallocateBytes: -1})
		appendN(t, l, 0, 10) // a few KiB into the first segment
		rs := batchOf(50, 20)
		if n, err := l.AppendBatch(context.Background(), rs); err != nil || n != 20 {
			t.Fatalf("%d %v", n, err)
		}
		l.Close()
		mustVerify(t, dir)
		segs := segPaths(t, dir)
		if len(segs) < 2 {
			t.Fatalf("%d segments", len(segs))
		}
		last := lines(t, segs[len(segs)-1])
		if len(last) != 20 {
			t.Fatalf("the batch is split over segments: %d of 20 records in the last one", len(last))
		}
	})
	t.Run("larger than a chunk", func(t *testing.T) {
		var writes, syncs atomic.Int64
		dir := filepath.Join(t.TempDir(), "audit")
		l := openLog(t, LogConfig{Dir: dir, PreallocateBytes: -1, WrapFile: func(f File) File {
			return countingFile{f, &writes, &syncs}
		}})
		rs := batchOf(0, 6)
		for _, r := range rs {
			r.Reason = strings.Repeat("r", 300<<10) // 6 × 300 KiB > 1 MiB
		}
		w0 := writes.Load()
		if n, err := l.AppendBatch(context.Background(), rs); err != nil || n != 6 {
			t.Fatalf("%d %v", n, err)
		}
		if w := writes.Load() - w0; w < 2 {
			t.Fatalf("%d writes for a 1.8 MiB batch; chunks are at most 1 MiB", w)
		}
		l.Close()
		if rep := mustVerify(t, dir); rep.Records != 6 {
			t.Fatalf("%d records", rep.Records)
		}
	})
}

// Refusals: a failed write makes none of the batch durable; a record over
// the size limit refuses the batch before anything is written; Memory
// takes all or none.
func TestAppendBatchFailures(t *testing.T) {
	t.Run("disk full", func(t *testing.T) {
		fs := &faults{}
		dir := filepath.Join(t.TempDir(), "audit")
		l := openLog(t, LogConfig{Dir: dir, WrapFile: fs.wrap})
		appendN(t, l, 0, 3)
		fs.set(syscall.ENOSPC, nil, nil)
		rs := batchOf(10, 8)
		n, err := l.AppendBatch(context.Background(), rs)
		if n != 0 || !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("%d %v", n, err)
		}
		for _, r := range rs {
			if r.Seq != 0 || r.Hash != "" {
				t.Fatalf("a record of a failed batch got seq %d", r.Seq)
			}
		}
		fs.set(nil, nil, nil)
		if n, err := l.AppendBatch(context.Background(), batchOf(20, 4)); n != 4 || err != nil {
			t.Fatalf("after recovery: %d %v", n, err)
		}
		l.Close()
		if rep := mustVerify(t, dir); rep.Records != 7 {
			t.Fatalf("%d records, want 3 + 4", rep.Records)
		}
	})
	t.Run("record too large", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "audit")
		l := openLog(t, LogConfig{Dir: dir})
		rs := batchOf(0, 3)
		rs[1].Reason = strings.Repeat("x", maxRecordBytes)
		n, err := l.AppendBatch(context.Background(), rs)
		if n != 0 || !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%d %v", n, err)
		}
		l.Close()
		if rep := mustVerify(t, dir); rep.Records != 0 {
			t.Fatalf("%d records written", rep.Records)
		}
	})
	t.Run("empty", func(t *testing.T) {
		l := openLog(t, LogConfig{})
		if n, err := l.AppendBatch(context.Background(), nil); n != 0 || err != nil {
			t.Fatalf("%d %v", n, err)
		}
	})
	t.Run("memory", func(t *testing.T) {
		m := &Memory{}
		if n, err := m.AppendBatch(context.Background(), batchOf(0, 3)); n != 3 || err != nil {
			t.Fatalf("%d %v", n, err)
		}
		m.SetFail(syscall.EIO)
		if n, err := m.AppendBatch(context.Background(), batchOf(3, 3)); n != 0 || !errors.Is(err, syscall.EIO) {
			t.Fatalf("%d %v", n, err)
		}
		if got := m.Records(); len(got) != 3 || got[2].Seq != 3 {
			t.Fatalf("%+v", got)
		}
	})
}
