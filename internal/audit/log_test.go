package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

// The on-disk format is a contract with third-party verifiers.
func TestGoldenSegment(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir})
	at := time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
	for i := 0; i < 3; i++ {
		r := rec(i)
		r.Time, r.AuditID = at.Add(time.Duration(i)*time.Second), "id-"+strconv.Itoa(i)
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(dir, segmentName(1)))
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "segment.golden.jsonl")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("segment differs from %s (run with -update if intended):\n%s", golden, got)
	}
	thirdPartyVerify(t, got, GenesisHash)
}

// thirdPartyVerify checks a segment the way the GenesisHash doc tells an
// outside verifier to, without this package's parser.
func thirdPartyVerify(t *testing.T, seg []byte, prev string) string {
	t.Helper()
	for i, line := range bytes.Split(bytes.TrimSuffix(seg, []byte{'\n'}), []byte{'\n'}) {
		suffix := line[len(line)-82:]
		if !bytes.HasPrefix(suffix, []byte(`,"hash":"sha256:`)) || !bytes.HasSuffix(suffix, []byte(`"}`)) {
			t.Fatalf("line %d: no hash suffix", i+1)
		}
		body := append(append([]byte{}, line[:len(line)-82]...), '}')
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if m["prevHash"] != prev {
			t.Fatalf("line %d: prevHash %v, want %s", i+1, m["prevHash"], prev)
		}
		sum := sha256.Sum256(append([]byte(prev), body...))
		h := "sha256:" + hex.EncodeToString(sum[:])
		if m["hash"] != h {
			t.Fatalf("line %d: hash %v, want %s", i+1, m["hash"], h)
		}
		prev = h
	}
	return prev
}

// The spliced body is what encoding/json produces for the full record, so
// readers can decode lines into Record.
func TestBodyMatchesMarshal(t *testing.T) {
	r := rec(1)
	r.Time = time.Unix(1700000000, 5).UTC()
	pre, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	body := appendBody(nil, 42, GenesisHash, pre)
	full := *r
	full.Seq, full.PrevHash = 42, GenesisHash
	want, _ := json.Marshal(&full)
	if !bytes.Equal(body, want) {
		t.Fatalf("body\n%s\nmarshal\n%s", body, want)
	}
	line, h := appendLine(nil, GenesisHash, body)
	full.Hash = h
	want, _ = json.Marshal(&full)
	if !bytes.Equal(line, append(want, '\n')) {
		t.Fatalf("line\n%s\nmarshal\n%s", line, want)
	}
}

func TestChainAcrossRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 1500})
	ctx := context.Background()
	var acked []*Record
	for i := 0; i < 40; i++ {
		r := rec(i)
		if err := l.Append(ctx, r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(i+1) || r.Hash == "" || r.AuditID == "" || r.Time.IsZero() {
			t.Fatalf("append %d: seq %d hash %q id %q", i, r.Seq, r.Hash, r.AuditID)
		}
		if i > 0 && r.PrevHash != acked[i-1].Hash {
			t.Fatalf("record %d does not chain to %d", i, i-1)
		}
		acked = append(acked, r)
	}
	if s := l.Stats(); s.Rotations == 0 || s.LastSeq != 40 || s.Appends != 40 {
		t.Fatalf("stats %+v", s)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	paths := segPaths(t, dir)
	if len(paths) < 5 {
		t.Fatalf("%d segments, want rotation", len(paths))
	}
	prev := GenesisHash
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(b)) > 1500 && bytes.Count(b, []byte{'\n'}) > 1 {
			t.Fatalf("%s: %d bytes, past SegmentBytes", p, len(b))
		}
		prev = thirdPartyVerify(t, b, prev)
	}
	rep := mustVerify(t, dir)
	if rep.Records != 40 || rep.FirstSeq != 1 || rep.LastSeq != 40 || rep.LastHash != acked[39].Hash || rep.Segments != len(paths) {
		t.Fatalf("report %+v", rep)
	}
	// Reopening goes on with the chain.
	l2 := openLog(t, LogConfig{Dir: dir, SegmentBytes: 1500})
	r := rec(99)
	if err := l2.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if r.Seq != 41 || r.PrevHash != acked[39].Hash {
		t.Fatalf("after reopen: seq %d prev %s", r.Seq, r.PrevHash)
	}
	l2.Close()
	mustVerify(t, dir)
	got := all(t, dir)
	if len(got) != 41 || got[40].RequestID != "req-99" || got[0].Tenant != "acme" {
		t.Fatalf("query: %d records", len(got))
	}
}

func TestPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 600})
	appendN(t, l, 0, 5)
	if _, err := l.Export(context.Background(), filepath.Join(t.TempDir(), "out"), 0); err != nil {
		t.Fatal(err)
	}
	l.Close()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v", fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v", e.Name(), fi.Mode())
		}
	}
}

func TestGroupCommit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 64 << 10})
	const workers, each = 64, 50
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		acked = map[string]uint64{}
	)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				r := rec(i)
				if err := l.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				acked[r.AuditID] = r.Seq
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	s := l.Stats()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(acked) != workers*each {
		t.Fatalf("%d acknowledged", len(acked))
	}
	got := map[string]uint64{}
	for _, r := range all(t, dir) {
		got[r.AuditID] = r.Seq
	}
	for id, seq := range acked {
		if got[id] != seq {
			t.Fatalf("acknowledged record %s (seq %d) not in the log", id, seq)
		}
	}
	rep := mustVerify(t, dir)
	if rep.Records != workers*each {
		t.Fatalf("%d records", rep.Records)
	}
	t.Logf("stats: %+v", s)
	if s.Appends != workers*each || s.Fsyncs >= s.Appends || s.Batches >= s.Appends {
		t.Fatalf("no group commit: %+v", s)
	}
}

func TestCloseAndLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir})
	if _, err := Open(LogConfig{Dir: dir}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	appendN(t, l, 0, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if err := l.Append(context.Background(), rec(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	l2 := openLog(t, LogConfig{Dir: dir})
	if got := appendN(t, l2, 0, 1); got[0] != 4 {
		t.Fatalf("seq after reopen %d", got[0])
	}
}

func TestAppendRefuses(t *testing.T) {
	l := openLog(t, LogConfig{})
	big := rec(0)
	big.Reason = string(bytes.Repeat([]byte("x"), maxRecordBytes))
	if err := l.Append(context.Background(), big); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("big record: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A cancelled context may still win the race to the queue; either the
	// record is refused or it is durable.
	r := rec(1)
	if err := l.Append(ctx, r); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled append: %v", err)
	} else if err == nil && r.Seq == 0 {
		t.Fatal("acknowledged without seq")
	}
	// Chain fields from the caller are ignored.
	r = rec(2)
	r.Seq, r.PrevHash, r.Hash = 99, "x", "y"
	r.Recovered = []Recovery{{Segment: "forged"}}
	if err := l.Append(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if r.Seq == 99 || r.Recovered != nil {
		t.Fatalf("caller's chain fields kept: %+v", r)
	}
	l.Close()
	mustVerify(t, l.dir)
}

// Rotate with an empty active segment does nothing; with records, it
// closes the segment.
func TestRotate(t *testing.T) {
	l := openLog(t, LogConfig{})
	ctx := context.Background()
	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 0, 2)
	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 2, 1)
	l.Close()
	if n := len(segPaths(t, l.dir)); n != 2 {
		t.Fatalf("%d segments", n)
	}
	mustVerify(t, l.dir)
}

type recordingObserver struct {
	mu      sync.Mutex
	commits []Commit
	events  []Event
}

func (o *recordingObserver) Committed(c Commit) {
	o.mu.Lock()
	o.commits = append(o.commits, c)
	o.mu.Unlock()
}
func (o *recordingObserver) Event(e Event) {
	o.mu.Lock()
	o.events = append(o.events, e)
	o.mu.Unlock()
}

func TestObserver(t *testing.T) {
	o := &recordingObserver{}
	l := openLog(t, LogConfig{SegmentBytes: 600, Observer: o})
	appendN(t, l, 0, 4)
	l.Close()
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.commits {
		n += c.Records
	}
	rotated := false
	for _, e := range o.events {
		rotated = rotated || e.Kind == EventRotated
	}
	if n != 4 || !rotated {
		t.Fatalf("commits %+v events %+v", o.commits, o.events)
	}
}
