package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
)

// The resource targets of issue #12, measured on the real binary (make
// soak; docs/perf.md §13). Figures are logged and, with
// SIGNER_AGENT_TARGETS_OUT set, appended to that file as Markdown rows.
// The memory targets fail the soak when missed; time figures are
// reported, never asserted.

// needSoak skips a target outside the soak, saying how to run it.
func needSoak(t *testing.T) {
	t.Helper()
	if soak(t) == 0 {
		t.Skipf("a resource target of issue #12: runs in the soak only (make soak, or %s=DURATION go test ./test/fault)", SoakEnv)
	}
}

// report logs one figure and appends it to $SIGNER_AGENT_TARGETS_OUT.
func report(t *testing.T, target, measured, verdict string) {
	t.Helper()
	row := fmt.Sprintf("| %s | %s | %s |", target, measured, verdict)
	t.Log(row)
	if path := os.Getenv("SIGNER_AGENT_TARGETS_OUT"); path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fmt.Fprintln(f, row)
	}
}

func mib(b int64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// rssSampler samples the agent's VmRSS until stopped and keeps the peak.
type rssSampler struct {
	stop chan struct{}
	done chan struct{}
	peak atomic.Int64
}

func sampleRSS(t *testing.T, p *agentProc) *rssSampler {
	pid := p.pid()
	s := &rssSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
				for _, l := range strings.Split(string(b), "\n") {
					if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
						var kb int64
						fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
						if kb<<10 > s.peak.Load() {
							s.peak.Store(kb << 10)
						}
					}
				}
			}
			select {
			case <-s.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *rssSampler) halt() int64 {
	close(s.stop)
	<-s.done
	return s.peak.Load()
}

