package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/audit"
)

// writeLog appends n records to the log in dir and closes it.
func writeLog(t *testing.T, dir string, n int) {
	t.Helper()
	l, err := audit.Open(audit.LogConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := l.Append(context.Background(), &audit.Record{RequestID: "r", Route: "/x", Decision: audit.Allow}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// tearTail appends a torn write (no newline) to the last segment, as a
// crash mid-write leaves it, and returns its length.
func tearTail(t *testing.T, dir string) int {
	t.Helper()
	segs, _ := filepath.Glob(filepath.Join(dir, "segment-*.jsonl"))
	if len(segs) == 0 {
		t.Fatal("no segment")
	}
	torn := `{"seq":99,"prevHash":"sha256:00","time":"2026-01-01T00:00:00Z","auditId":"torn`
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(torn); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return len(torn)
}

// TestAuditVerifyReportsRepairedTails: a log whose torn tails were
// repaired at open still verifies, and `audit verify` says so: the count
// and one line per repair in the human output, repairedTails and repairs
// in the JSON report. A log without repairs says nothing about them.
func TestAuditVerifyReportsRepairedTails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "audit")
	writeLog(t, dir, 3)

	clean := runCtl(t, "audit", "verify", "--dir", dir)
	clean.wantCode(t, 0)
	if strings.Contains(clean.stdout, "repaired") {
		t.Fatalf("a log without repairs reports some:\n%s", clean.stdout)
	}
	var rep audit.VerifyReport
	js := runCtl(t, "audit", "verify", "--dir", dir, "--json")
	js.wantCode(t, 0)
	if err := json.Unmarshal([]byte(js.stdout), &rep); err != nil || rep.RepairedTails != 0 || !strings.Contains(js.stdout, `"repairedTails": 0`) {
		t.Fatalf("clean JSON report: %v\n%s", err, js.stdout)
	}

	// Two crashes mid-write, each repaired when the log is opened again.
	n1 := tearTail(t, dir)
	writeLog(t, dir, 2)
	n2 := tearTail(t, dir)
	writeLog(t, dir, 1)

	res := runCtl(t, "audit", "verify", "--dir", dir)
	res.wantCode(t, 0)
	t.Logf("audit verify:\n%s", res.stdout)
	if !strings.Contains(res.stdout, "audit chain OK") || !strings.Contains(res.stdout, "2 repaired tails") {
		t.Fatalf("human output:\n%s", res.stdout)
	}
	lines := 0
	for _, l := range strings.Split(res.stdout, "\n") {
		if strings.HasPrefix(l, "  segment-000001.jsonl: torn write of ") {
			lines++
		}
	}
	if lines != 2 || !strings.Contains(res.stdout, "torn write of "+itoa(n1)+" bytes") || !strings.Contains(res.stdout, "torn write of "+itoa(n2)+" bytes") {
		t.Fatalf("want one line per repair with its size:\n%s", res.stdout)
	}

	js = runCtl(t, "audit", "verify", "--dir", dir, "--json")
	js.wantCode(t, 0)
	rep = audit.VerifyReport{}
	if err := json.Unmarshal([]byte(js.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.OK || rep.RepairedTails != 2 || len(rep.Repairs) != 2 {
		t.Fatalf("JSON report: %s", js.stdout)
	}
	for i, want := range []int{n1, n2} {
		r := rep.Repairs[i]
		if r.Reason != audit.RecoveryTruncated || r.TruncatedBytes != int64(want) || r.NoticeSeq == 0 || r.NoticeTime.IsZero() || r.Segment != "segment-000001.jsonl" {
			t.Fatalf("repair %d: %+v", i, r)
		}
	}
	if rep.Repairs[0].NoticeSeq != 4 || rep.Repairs[1].NoticeSeq != 7 {
		t.Fatalf("notice seqs %d, %d; want 4 and 7", rep.Repairs[0].NoticeSeq, rep.Repairs[1].NoticeSeq)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
