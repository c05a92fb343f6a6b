package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
)

// crashEnv makes the test binary run crashHelper instead of the tests.
const crashEnv = "AUDIT_CRASH_HELPER_DIR"

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashHelper(dir)
		return
	}
	os.Exit(m.Run())
}

// crashHelper appends from 16 goroutines until killed, printing the seq of
// every acknowledged record.
//
// Its segments write in 64-byte pieces, one write(2) each, so that the kill
// often lands in the middle of a commit, as a power cut would.
func crashHelper(dir string) {
	l, err := Open(LogConfig{Dir: dir, SegmentBytes: 16 << 10, WrapFile: func(f File) File { return piecewiseFile{f} }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex
	for g := 0; g < 16; g++ {
		go func() {
			for i := 0; ; i++ {
				r := rec(i)
				if err := l.Append(context.Background(), r); err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(3)
				}
				mu.Lock()
				// One write(2) per line: once it returns, the parent has it.
				os.Stdout.WriteString(strconv.FormatUint(r.Seq, 10) + "\n")
				mu.Unlock()
			}
		}()
	}
	select {}
}

type piecewiseFile struct{ File }

func (f piecewiseFile) WriteAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := f.File.WriteAt(p[n:min(n+64, len(p))], off+int64(n))
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// A process SIGKILLed while appending loses no acknowledged record, and the
// reopened log verifies. Five crashes in a row, each on the log the last
// one left.
func TestCrashLosesNoAcknowledgedRecord(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	acked := map[uint64]bool{}
	for round := 0; round < 5; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		n := 0
		for sc.Scan() {
			seq, err := strconv.ParseUint(sc.Text(), 10, 64)
			if err != nil {
				t.Fatalf("helper said %q", sc.Text())
			}
			acked[seq] = true
			if n++; n == 1500 {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("helper ended without being killed: %v", err)
		}
		if n < 1500 {
			t.Fatalf("helper acknowledged only %d records", n)
		}
	}
	// Reopen: recovery runs (and records any torn write), then verify.
	l, err := Open(LogConfig{Dir: dir, SegmentBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 1)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rep := mustVerify(t, dir)
	got := seqSet(all(t, dir))
	for seq := range acked {
		if !got[seq] {
			t.Fatalf("acknowledged seq %d lost", seq)
		}
	}
	t.Logf("%d acknowledged, %d in the log, %d segments, recoveries %+v", len(acked), rep.Records, rep.Segments, rep.Recoveries)
}

func TestOpenTruncatesTornTail(t *testing.T) {
	zeros := make([]byte, 4096)
	cases := []struct {
		name string
		torn func(last []byte) []byte // what the crash left after the last record
		data int                      // bytes of it that are data, not zero-filled space (-1: all)
	}{
		{"partial line", func(last []byte) []byte { return last[:len(last)/2] }, -1},
		{"complete record without newline", func(last []byte) []byte { return last[:len(last)-1] }, -1},
		{"garbage line", func([]byte) []byte { return []byte("\x00\x00\x00\x00\n") }, -1},
		// A record cut short in preallocated space: zeros follow it.
		{"partial line in zero-filled space", func(last []byte) []byte {
			return append(append([]byte(nil), last[:len(last)/2]...), zeros...)
		}, 0},
		// A later page reached the disk, an earlier one did not.
		{"record after zeros", func(last []byte) []byte { return append(append([]byte(nil), zeros...), last...) }, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "audit")
			l := openLog(t, LogConfig{Dir: dir})
			appendN(t, l, 0, 5)
			l.Close()
			// What the next record would have looked like, cut by a crash.
			seg := segPaths(t, dir)[0]
			ls := lines(t, seg)
			h, _ := checkLine(ls[4][:len(ls[4])-1])
			body := appendBody(nil, 6, h.Hash, []byte(`{"route":"/v1/sign","decision":"allow"}`))
			next, _ := appendLine(nil, h.Hash, body)
			torn := c.torn(next)
			good, _ := os.Stat(seg)
			f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(torn)
			f.Close()

			o := &recordingObserver{}
			l = openLog(t, LogConfig{Dir: dir, Observer: o})
			r := rec(9)
			if err := l.Append(context.Background(), r); err != nil {
				t.Fatal(err)
			}
			l.Close()
			if r.Seq != 7 {
				t.Fatalf("seq %d, want 7 (after the notice)", r.Seq)
			}
			rep := mustVerify(t, dir)
			if len(rep.Recoveries) != 1 {
				t.Fatalf("recoveries %+v", rep.Recoveries)
			}
			rc := rep.Recoveries[0]
			want := int64(len(torn))
			if c.data == 0 {
				want = int64(len(bytes.TrimRight(torn, "\x00")))
			}
			if rc.Reason != RecoveryTruncated || rc.Segment != segmentName(1) || rc.Offset != good.Size() || rc.TruncatedBytes != want {
				t.Fatalf("recovery %+v, want %d bytes truncated at %d", rc, want, good.Size())
			}
			recs := all(t, dir)
			if len(recs) != 7 || recs[5].Decision != Notice || recs[5].Seq != 6 || len(recs[5].Recovered) != 1 {
				t.Fatalf("records %+v", recs)
			}
			if len(o.events) == 0 || o.events[0].Kind != EventRecovered {
				t.Fatalf("events %+v", o.events)
			}
		})
	}
}

