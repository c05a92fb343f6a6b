package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/audit"
)

// lockedBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func seqs(t *testing.T, out string) []uint64 {
	t.Helper()
	var s []uint64
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a record: %q", line)
		}
		s = append(s, r.Seq)
	}
	return s
}

// TestAuditTailThroughSocket: without --dir, audit tail asks the agent
// through the admin socket (as audit query does) and prints the same
// records as a tail of the files; -f prints new records until interrupted.
func TestAuditTailThroughSocket(t *testing.T) {
	dir := startDevAgent(t, nil)
	sock, admin := filepath.Join(dir, "api.sock"), filepath.Join(dir, "admin.sock")
	work := t.TempDir()
	art := writeFile(t, work, "a", "x")
	pred := writeFile(t, work, "p.json", `{"a":1}`)
	sign := func() {
		t.Helper()
		runCtl(t, "--socket", sock, "sign", "--predicate", pred, "--type", "stella.ops/sbom@v1", "--artifact", art).wantCode(t, exitOK)
	}
	for range 3 {
		sign()
	}
	adir := filepath.Join(dir, "audit")

	viaFiles := runCtl(t, "audit", "tail", "-n", "2", "--dir", adir)
	viaFiles.wantCode(t, exitOK)
	viaSocket := runCtl(t, "--admin-socket", admin, "audit", "tail", "-n", "2")
	viaSocket.wantCode(t, exitOK)
	if viaSocket.stdout != viaFiles.stdout || len(seqs(t, viaSocket.stdout)) != 2 {
		t.Fatalf("socket tail:\n%s\nfile tail:\n%s", viaSocket.stdout, viaFiles.stdout)
	}
	all := seqs(t, runCtl(t, "--admin-socket", admin, "audit", "tail", "-n", "1000").stdout)
	if got := seqs(t, viaSocket.stdout); got[1] != all[len(all)-1] || got[0] != all[len(all)-2] {
		t.Fatalf("tail -n 2 gave seqs %v of %v", got, all)
	}
	if r := runCtl(t, "--admin-socket", admin, "audit", "tail", "-n", "0"); r.code != exitOK || r.stdout != "" {
		t.Fatalf("tail -n 0: %d %q", r.code, r.stdout)
	}

	// The socket rule, as for audit query: no agent there is a failure
	// naming the socket, not a read of /var/lib.
	r := runCtl(t, "--admin-socket", filepath.Join(work, "none.sock"), "audit", "tail")
	r.wantCode(t, exitFailure)
	if !strings.Contains(r.stderr, "none.sock") {
		t.Fatalf("stderr %q", r.stderr)
	}

	// -f: the records so far, then a new one, until interrupted.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb lockedBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--admin-socket", admin, "audit", "tail", "-n", "1", "-f", "--interval", "20ms"}, &out, &errb, func(string) string { return "" })
	}()
	waitFor := func(what string, ok func([]uint64) bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second) // a hang guard, not a timing check
		for !ok(seqs(t, out.String())) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: output %q, stderr %q", what, out.String(), errb.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	last := all[len(all)-1]
	waitFor("the last record", func(s []uint64) bool { return len(s) == 1 && s[0] == last })
	sign()
	waitFor("the new record", func(s []uint64) bool { return len(s) >= 2 && s[len(s)-1] > last })
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("tail -f ended with %d: %s", code, errb.String())
	}
}