// sbomPredicate is a CycloneDX-like predicate of about size bytes: many
// small component objects with members out of RFC 8785 order, strings,
// numbers and nested arrays, as a real SBOM has.
func sbomPredicate(size int) json.RawMessage {
	var b bytes.Buffer
	b.Grow(size + 1024)
	b.WriteString(`{"specVersion":"1.6","bomFormat":"CycloneDX","serialNumber":"urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79","version":1,"components":[`)
	for i := 0; b.Len() < size-512; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"library","name":"component-%d","version":"%d.%d.%d","purl":"pkg:npm/component-%d@%d.%d.%d","bom-ref":"ref-%d",`+
			`"hashes":[{"alg":"SHA-256","content":"%064x"}],"licenses":[{"license":{"id":"Apache-2.0"}}],"scope":"required","weight":%d.5}`,
			i, i%7, i%13, i%101, i, i%7, i%13, i%101, i, i, i%1000)
	}
	fmt.Fprintf(&b, `],"componentCount":%d}`, b.Len())
	return b.Bytes()
}

// bigSigns runs n concurrent sign requests with a predicate of size
// bytes until each has a 200, retrying after agent_busy as the
// Retry-After says; it returns how many agent_busy answers came back.
func bigSigns(t *testing.T, p *agentProc, l *ledger, n, size int) (busy int64) {
	t.Helper()
	pred := sbomPredicate(size)
	var wg sync.WaitGroup
	var failed atomic.Value
	for i := 0; i < n; i++ {
		c := p.client()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.CloseIdleConnections()
			req := signRequest(i)
			req.Predicate = pred
			for attempt := 0; attempt < 1000; attempt++ {
				_, err := l.sign(context.Background(), c, req)
				var ce *client.Error
				switch {
				case err == nil:
					return
				case errors.As(err, &ce) && ce.Code == proto.CodeAgentBusy:
					atomic.AddInt64(&busy, 1)
					time.Sleep(max(ce.RetryAfter, 100*time.Millisecond) / 4)
				default:
					failed.Store(err)
					return
				}
			}
			failed.Store(errors.New("still busy after 1000 attempts"))
		}()
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("a big sign failed: %v", err)
	}
	return busy
}

// TestTargetBigSigns: 8 concurrent sign requests of 31 MiB. Target: peak
// RSS (VmHWM) below 1 GiB with the default limits. The same load with the
// budget out of the way (calibration) shows what each request really
// holds, which is what limits.bodyMemoryFactor must cover.
func TestTargetBigSigns(t *testing.T) {
	needSoak(t)
	const size = 31 << 20
	off := func(c *config.Config) {
		c.Limits.InflightBodyBytes, c.Limits.BodyMemoryFactor, c.Limits.MemoryLimit = 64<<30, 1, -1
	}
	for _, c := range []struct {
		name string
		edit func(c *config.Config)
		env  []string
	}{
		{"budget off (calibration)", off, nil},
		{"budget off, GOGC=10 (calibration: about the live heap)", off, []string{"GOGC=10"}},
		{"defaults", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newAgent(t, procOptions{edit: c.edit, env: c.env})
			l := newLedger(t, p)
			cl := p.client()
			if _, err := l.sign(context.Background(), cl, signRequest(0)); err != nil {
				t.Fatal(err)
			}
			cl.CloseIdleConnections()
			base := p.status("VmHWM")
			s := sampleRSS(t, p)
			start := time.Now()
			busy := bigSigns(t, p, l, 8, size)
			took := time.Since(start)
			peakSampled := s.halt()
			hwm := p.status("VmHWM")
			time.Sleep(30 * time.Second)
			after := p.status("VmRSS")
			cfg, _ := config.Load(p.cfg)
			lim := cfg.Limits.Resources
			perReq := float64(hwm-base) / 8
			verdict := "target < 1 GiB: met"
			if hwm >= 1<<30 {
				verdict = "target < 1 GiB: MISSED"
			}
			if c.edit != nil {
				verdict = fmt.Sprintf("calibration: (VmHWM − idle)/8 = %s per request = %.1f× its body", mib(int64(perReq)), perReq/size)
			}
			report(t, fmt.Sprintf("8 × 31 MiB signs, %s (budget %s, factor %d, memoryLimit %d)", c.name, mib(lim.InflightBodyBytes), lim.BodyMemoryFactor, lim.MemoryLimit),
				fmt.Sprintf("VmHWM %s (idle %s, sampled peak %s), RSS 30 s later %s, %d agent_busy retries, %.1f s", mib(hwm), mib(base), mib(peakSampled), mib(after), busy, took.Seconds()),
				verdict)
			finish(t, p, l, checkOpts{})
			if c.edit == nil && hwm >= 1<<30 {
				t.Fatalf("peak RSS %s with the default limits; target below 1 GiB", mib(hwm))
			}
		})
	}
}

// TestTargetHeaderOnlyConnections: 300 authenticated connections send a
// sign request's headers declaring 32 MiB bodies and nothing more.
// Target: RSS below 256 MiB. The declared bodies are charged to the
// budget before a byte arrives, those that do not fit are refused at once
// with agent_busy, connections over the per-peer cap are refused at
// accept, and nothing is allocated by the declared length.
func TestTargetHeaderOnlyConnections(t *testing.T) {
	needSoak(t)
	p := newAgent(t, procOptions{})
	cr := p.newCreds()
	const n = 300
	heads := make([]string, n)
	for i := range heads {
		heads[i] = "POST " + proto.PathSignDSSE + " HTTP/1.1\r\nHost: " + proto.Host + "\r\nContent-Type: application/json\r\nContent-Length: 33554432\r\n" +
			p.rawAuth(cr, "POST", proto.PathSignDSSE) + "\r\n"
	}
	base := p.status("VmRSS")
	s := sampleRSS(t, p)
	var conns []net.Conn
	atAccept := 0
	for _, h := range heads {
		c, err := net.Dial("unix", p.api)
		if err != nil {
			atAccept++
			continue
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, h); err != nil {
			atAccept++ // closed at accept: over the per-peer cap with none idle
		}
	}
	time.Sleep(2 * time.Second)
	rss := p.status("VmRSS")
	busy, held := 0, 0
	buf := make([]byte, 256)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		m, _ := c.Read(buf)
		switch {
		case m > 0 && bytes.Contains(buf[:m], []byte(" 503 ")):
			busy++
		case m == 0:
			held++
		}
	}
	peak := s.halt()
	hwm := p.status("VmHWM")
	verdict := "target < 256 MiB: met"
	if peak >= 256<<20 {
		verdict = "target < 256 MiB: MISSED"
	}
	report(t, fmt.Sprintf("%d header-only connections declaring 32 MiB", n),
		fmt.Sprintf("RSS %s 2 s after (idle %s, sampled peak %s, VmHWM %s); %d answered agent_busy (budget or cap), %d refused while writing (closed at accept), %d held waiting for their body",
			mib(rss), mib(base), mib(peak), mib(hwm), busy, atAccept, held),
		verdict)
	for _, c := range conns {
		c.Close()
	}
	if peak >= 256<<20 {
		t.Fatalf("RSS %s with %d header-only connections; target below 256 MiB", mib(peak), n)
	}
}

// holdConnsEnv is how many connections the hold helper opens.
const holdConnsEnv = "SIGNER_AGENT_FAULT_HOLD"

// hold is the hold helper's main: it opens $SIGNER_AGENT_FAULT_HOLD
// keep-alive connections to the socket (one request each, then idle),
// says how many it holds, and keeps them until its stdin closes. Helpers
// spread the connections of a test over processes, each with its own
// open-file limit.
func hold() int {
	sock := os.Getenv(floodSockEnv)
	n, err := strconv.Atoi(os.Getenv(holdConnsEnv))
	if sock == "" || err != nil {
		fmt.Fprintln(os.Stderr, "hold: bad environment")
		return 2
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && lim.Cur < lim.Max {
		lim.Cur = lim.Max
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	}
	conns, failed := openIdle(sock, n, 5*time.Second)
	fmt.Printf("held %d failed %d\n", len(conns), failed)
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		_ = c.Close()
	}
	return 0
}

// holder is a running hold helper.
type holder struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	held  int
	fail  int
	// read is closed once held and fail are read from its first line
	// (fail -1: none came), by the goroutine that reads it.
	read chan struct{}
}

// holdConns starts helpers processes holding n connections to sock
// between them and waits until they all hold theirs.
func holdConns(t *testing.T, sock string, n, helpers int) []*holder {
	t.Helper()
	var hs []*holder
	for i := 0; i < helpers; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), roleEnv+"=hold", floodSockEnv+"="+sock, holdConnsEnv+"="+strconv.Itoa(n/helpers))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		h := &holder{cmd: cmd, stdin: stdin, read: make(chan struct{})}
		go func() {
			defer close(h.read)
			var word string
			if _, err := fmt.Fscanln(out, &word, &h.held, &word, &h.fail); err != nil {
				h.fail = -1
			}
		}()
		// Closing stdin ends the helper, so its stdout ends and the
		// reader returns; only then is the process waited for.
		t.Cleanup(func() { h.stdin.Close(); <-h.read; _ = h.cmd.Wait() })
		hs = append(hs, h)
	}
	deadline := time.After(10 * time.Minute)
	for _, h := range hs {
		select {
		case <-h.read:
		case <-deadline:
			t.Fatal("the helpers did not hold their connections within 10 minutes")
		}
	}
	return hs
}

// TestTargetIdleConnections: 20 000 idle keep-alive connections on the
// api socket (held by two helper processes, each under its own open-file
// limit). Target: the admin socket answers within 1 s and a new allowed
// caller signs within 1 s. Measured with the default caps (the agent
// holds at most maxConnectionsPerPeer of one uid's connections and closes
// the longest idle for new ones) and with caps raised beyond what the
// agent's open-file limit can hold (it lowers them at start and holds
// all it can).
func TestTargetIdleConnections(t *testing.T) {
	needSoak(t)
	const n = 20000
	for _, c := range []struct {
		name string
		edit func(c *config.Config)
	}{
		{"default caps (eviction)", nil},
		{"caps raised to 25 000 (lowered to the fd limit)", func(c *config.Config) {
			c.Limits.MaxConnections, c.Limits.MaxConnectionsPerPeer = 25000, 25000
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newAgent(t, procOptions{edit: c.edit})
			l := newLedger(t, p)
			start := time.Now()
			hs := holdConns(t, p.api, n, 2)
			opened := time.Since(start)
			held, failed := 0, 0
			for _, h := range hs {
				held, failed = held+h.held, failed+h.fail
			}
			fds := p.openFDs()
			ctx := context.Background()
			var adminTimes, signTimes []time.Duration
			for i := 0; i < 5; i++ {
				adm := p.adminClient()
				t0 := time.Now()
				if _, err := adm.Health(ctx); err != nil {
					t.Fatalf("admin socket: %v", err)
				}
				adminTimes = append(adminTimes, time.Since(t0))
				cl := p.client() // a new caller: a new connection, first request
				t0 = time.Now()
				if _, err := l.sign(ctx, cl, signRequest(i)); err != nil {
					t.Fatalf("new caller: %v", err)
				}
				signTimes = append(signTimes, time.Since(t0))
				cl.CloseIdleConnections()
			}
			verdict := "target ≤ 1 s each: met"
			if slicesMax(adminTimes) > time.Second || slicesMax(signTimes) > time.Second {
				verdict = "target ≤ 1 s each: MISSED"
			}
			capNote := ""
			if strings.Contains(p.log(), "caps lowered") {
				capNote = " (caps lowered at start to the fd limit)"
			}
			report(t, fmt.Sprintf("%d idle api connections, %s", n, c.name),
				fmt.Sprintf("%d held by the callers after %.0f s (%d dials/requests failed), the agent holds %d fds%s, VmRSS %s; admin healthz worst of 5 %v, a new caller's first sign worst of 5 %v (nonce round trip included)",
					held, opened.Seconds(), failed, fds, capNote, mib(p.status("VmRSS")), slicesMax(adminTimes).Round(time.Millisecond), slicesMax(signTimes).Round(time.Millisecond)),
				verdict)
			for _, h := range hs {
				h.stdin.Close()
			}
			finish(t, p, l, checkOpts{})
		})
	}
}

func slicesMax(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// TestTargetRefusedPeerFlood: a refused peer connecting as fast as it can
// for the soak's duration (at least 30 s). Target: at most 10 audit
// records per second.
func TestTargetRefusedPeerFlood(t *testing.T) {
	needSoak(t)
	p := newAgent(t, procOptions{edit: func(c *config.Config) {
		c.Limits.DenialAuditRate, c.Limits.DenialAuditBurst = 0, 0
	}})
	res := runFlood(t, p, max(30*time.Second, soak(t)/10), 8)
	p.stop()
	countFlood(t, p.auditDir, &res)
	perSec := float64(res.records) / res.elapsed.Seconds()
	verdict := "target ≤ 10/s: met"
	if perSec > 10 {
		verdict = "target ≤ 10/s: MISSED"
	}
	report(t, "refused peer flooding (8 connections at a time)",
		fmt.Sprintf("%d connections in %.0f s (%.0f/s) → %d audit records, %.1f/s (%d summaries standing for %d denials)",
			res.conns, res.elapsed.Seconds(), float64(res.conns)/res.elapsed.Seconds(), res.records, perSec, res.summaries, res.suppressed),
		verdict)
	if perSec > 10 {
		t.Fatalf("%.1f audit records per second from a refused peer; target at most 10", perSec)
	}
}

// BenchmarkLimitsOverhead: sign throughput of the real binary with every
// limit of issue #12 at its default (on) against the same agent with the
// limits out of the way (off: caps, budget and denial rate too large to
// matter, no memory limit). Both agents run at once; 16 callers sign 1
// KiB statements on one, then the other, alternating in chunks of 100
// signatures, so both see the same machine and the ratio compares like
// with like. b.N signatures go to each agent. Target: on/off ≥ 0.95.
//
//	go test -run '^$' -bench LimitsOverhead -benchtime 4000x -count 3 ./test/fault
func BenchmarkLimitsOverhead(b *testing.B) {
	off := benchAgent(b, func(c *config.Config) {
		c.Limits.MaxConnections, c.Limits.MaxConnectionsPerPeer = 1<<20, 1<<20
		c.Limits.InflightBodyBytes, c.Limits.BodyMemoryFactor, c.Limits.MemoryLimit = 1<<40, 1, -1
		c.Limits.DenialAuditRate, c.Limits.DenialAuditBurst = 1e9, 1<<30
		c.Limits.GlobalConcurrency = 0
	})
	on := benchAgent(b, func(c *config.Config) {
		c.Limits.DenialAuditRate, c.Limits.DenialAuditBurst = 0, 0 // the defaults
	})
	const callers, chunk = 16, 100
	clientsOf := func(p *agentProc) []*client.Client {
		cs := make([]*client.Client, callers)
		for i := range cs {
			cs[i] = p.client()
			if _, err := cs[i].SignDSSE(context.Background(), signRequest(0)); err != nil { // connection and nonce
				b.Fatal(err)
			}
		}
		return cs
	}
	offC, onC := clientsOf(off), clientsOf(on)
	run := func(cs []*client.Client, n int) time.Duration {
		var next atomic.Int64
		var wg sync.WaitGroup
		var failed atomic.Value
		t0 := time.Now()
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= int64(n); i = next.Add(1) {
					if _, err := c.SignDSSE(context.Background(), signRequest(int(i))); err != nil {
						failed.Store(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	var offT, onT time.Duration
	b.ResetTimer()
	for done := 0; done < b.N; done += chunk {
		n := min(chunk, b.N-done)
		if (done/chunk)%2 == 0 {
			offT += run(offC, n)
			onT += run(onC, n)
		} else {
			onT += run(onC, n)
			offT += run(offC, n)
		}
	}
	b.StopTimer()
	offRate, onRate := float64(b.N)/offT.Seconds(), float64(b.N)/onT.Seconds()
	b.ReportMetric(offRate, "off-signs/s")
	b.ReportMetric(onRate, "on-signs/s")
	b.ReportMetric(onRate/offRate, "on/off")
	b.ReportMetric(0, "ns/op")
}

// benchAgent starts the real binary for a benchmark, logging warnings
// only.
func benchAgent(b *testing.B, edit func(c *config.Config)) *agentProc {
	b.Helper()
	return newAgent(b, procOptions{edit: func(c *config.Config) {
		c.Logging.Level = "warn"
		edit(c)
	}})
}