// Zero bytes after the last record are preallocated space, not a torn
// write: Open goes on writing over them, with no repair and no notice.
func TestOpenReusesZeroFilledSpace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, PreallocateBytes: -1})
	appendN(t, l, 0, 3)
	l.Close()
	seg := segPaths(t, dir)[0]
	data := segData(t, seg)
	f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(make([]byte, 64<<10)) // as a crash leaves the preallocated space
	f.Close()

	o := &recordingObserver{}
	l = openLog(t, LogConfig{Dir: dir, Observer: o, PreallocateBytes: -1})
	got := appendN(t, l, 3, 2)
	if got[0] != 4 {
		t.Fatalf("seqs %v, want 4, 5 (no notice)", got)
	}
	raw, _ := os.ReadFile(seg)
	if len(raw) != len(data)+64<<10 {
		t.Fatalf("segment is %d bytes, want the records written into the zero-filled space (%d)", len(raw), len(data)+64<<10)
	}
	l.Close()
	after := segData(t, seg)
	if !bytes.HasPrefix(after, data) || bytes.Count(after, []byte{'\n'}) != 5 {
		t.Fatalf("segment after reopening:\n%s", after)
	}
	if raw, _ := os.ReadFile(seg); len(raw) != len(after) {
		t.Fatalf("Close left %d bytes of zero-filled space", len(raw)-len(after))
	}
	rep := mustVerify(t, dir)
	if rep.Records != 5 || len(rep.Recoveries) != 0 {
		t.Fatalf("%+v", rep)
	}
	for _, e := range o.events {
		if e.Kind == EventRecovered {
			t.Fatalf("zero-filled space reported as a repair: %+v", e)
		}
	}
}

// The notice is written at Open, even if nothing else is appended.
func TestRecoveryNoticeWrittenAtOpen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir})
	appendN(t, l, 0, 2)
	l.Close()
	f, _ := os.OpenFile(segPaths(t, dir)[0], os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"seq":3,"pre`)
	f.Close()
	l = openLog(t, LogConfig{Dir: dir})
	l.Close()
	rep := mustVerify(t, dir)
	if rep.LastSeq != 3 || len(rep.Recoveries) != 1 {
		t.Fatalf("%+v", rep)
	}
}

// The last segment is empty (a crash right after rotation): the chain
// goes on from the segment before.
func TestOpenAfterEmptySegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir})
	appendN(t, l, 0, 3)
	l.Close()
	if err := os.WriteFile(filepath.Join(dir, segmentName(2)), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, LogConfig{Dir: dir})
	if s := appendN(t, l, 3, 1); s[0] != 4 {
		t.Fatalf("seq %d", s[0])
	}
	l.Close()
	rep := mustVerify(t, dir)
	if rep.Segments != 2 || rep.Records != 4 {
		t.Fatalf("%+v", rep)
	}
}

// Damage bigger than one write in the last segment is not a torn write:
// Open leaves the acknowledged records after it alone, goes on in a new
// segment after the last valid record, and Verify reports the damage.
func TestOpenLeavesCorruptionInPlace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	// A segment of acknowledged records, written directly: more than
	// tornTolerance follows the damage.
	var b []byte
	prev, n := GenesisHash, 0
	for ; len(b) < tornTolerance+64<<10; n++ {
		pre, _ := json.Marshal(rec(n))
		b, prev = appendLine(b, prev, appendBody(nil, uint64(n+1), prev, pre))
	}
	os.MkdirAll(dir, 0o700)
	seg := filepath.Join(dir, segmentName(1))
	writeLines(t, seg, [][]byte{b})
	mustVerify(t, dir)
	ls := lines(t, seg)
	ls[10] = []byte("{garbage}\n")
	writeLines(t, seg, ls)
	before, _ := os.ReadFile(seg)

	l := openLog(t, LogConfig{Dir: dir})
	r := rec(0)
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	l.Close()
	after, _ := os.ReadFile(seg)
	if string(before) != string(after) {
		t.Fatal("Open changed a corrupt segment")
	}
	if r.Seq != uint64(n)+2 {
		t.Fatalf("seq %d, want %d", r.Seq, n+2)
	}
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Break.Line != 11 || rep.Break.Segment != segmentName(1) {
		t.Fatalf("%+v", rep.Break)
	}
	recs := all(t, dir)
	if len(recs) != n+1 || recs[n-1].Decision != Notice || recs[n-1].Recovered[0].Reason != RecoveryCorrupt {
		t.Fatalf("%d records; notice %+v", len(recs), recs[n-1])
	}
}
