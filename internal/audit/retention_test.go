package audit

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func names(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, p := range segPaths(t, dir) {
		out = append(out, filepath.Base(p))
	}
	return out
}

func TestRetentionNeverDeletesUnexported(t *testing.T) {
	clk := newClock(time.Now())
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 1024, Now: clk.Now,
		Retention: Retention{MaxAge: time.Hour, MaxBytes: 1}})
	appendN(t, l, 0, 20)
	before := names(t, dir)
	clk.Advance(48 * time.Hour)
	del, err := l.Prune()
	if err != nil || len(del) != 0 {
		t.Fatalf("pruned %v, %v", del, err)
	}
	if got := names(t, dir); !slices.Equal(got, before) {
		t.Fatalf("segments %v, were %v", got, before)
	}
}

func TestRetentionDeleteUnexportedKeepsActive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	cfg := LogConfig{Dir: dir, SegmentBytes: 1024, Retention: Retention{MaxBytes: 1, DeleteUnexported: true}}
	l := openLog(t, cfg)
	appendN(t, l, 0, 20)
	if _, err := l.Prune(); err != nil {
		t.Fatal(err)
	}
	active := segmentName(int(l.activeNum.Load()))
	if got := names(t, dir); !slices.Equal(got, []string{active}) {
		t.Fatalf("segments %v, want only the active %s", got, active)
	}
	// An empty active segment (just rotated) also keeps the segment
	// holding the last record, which anchors the chain.
	if err := l.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Prune(); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); len(got) != 2 || got[0] != active {
		t.Fatalf("segments %v", got)
	}
	l.Close()
	rep := mustVerify(t, dir)
	if rep.Pruned == nil || rep.LastSeq != 20 || rep.FirstSeq == 1 {
		t.Fatalf("%+v", rep)
	}
	recs := all(t, dir)
	if len(recs) == 0 || recs[len(recs)-1].Seq != 20 {
		t.Fatalf("query after prune: %d records", len(recs))
	}
	// Reopen on a pruned log: the chain goes on. Open kicks a prune that
	// may run before or after the append; one more, after it, leaves the
	// same log either way: only the segment holding seq 21.
	l = openLog(t, cfg)
	if s := appendN(t, l, 0, 1); s[0] != 21 {
		t.Fatalf("seq %d", s[0])
	}
	if _, err := l.Prune(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if rep := mustVerify(t, dir); rep.FirstSeq != 21 || rep.LastSeq != 21 || len(segPaths(t, dir)) != 1 {
		t.Fatalf("after the append and a prune: %+v, segments %v", rep, names(t, dir))
	}

	// Deleting the first remaining segment by hand is caught: without
	// retention, the log grows to several segments, and the first goes.
	l = openLog(t, LogConfig{Dir: dir, SegmentBytes: 1024})
	appendN(t, l, 1, 10)
	l.Close()
	if segs := segPaths(t, dir); len(segs) < 2 {
		t.Fatalf("segments %v", segs)
	}
	os.Remove(segPaths(t, dir)[0])
	rep, _ = Verify(dir)
	if rep.OK || rep.Break.Kind != BreakMissingSegment {
		t.Fatalf("%+v", rep)
	}
}

