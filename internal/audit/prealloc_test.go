package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// Records land in zero-filled space that is already inside the file: the
// size does not move while there is room, a new step is written when half
// of it is used, and closed segments end with their last record.
func TestPreallocation(t *testing.T) {
	const step = 16 << 10
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 64 << 10, PreallocateBytes: step})
	seg := filepath.Join(dir, segmentName(1))
	if got := fileSize(t, seg); got != step {
		t.Fatalf("new segment is %d bytes, want one step (%d) of zero-filled space", got, step)
	}
	// While more than half a step is free, appends do not change the size.
	n := 0
	for ; int64(len(segData(t, seg)))+2<<10 < step/2; n++ {
		appendN(t, l, n, 1)
		if got := fileSize(t, seg); got != step {
			t.Fatalf("after %d records the segment is %d bytes: appends extended the file", n+1, got)
		}
	}
	if n < 5 {
		t.Fatalf("only %d records fit; the test tests nothing", n)
	}
	if rep := mustVerify(t, dir); rep.Records != uint64(n) {
		t.Fatalf("live verify: %+v", rep)
	}
	if recs := all(t, dir); len(recs) != n {
		t.Fatalf("live query: %d records, want %d", len(recs), n)
	}
	// Past half a step, the next commit adds a step (after its
	// acknowledgements: a flush request waits for it).
	appendN(t, l, n, 4)
	if err := l.control(context.Background(), opFlush); err != nil {
		t.Fatal(err)
	}
	if got := fileSize(t, seg); got != 2*step {
		t.Fatalf("segment is %d bytes, want %d after crossing half a step", got, 2*step)
	}
	// Fill a few segments: the closed ones carry no zeros.
	appendN(t, l, n+4, 400)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	paths := segPaths(t, dir)
	if len(paths) < 3 {
		t.Fatalf("%d segments; the test needs rotations", len(paths))
	}
	for _, p := range paths {
		b, _ := os.ReadFile(p)
		if len(b) == 0 || b[len(b)-1] != '\n' || bytes.IndexByte(b, 0) >= 0 {
			t.Fatalf("%s: closed segment keeps zero-filled space (%d bytes)", filepath.Base(p), len(b))
		}
		if int64(len(b)) > 64<<10 {
			t.Fatalf("%s is %d bytes, over SegmentBytes", filepath.Base(p), len(b))
		}
	}
	if rep := mustVerify(t, dir); rep.Records != uint64(n+404) {
		t.Fatalf("%+v", rep)
	}
	if st := l.Stats(); st.PreallocatedBytes < 3*step {
		t.Fatalf("PreallocatedBytes %d", st.PreallocatedBytes)
	}
}

func TestPreallocationOff(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, PreallocateBytes: -1})
	appendN(t, l, 0, 5)
	seg := segPaths(t, dir)[0]
	if b, _ := os.ReadFile(seg); bytes.IndexByte(b, 0) >= 0 {
		t.Fatal("zero-filled space with preallocation off")
	}
	if st := l.Stats(); st.PreallocatedBytes != 0 {
		t.Fatalf("PreallocatedBytes %d", st.PreallocatedBytes)
	}
}

// zeroFails refuses writes of zero-filled space, as a full disk refuses
// the step past the end, and lets records through.
type zeroFails struct{ File }

func (f zeroFails) WriteAt(p []byte, off int64) (int, error) {
	if len(p) > 0 && bytes.Count(p, []byte{0}) == len(p) {
		n, _ := f.File.WriteAt(p[:len(p)/2], off)
		return n, syscall.ENOSPC
	}
	return f.File.WriteAt(p, off)
}

// Preallocation is best effort: when it fails the half-written zeros are
// cut off, the event is reported, and records go on as without it.
func TestPreallocationFailureIsBestEffort(t *testing.T) {
	o := &recordingObserver{}
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, Observer: o, WrapFile: func(f File) File { return zeroFails{f} }})
	appendN(t, l, 0, 20)
	seg := segPaths(t, dir)[0]
	if b, _ := os.ReadFile(seg); bytes.IndexByte(b, 0) >= 0 || bytes.Count(b, []byte{'\n'}) != 20 {
		t.Fatalf("segment after a failed preallocation: %d bytes, %d records", len(b), bytes.Count(b, []byte{'\n'}))
	}
	var failed int
	o.mu.Lock()
	for _, e := range o.events {
		if e.Kind == EventPreallocFailed && errors.Is(e.Err, syscall.ENOSPC) {
			failed++
		}
	}
	o.mu.Unlock()
	if failed != 1 {
		t.Fatalf("%d prealloc_failed events, want 1 (then a back-off)", failed)
	}
	if st := l.Stats(); st.Unavailable || st.Failed != 0 || st.PreallocatedBytes != 0 {
		t.Fatalf("stats %+v", st)
	}
	l.Close()
	mustVerify(t, dir)
}
