package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// buildLog writes 60 records over ten or more small segments.
func buildLog(t *testing.T) (dir string, paths []string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 2048})
	appendN(t, l, 0, 60)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	paths = segPaths(t, dir)
	if len(paths) < 10 {
		t.Fatalf("%d segments", len(paths))
	}
	mustVerify(t, dir)
	return dir, paths
}

func TestVerifyDetects(t *testing.T) {
	cases := []struct {
		name   string
		tamper func(t *testing.T, paths []string)
		kind   BreakKind
		seg    int // index into paths
		line   int // 0: the break is a whole segment
	}{
		{
			name: "edited record",
			tamper: func(t *testing.T, p []string) {
				ls := lines(t, p[3])
				ls[1] = bytes.Replace(ls[1], []byte(`"route":"/v1/sign"`), []byte(`"route":"/v1/sigx"`), 1)
				writeLines(t, p[3], ls)
			},
			kind: BreakHash, seg: 3, line: 2,
		},
		{
			name: "edited record with its own hash recomputed",
			tamper: func(t *testing.T, p []string) {
				ls := lines(t, p[3])
				h, err := checkLine(bytes.TrimSuffix(ls[1], []byte{'\n'}))
				if err != nil {
					t.Fatal(err)
				}
				line := ls[1][:len(ls[1])-1-suffixLen]
				body := bytes.Replace(append(append([]byte{}, line...), '}'), []byte(`"requestId":"`), []byte(`"requestId":"X`), 1)
				ls[1], _ = appendLine(nil, h.PrevHash, body)
				writeLines(t, p[3], ls)
			},
			kind: BreakPrevHash, seg: 3, line: 3,
		},
		{
			name: "deleted record",
			tamper: func(t *testing.T, p []string) {
				ls := lines(t, p[3])
				writeLines(t, p[3], append(ls[:1], ls[2:]...))
			},
			kind: BreakSeq, seg: 3, line: 2,
		},
		{
			name: "two records swapped",
			tamper: func(t *testing.T, p []string) {
				ls := lines(t, p[3])
				ls[1], ls[2] = ls[2], ls[1]
				writeLines(t, p[3], ls)
			},
			kind: BreakSeq, seg: 3, line: 2,
		},
		{
			name: "duplicated record",
			tamper: func(t *testing.T, p []string) {
				ls := lines(t, p[3])
				ls = append(ls[:2], append([][]byte{ls[1]}, ls[2:]...)...)
				writeLines(t, p[3], ls)
			},
			kind: BreakSeq, seg: 3, line: 3,
		},
		{
			name: "garbage line inserted",
			tamper: func(t *testing.T, p []string) {
				ls := lines(t, p[3])
				ls = append(ls[:1], append([][]byte{[]byte("{\"seq\":1}\n")}, ls[1:]...)...)
				writeLines(t, p[3], ls)
			},
			kind: BreakUnparsable, seg: 3, line: 2,
		},
		{
			name: "segment truncated mid-line",
			tamper: func(t *testing.T, p []string) {
				ls := lines(t, p[3])
				b := bytes.Join(ls[:2], nil)
				b = append(b, ls[2][:40]...)
				if err := os.WriteFile(p[3], b, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			kind: BreakTorn, seg: 3, line: 3,
		},
		{
			name: "segment truncated at a line boundary",
			tamper: func(t *testing.T, p []string) {
				ls := lines(t, p[3])
				writeLines(t, p[3], ls[:1])
			},
			kind: BreakSeq, seg: 4, line: 1,
		},
		{
			name: "middle segment missing",
			tamper: func(t *testing.T, p []string) {
				if err := os.Remove(p[5]); err != nil {
					t.Fatal(err)
				}
			},
			kind: BreakMissingSegment, seg: 5,
		},
		{
			name: "first segment missing",
			tamper: func(t *testing.T, p []string) {
				if err := os.Remove(p[0]); err != nil {
					t.Fatal(err)
				}
			},
			kind: BreakMissingSegment, seg: 0,
		},
		{
			name: "segments swapped",
			tamper: func(t *testing.T, p []string) {
				a, _ := os.ReadFile(p[2])
				b, _ := os.ReadFile(p[3])
				os.WriteFile(p[2], b, 0o600)
				os.WriteFile(p[3], a, 0o600)
			},
			kind: BreakSeq, seg: 2, line: 1,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, paths := buildLog(t)
			c.tamper(t, paths)
			rep, err := Verify(dir)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK || rep.Break == nil {
				t.Fatalf("tampering not detected: %+v", rep)
			}
			b := rep.Break
			if b.Kind != c.kind || b.Segment != filepath.Base(paths[c.seg]) || b.Line != c.line {
				t.Fatalf("break %+v, want %s at %s line %d", b, c.kind, filepath.Base(paths[c.seg]), c.line)
			}
			if b.Error() == "" || b.Detail == "" {
				t.Fatal("empty description")
			}
			t.Log(b)
		})
	}
}

// A line cut short at the end of the last segment is a write in progress
// (or a crash Open will repair), not a break.
func TestVerifyIncompleteTail(t *testing.T) {
	dir, paths := buildLog(t)
	last := paths[len(paths)-1]
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":61,"prevHash":"sha`)
	f.Close()
	rep := mustVerify(t, dir)
	if rep.Incomplete == nil || rep.Incomplete.Segment != filepath.Base(last) || rep.LastSeq != 60 {
		t.Fatalf("report %+v", rep)
	}
}

func TestVerifyEmpty(t *testing.T) {
	dir := t.TempDir()
	rep := mustVerify(t, dir)
	if rep.Records != 0 || rep.Segments != 0 {
		t.Fatalf("%+v", rep)
	}
	if _, err := Verify(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("no error for a missing directory")
	}
}
