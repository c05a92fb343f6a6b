package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// seedSegments returns the segments of a real log: two rotated segments,
// the second starting with a recovery notice.
func seedSegments(f *testing.F) [][]byte {
	dir := filepath.Join(f.TempDir(), "audit")
	l, err := Open(LogConfig{Dir: dir, SegmentBytes: 1500})
	if err != nil {
		f.Fatal(err)
	}
	appendN(f, l, 0, 5)
	l.Close()
	segs, _ := listSegments(dir)
	last := segs[len(segs)-1].path
	fh, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	fh.WriteString(`{"seq":6,"prev`)
	fh.Close()
	l, err = Open(LogConfig{Dir: dir, SegmentBytes: 1500})
	if err != nil {
		f.Fatal(err)
	}
	appendN(f, l, 5, 2)
	l.Close()
	segs, _ = listSegments(dir)
	var out [][]byte
	for _, s := range segs {
		b, _ := os.ReadFile(s.path)
		out = append(out, b)
	}
	return out
}

func FuzzParseSegment(f *testing.F) {
	segs := seedSegments(f)
	zeros := make([]byte, 3000)
	for _, s := range segs {
		f.Add(s)
		f.Add(s[:len(s)/2])
		f.Add(bytes.Replace(s, []byte(`"seq":`), []byte(`"seq":-`), 1))
		// Preallocated space: zeros after the records, after a torn
		// record, and before a record that reached the disk early.
		f.Add(append(append([]byte(nil), s...), zeros...))
		f.Add(append(append([]byte(nil), s[:len(s)/2]...), zeros...))
		f.Add(append(append(append([]byte(nil), s...), zeros...), s...))
	}
	f.Add([]byte{})
	f.Add([]byte("\n\n\n"))
	f.Add([]byte(`{"seq":1,"prevHash":"sha256:` + GenesisHash[7:] + `","hash":"sha256:` + GenesisHash[7:] + `"}` + "\n"))
	dir := f.TempDir() // one per worker process; t.TempDir per input is slow
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, segmentName(1))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := scanSegment(path, -1, nil)
		if err != nil {
			t.Fatal(err)
		}
		// Data ends at res.size; only zero-filled space may follow.
		if res.size > int64(len(data)) || bytes.ContainsFunc(data[res.size:], func(r rune) bool { return r != 0 }) {
			t.Fatalf("data end %d of %d, but non-zero bytes follow", res.size, len(data))
		}
		if res.good > res.size || (res.good < res.size) != (res.badLine != 0) {
			t.Fatalf("good %d of %d, bad line %d", res.good, res.size, res.badLine)
		}
		for _, line := range bytes.Split(data, []byte{'\n'}) {
			checkLine(line)
		}
		rep, err := Verify(dir)
		if err != nil {
			t.Fatal(err)
		}
		if rep.OK && rep.Incomplete == nil && rep.Records != uint64(res.records) {
			t.Fatalf("verify %d records, scan %d", rep.Records, res.records)
		}
		if rep.OK && rep.Records > 0 && res.first.Seq != 1 {
			t.Fatalf("verified a chain starting at seq %d", res.first.Seq)
		}
		n := 0
		if err := Query(dir, Filter{}, func(Record) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		if rep.OK && uint64(n) < rep.Records {
			t.Fatalf("query %d of %d verified records", n, rep.Records)
		}
	})
}

// FuzzVerify runs Verify, Query and Open on two arbitrary segments and an
// arbitrary state file: errors are fine, panics and hangs are not.
func FuzzVerify(f *testing.F) {
	segs := seedSegments(f)
	f.Add(segs[0], segs[1], []byte(nil))
	f.Add(segs[0], segs[1], []byte(`{"version":1,"pruned":{"through":"segment-000000.jsonl","nextSeq":1,"prevHash":"x"}}`))
	f.Add(segs[1], segs[0], []byte(`{"exported":[{"name":"segment-000001.jsonl","lastSeq":99}]}`))
	f.Add([]byte("{}\n"), []byte("garbage"), []byte("{"))
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, a, b, state []byte) {
		dir := filepath.Join(root, "log")
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		os.Mkdir(dir, 0o700)
		os.WriteFile(filepath.Join(dir, segmentName(1)), a, 0o600)
		os.WriteFile(filepath.Join(dir, segmentName(2)), b, 0o600)
		if state != nil {
			os.WriteFile(filepath.Join(dir, stateFile), state, 0o600)
		}
		rep, err := Verify(dir)
		if err == nil && !rep.OK && rep.Break == nil {
			t.Fatal("failed report without a break")
		}
		Query(dir, Filter{Limit: 3}, func(Record) error { return nil })
		l, err := Open(LogConfig{Dir: dir})
		if err != nil {
			return
		}
		l.Close()
	})
}