func TestExportThenRetention(t *testing.T) {
	clk := newClock(time.Now())
	dir := filepath.Join(t.TempDir(), "audit")
	out := filepath.Join(t.TempDir(), "export")
	l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 1024, Now: clk.Now, Retention: Retention{MaxAge: time.Hour}})
	appendN(t, l, 0, 20)
	all0 := names(t, dir)
	ctx := context.Background()

	m, err := l.Export(ctx, out, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Segments) != len(all0)-1 {
		t.Fatalf("exported %d of %d segments", len(m.Segments), len(all0))
	}
	prev := GenesisHash
	for i, s := range m.Segments {
		if s.Name != all0[i] || s.PrevHash != prev || s.Records == 0 || s.LastSeq < s.FirstSeq {
			t.Fatalf("manifest entry %d: %+v", i, s)
		}
		prev = s.LastHash
		_, sum, err := fileHash(filepath.Join(out, s.Name))
		if err != nil || sum != s.SHA256 {
			t.Fatalf("exported %s: %s, %v", s.Name, sum, err)
		}
	}
	mfs, _ := filepath.Glob(filepath.Join(out, "manifest-*.json"))
	if len(mfs) != 1 {
		t.Fatalf("manifests %v", mfs)
	}
	mf, err := os.ReadFile(mfs[0])
	if err != nil {
		t.Fatal(err)
	}
	var m2 Manifest
	if err := json.Unmarshal(mf, &m2); err != nil || len(m2.Segments) != len(m.Segments) {
		t.Fatalf("manifest file: %v", err)
	}
	// The copies are a log of their own that verifies.
	mustVerify(t, out)

	// Young segments stay, exported or not.
	if del, _ := l.Prune(); len(del) != 0 {
		t.Fatalf("pruned young segments %v", del)
	}
	clk.Advance(2 * time.Hour)
	if _, err := l.Prune(); err != nil {
		t.Fatal(err)
	}
	if got := names(t, dir); !slices.Equal(got, all0[len(all0)-1:]) {
		t.Fatalf("after prune %v, want only the active %s", got, all0[len(all0)-1])
	}
	if m, err := l.Export(ctx, out, 0); err != nil || len(m.Segments) != 0 {
		t.Fatalf("second export: %+v, %v", m, err)
	}

	// upTo stops at the segment that holds records past it.
	appendN(t, l, 20, 20)
	if err := l.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	m, err = l.Export(ctx, out, 30)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Segments) == 0 || m.Segments[len(m.Segments)-1].LastSeq > 30 || m.Segments[0].PrevHash != prev {
		t.Fatalf("export up to 30: %+v", m.Segments)
	}
	l.Close()
	rep := mustVerify(t, dir)
	if rep.LastSeq != 40 {
		t.Fatalf("%+v", rep)
	}

	// Removing the newest segments, exported ones among them, is caught
	// even though what is left chains.
	paths := segPaths(t, dir)
	exportedLast := m.Segments[len(m.Segments)-1].Name
	for _, p := range paths {
		if filepath.Base(p) >= exportedLast {
			os.Remove(p)
		}
	}
	rep, err = Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.Break.Kind != BreakTail {
		t.Fatalf("%+v", rep.Break)
	}
}

func TestExportedSegmentChanged(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 1024})
	appendN(t, l, 0, 10)
	if _, err := l.Export(context.Background(), filepath.Join(t.TempDir(), "x"), 0); err != nil {
		t.Fatal(err)
	}
	l.Close()
	// Rewrite the first segment with a whole new, valid chain: only the
	// export record can tell.
	seg := segPaths(t, dir)[0]
	ls := lines(t, seg)
	prev := GenesisHash
	for i, line := range ls {
		h, _ := checkLine(line[:len(line)-1])
		body := append(append([]byte{}, line[:len(line)-1-suffixLen]...), '}')
		body = bytes.Replace(body, []byte(`"prevHash":"`+h.PrevHash), []byte(`"prevHash":"`+prev), 1)
		body = bytes.Replace(body, []byte(`"requestId":"`), []byte(`"requestId":"forged-`), 1)
		ls[i], prev = appendLine(nil, prev, body)
	}
	writeLines(t, seg, ls)
	rep, err := Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || (rep.Break.Kind != BreakExport && rep.Break.Kind != BreakPrevHash) {
		t.Fatalf("%+v", rep.Break)
	}
}

func TestExportToTarThenMark(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 1024, Retention: Retention{MaxBytes: 1}})
	appendN(t, l, 0, 12)
	var buf bytes.Buffer
	m, err := l.ExportTo(context.Background(), &buf, 0)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name)
	}
	if len(got) != len(m.Segments)+1 || got[len(got)-1] != "manifest.json" || got[0] != segmentName(1) {
		t.Fatalf("tar holds %v", got)
	}
	// Not marked yet: retention keeps everything.
	n := len(segPaths(t, dir))
	if del, _ := l.Prune(); len(del) != 0 {
		t.Fatalf("pruned before the mark: %v", del)
	}
	if err := l.MarkExported(m); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Prune(); err != nil {
		t.Fatal(err)
	}
	if left := len(segPaths(t, dir)); left != n-len(m.Segments) {
		t.Fatalf("%d segments left of %d", left, n)
	}
	l.Close()
	mustVerify(t, dir)
}
