package fault

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
)

// Environment of the flood helper process.
const (
	floodSockEnv  = "SIGNER_AGENT_FAULT_SOCK"
	floodForEnv   = "SIGNER_AGENT_FAULT_FOR"
	floodConnsEnv = "SIGNER_AGENT_FAULT_CONNS"
)

// floodUID is the refused peer's uid (nobody).
const floodUID = 65534

// flood is the helper process's main: as fast as it can, on floodConns
// connections at once, it connects to the socket, sends a request and
// reads until the agent closes; it prints how many connections it made.
func flood() int {
	sock := os.Getenv(floodSockEnv)
	d, err := time.ParseDuration(os.Getenv(floodForEnv))
	conns, _ := strconv.Atoi(os.Getenv(floodConnsEnv))
	if sock == "" || err != nil || conns < 1 {
		fmt.Fprintln(os.Stderr, "flood: bad environment")
		return 2
	}
	var n, failed atomic.Int64
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 512)
			for time.Now().Before(end) {
				c, err := net.Dial("unix", sock)
				if err != nil {
					failed.Add(1)
					continue
				}
				n.Add(1)
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: signer-agent\r\n\r\n")
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				_ = c.Close()
			}
		}()
	}
	wg.Wait()
	fmt.Printf("connections %d failed %d\n", n.Load(), failed.Load())
	return 0
}

// floodResult is what one flood did to the audit log.
type floodResult struct {
	conns      int64         // connections the flooder made
	elapsed    time.Duration // how long it flooded
	records    int           // audit records of its uid (denials and summaries)
	summaries  int
	suppressed int // denials the summaries stand for
}

// runFlood floods p's api socket from uid floodUID for d and reads back
// (after a clean stop) what the audit log holds of it. The agent's state
// directory is opened to the group (the flooder runs with gid 0) so the
// peer reaches the socket and is refused by the allowlist, not by the
// file system.
func runFlood(t *testing.T, p *agentProc, d time.Duration, conns int) floodResult {
	t.Helper()
	needRoot(t, "the refused peer runs under another uid")
	if err := os.Chmod(p.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(helperBinary(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=flood", floodSockEnv+"="+p.api, floodForEnv+"="+d.String(), floodConnsEnv+"="+strconv.Itoa(conns))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: floodUID, Gid: 0}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("flood helper: %v\n%s", err, out.String())
	}
	res := floodResult{elapsed: time.Since(start)}
	var failed int64
	if _, err := fmt.Sscanf(strings.TrimSpace(out.String()), "connections %d failed %d", &res.conns, &failed); err != nil {
		t.Fatalf("flood helper output %q", out.String())
	}
	if res.conns == 0 {
		t.Fatalf("the flooder never reached the socket (%d dials failed): the test tests nothing", failed)
	}
	return res
}

// countFlood reads the records of the flooder's uid from the log.
func countFlood(t *testing.T, dir string, res *floodResult) {
	t.Helper()
	err := audit.Query(dir, audit.Filter{}, func(r audit.Record) error {
		if r.Peer == nil || r.Peer.UID != floodUID {
			return nil
		}
		res.records++
		if r.Gate == "audit-limit" {
			res.summaries++
			n, err := strconv.Atoi(strings.Fields(r.Reason)[0])
			if err != nil {
				t.Fatalf("summary record without a count: %q", r.Reason)
			}
			res.suppressed += n
		} else if r.Code != string(proto.CodePeerNotAllowed) {
			t.Fatalf("refused peer's record has code %q", r.Code)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRefusedPeerFlood: a peer the allowlist refuses connects as fast as
// it can on 8 connections at once. Its connections are closed at accept;
// its denials are written at the configured rate (4/s, burst 4) plus one
// summary per second that counts the rest, so every connection is
// accounted for and the audit volume takes at most a few records per
// second. An allowed caller signing meanwhile is never suppressed.
func TestRefusedPeerFlood(t *testing.T) {
	p := newAgent(t, procOptions{edit: func(c *config.Config) {
		c.Limits.DenialAuditRate, c.Limits.DenialAuditBurst = 0, 0 // the defaults
	}})
	l := newLedger(t, p)
	ld := startLoad(t, p, l, 2)
	res := runFlood(t, p, loadFor(t, 3*time.Second, 1), 8)
	ld.halt()
	m, err := p.adminClient().Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(m, []byte("signer_audit_denials_suppressed_total ")) || bytes.Contains(m, []byte("signer_audit_denials_suppressed_total 0\n")) {
		t.Fatalf("no suppressed denials in the metrics:\n%s", grepLines(m, "suppressed"))
	}
	// A clean stop writes the last summary (a kill -9 loses the count of
	// at most the last second's suppressed denials: see
	// docs/runbooks/limits.md).
	p.stop()
	finish(t, p, l, checkOpts{})
	countFlood(t, p.auditDir, &res)

	secs := res.elapsed.Seconds()
	perSec := float64(res.records) / secs
	t.Logf("refused peer: %d connections in %.1fs (%.0f/s) -> %d audit records (%.1f/s): %d denials, %d summaries standing for %d more; %s",
		res.conns, secs, float64(res.conns)/secs, res.records, perSec, res.records-res.summaries, res.summaries, res.suppressed, l)
	// The bound the limiter promises: the burst, the rate, and one summary
	// per flush (every second, and one when the agent stops).
	bound := config.DefaultDenialAuditBurst + int(math.Ceil(config.DefaultDenialAuditRate*secs)) + int(math.Ceil(secs)) + 3
	if res.records > bound {
		t.Fatalf("%d records of the refused peer in %.1fs; the limiter allows at most %d", res.records, secs, bound)
	}
	if got := int64(res.records - res.summaries + res.suppressed); got != res.conns {
		t.Fatalf("%d connections, but the log accounts for %d (denials + suppressed)", res.conns, got)
	}
	if l.okN.Load() == 0 {
		t.Fatal("the allowed caller signed nothing during the flood")
	}
}

// helperBinary is a copy of this test binary that another uid can run
// (go test builds it in a directory only its owner may enter).
func helperBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "fault-helper")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "fault-helper")
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
