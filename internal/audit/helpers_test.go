package audit

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/clocktest"
)

// newClock is a fake clock that moves 1 ms per reading, starting 1 ms
// after start (2026-03-01 12:00 UTC when zero), so successive records get
// distinct times.
func newClock(start ...time.Time) *clocktest.Clock {
	t := clocktest.Epoch
	if len(start) > 0 {
		t = start[0]
	}
	return clocktest.NewStepping(t.Add(time.Millisecond), time.Millisecond)
}

// faults injects I/O errors into the segments of a Log (LogConfig.WrapFile).
type faults struct {
	mu       sync.Mutex
	writeErr error // WriteAt writes half of p, then fails with it
	syncErr  error
	truncErr error
}

func (fs *faults) set(write, sync, trunc error) {
	fs.mu.Lock()
	fs.writeErr, fs.syncErr, fs.truncErr = write, sync, trunc
	fs.mu.Unlock()
}

func (fs *faults) get() (write, sync, trunc error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.writeErr, fs.syncErr, fs.truncErr
}

func (fs *faults) wrap(f File) File { return faultFile{f, fs} }

type faultFile struct {
	File
	fs *faults
}

func (f faultFile) WriteAt(p []byte, off int64) (int, error) {
	if err, _, _ := f.fs.get(); err != nil {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, err
	}
	return f.File.WriteAt(p, off)
}

func (f faultFile) Sync() error {
	if _, err, _ := f.fs.get(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f faultFile) Truncate(size int64) error {
	if _, _, err := f.fs.get(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

// segData reads a segment without its zero-filled (preallocated) tail.
func segData(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimRight(b, "\x00")
}

// openLog opens a log in a new temporary directory.
func openLog(t testing.TB, cfg LogConfig) *Log {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = filepath.Join(t.TempDir(), "audit")
	}
	l, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// rec returns a typical record.
func rec(i int) *Record {
	return &Record{
		RequestID:      fmt.Sprintf("req-%d", i),
		Route:          "/v1/sign",
		Tenant:         []string{"acme", "globex", "initech"}[i%3],
		Decision:       []string{Allow, Deny}[i%2],
		Code:           []string{"", "forbidden"}[i%2],
		SubjectDigests: []string{"sha256:0f0e0d0c0b0a09080706050403020100f0e0d0c0b0a090807060504030201000"},
		LatencyMS:      1.25,
	}
}

// appendN appends n records and returns their seqs.
func appendN(t testing.TB, l *Log, from, n int) []uint64 {
	t.Helper()
	var seqs []uint64
	for i := from; i < from+n; i++ {
		r := rec(i)
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		seqs = append(seqs, r.Seq)
	}
	return seqs
}

// all returns every record Query finds.
func all(t testing.TB, dir string) []Record {
	t.Helper()
	var out []Record
	if err := Query(dir, Filter{}, func(r Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// mustVerify fails the test unless the chain holds.
func mustVerify(t testing.TB, dir string) *VerifyReport {
	t.Helper()
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK {
		t.Fatalf("verify: %v", rep.Break)
	}
	return rep
}

// segPaths lists the segment files of dir.
func segPaths(t testing.TB, dir string) []string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range segs {
		out = append(out, s.path)
	}
	return out
}

// lines reads a segment as lines (with their '\n').
func lines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.SplitAfter(b, []byte{'\n'})[:bytes.Count(b, []byte{'\n'})]
}

func writeLines(t testing.TB, path string, ls [][]byte) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Join(ls, nil), 0o600); err != nil {
		t.Fatal(err)
	}
}

// seqSet returns the seqs of recs.
func seqSet(recs []Record) map[uint64]bool {
	m := map[uint64]bool{}
	for _, r := range recs {
		m[r.Seq] = true
	}
	return m
}
