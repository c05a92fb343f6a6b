package fault

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/config"
)

// idleConns opens n keep-alive connections to sock and leaves them idle:
// each sends one complete request and reads its answer first, so the
// agent holds it until its idle timeout (a connection that never sends a
// byte is closed after the header timeout anyway). Dials and requests
// that fail are counted, not fatal (the agent may be closing idle ones as
// fast as they come).
func idleConns(t *testing.T, sock string, n int) (conns []net.Conn, failed int) {
	t.Helper()
	conns, failed = openIdle(sock, n, 2*time.Second)
	t.Cleanup(func() {
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return conns, failed
}

// openIdle opens the connections of idleConns (and of the hold helper):
// each sends one healthz request and reads its answer within timeout,
// then stays open, idle. It is not fatal: failures are counted.
func openIdle(sock string, n int, timeout time.Duration) (conns []net.Conn, failed int) {
	buf := make([]byte, 4096)
	for i := 0; i < n; i++ {
		c, err := net.DialTimeout("unix", sock, 5*time.Second)
		if err != nil {
			failed++
			continue
		}
		_ = c.SetDeadline(time.Now().Add(timeout))
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: signer-agent\r\n\r\n"); err != nil {
			failed++
		} else if _, err := c.Read(buf); err != nil {
			failed++
		}
		_ = c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	return conns, failed
}

// TestFDPressure: the agent runs with an open-file limit of 512 while its
// connection cap is the default 1024, the setting of the outage in issue
// #12 (accept failing with EMFILE on every socket), and one uid may use
// them all. The agent lowers its cap at start to what its descriptors
// hold and says so. Then 1500 idle
// connections arrive (more in the soak): the longest-idle are closed for
// the new ones, the agent never runs out of descriptors, the admin socket
// answers, and a new allowed caller signs.
func TestFDPressure(t *testing.T) {
	const nofile = 512
	// One uid may hold every connection (sidecars of one scanner image
	// usually share a uid), so the per-peer cap does not step in first.
	p := newAgent(t, procOptions{nofile: nofile, edit: func(c *config.Config) {
		c.Limits.MaxConnections, c.Limits.MaxConnectionsPerPeer = 1024, 1024
	}})
	if lg := p.log(); !strings.Contains(lg, "caps lowered") {
		t.Fatalf("the agent did not lower its connection caps under nofile=%d:\n%s", nofile, tail(lg, 10))
	}
	l := newLedger(t, p)
	n := 1500
	if soak(t) > 0 {
		n = 12000 // with n/3 more below, under this process's 20 000 descriptors
	}
	conns, failed := idleConns(t, p.api, n)
	fds := p.openFDs()
	t.Logf("%d idle connections opened (%d dials failed); the agent holds %d descriptors (limit %d)", len(conns), failed, fds, nofile)
	if fds >= nofile {
		t.Fatalf("the agent holds %d descriptors, its limit is %d", fds, nofile)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := p.adminClient().Health(ctx); err != nil {
		t.Fatalf("the admin socket does not answer under fd pressure: %v", err)
	}
	c := p.client()
	defer c.CloseIdleConnections()
	if _, err := l.sign(ctx, c, signRequest(1)); err != nil {
		t.Fatalf("a new allowed caller cannot sign under fd pressure: %v", err)
	}
	ld := startLoad(t, p, l, 2)
	more, _ := idleConns(t, p.api, n/3) // keep the pressure on while signing
	time.Sleep(loadFor(t, time.Second, 1))
	ld.halt()
	mctx, mcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer mcancel()
	m, err := p.adminClient().Metrics(mctx)
	if err != nil {
		t.Fatal(err)
	}
	evicted := grepLines(m, `signer_connections_evicted_total{socket="api"}`)
	if evicted == "" || strings.HasSuffix(evicted, " 0") {
		t.Fatalf("no idle connection was evicted: %q", evicted)
	}
	t.Logf("%s; %d more idle connections during the load; %s", evicted, len(more), l)
	if lg := p.log(); strings.Contains(lg, "too many open files") {
		t.Fatalf("the agent ran out of descriptors:\n%s", grepLines([]byte(lg), "too many open files"))
	}
	finish(t, p, l, checkOpts{})
}
