package agent_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestRefusedPeerClosedAtAccept: a peer the api socket does not allow is
// closed at accept, before a byte of its request is read, and the refusal
// is audited.
func TestRefusedPeerClosedAtAccept(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
		c.Peers.Allow = &config.PeerAllow{UIDs: []uint32{4242}}
	}})
	c, err := net.Dial("unix", h.APISock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: signer-agent\r\n\r\n")
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("refused peer got %d bytes, err %v; want the connection closed", n, err)
	}
	waitRecord(t, h, func(r audit.Record) bool {
		return r.Decision == audit.Deny && r.Code == string(proto.CodePeerNotAllowed) && r.Gate == "peer" && r.Peer != nil
	})
	if len(h.Signed()) != 0 {
		t.Fatal("signed")
	}
}

// TestTransportErrorsAreProblems: the errors net/http raises before any
// handler runs come back as problem documents, and are audited.
func TestTransportErrorsAreProblems(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) { c.Transport.MaxHeaderBytes = 4096 }})
	for _, tc := range []struct{ name, raw string }{
		{"malformed request line", "GARBAGE\r\n\r\n"},
		{"missing Host", "GET /healthz HTTP/1.1\r\n\r\n"},
		{"duplicate Content-Length", "POST /api/v1/signer/sign/dsse HTTP/1.1\r\nHost: signer-agent\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"},
		{"headers too large", "GET /healthz HTTP/1.1\r\nHost: signer-agent\r\nX-Pad: " + strings.Repeat("a", 8192) + "\r\n\r\n"},
		{"unsupported transfer encoding", "POST /api/v1/signer/sign/dsse HTTP/1.1\r\nHost: signer-agent\r\nTransfer-Encoding: gzip\r\n\r\n"},
		{"bad header name", "GET /healthz HTTP/1.1\r\nHost: signer-agent\r\nBad Header: x\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.Audit.Records())
			c, err := net.Dial("unix", h.APISock)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.WriteString(c, tc.raw); err != nil {
				t.Fatal(err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != proto.MediaTypeProblem {
				t.Fatalf("%d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
			p, err := proto.DecodeProblem(b)
			if err != nil || p.Code != proto.CodeInvalidRequest {
				t.Fatalf("problem %+v %v", p, err)
			}
			if strings.Contains(string(b), "aaaa") {
				t.Fatal("the problem echoes the request")
			}
			waitRecord(t, h, func(r audit.Record) bool {
				return r.Decision == audit.Deny && r.Code == string(proto.CodeInvalidRequest) && r.Gate == "transport" && r.Peer != nil
			}, before)
		})
	}
}

// waitRecord waits for an audit record (after the first skip ones)
// matching ok.
func waitRecord(t *testing.T, h *harness.Agent, ok func(audit.Record) bool, skip ...int) {
	t.Helper()
	from := 0
	if len(skip) > 0 {
		from = skip[0]
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := h.Audit.Records()
		for _, r := range recs[min(from, len(recs)):] {
			if ok(r) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no matching audit record in %+v", recs[min(from, len(recs)):])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// idleConn opens a connection and sends one request on it, leaving it
// idle (keep-alive) afterwards.
func idleConn(t *testing.T, sock string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: signer-agent\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = c.SetDeadline(time.Time{})
	return c
}

// closed reports whether the agent has closed c.
func closed(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestConnectionCaps: at the api socket's cap the longest-idle connection
// makes room for a new one, a peer at its own cap loses its own idle
// connection, and the admin socket keeps answering whatever the api holds.
func TestConnectionCaps(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
		c.Limits.MaxConnections, c.Limits.MaxConnectionsPerPeer, c.Limits.AdminMaxConnections = 4, 4, 2
	}})
	var conns []net.Conn
	for range 4 {
		conns = append(conns, idleConn(t, h.APISock))
		time.Sleep(5 * time.Millisecond) // distinct idle times
	}
	// A fifth connection closes the first (longest idle) and is served.
	fifth := idleConn(t, h.APISock)
	if !closed(conns[0]) {
		t.Fatal("the longest-idle connection was not closed for the new one")
	}
	for _, c := range conns[1:] {
		if closed(c) {
			t.Fatal("a more recently used connection was closed")
		}
	}
	_ = fifth
	// The admin socket has capacity of its own.
	for range 2 {
		idleConn(t, h.AdminSock)
	}
	if r, err := (&http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", h.AdminSock)
	}}}).Get("http://signer-agent/healthz"); err != nil || r.StatusCode != 200 {
		t.Fatalf("admin socket while the api is full: %v %v", r, err)
	}
}

// TestConnectionCapBusy: when every connection at the cap is busy, a new
// one is answered 503 agent_busy with Retry-After, and the refusal is
// audited.
func TestConnectionCapBusy(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
		c.Limits.MaxConnections, c.Limits.MaxConnectionsPerPeer = 2, 2
	}})
	// Two connections stay active: each sends headers promising a body it
	// never sends.
	const optok = `signer_gate_duration_seconds_count{gate="optok"}`
	seen := harness.MetricValue(t, h.Scrape(t), optok)
	for range 2 {
		c, err := net.Dial("unix", h.APISock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /api/v1/signer/sign/dsse HTTP/1.1\r\nHost: signer-agent\r\nContent-Length: 100\r\n\r\n{")
	}
	h.WaitMetric(t, optok, seen+2) // the server has read both requests' headers
	c, err := net.Dial("unix", h.APISock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	p, _ := proto.DecodeProblem(b)
	if resp.StatusCode != 503 || p == nil || p.Code != proto.CodeAgentBusy || resp.Header.Get(proto.HeaderRetryAfter) == "" {
		t.Fatalf("%d %s %v", resp.StatusCode, b, resp.Header)
	}
	waitRecord(t, h, func(r audit.Record) bool { return r.Code == string(proto.CodeAgentBusy) && r.Gate == "transport" })
}

// TestBodyBudget: a body that does not fit the in-flight memory budget is
// refused with 503 agent_busy and Retry-After before it is read; once the
// budget is free again the same request signs. A declared length never
// sizes an allocation: a request declaring the whole budget and sending
// nothing holds only its charge.
func TestBodyBudget(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
		c.Transport.MaxBodyBytes, c.Limits.InflightBodyBytes, c.Limits.BodyMemoryFactor = 1<<20, 4<<20, 4
		harness.DevPlan(c).MaxArtifactBytes = 1 << 20
	}})
	ctx := context.Background()
	// A caller holds the whole budget: it declares 1 MiB (charged 4 MiB)
	// and sends its body slowly.
	hold, err := net.Dial("unix", h.APISock)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	hdr := h.AuthHeaders(t, h.Creds, http.MethodPost, proto.PathSignDSSE)
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: signer-agent\r\nContent-Length: 1048576\r\n", proto.PathSignDSSE)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v[0])
	}
	b.WriteString("\r\n{")
	io.WriteString(hold, b.String())
	// Sign only once the held charge is in place: a sign in flight while
	// the hold is charged would hold a little of the budget and get the
	// hold itself refused (what CI once saw).
	h.WaitMetric(t, "signer_body_budget_used_bytes", 4<<20)
	var err2 error
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err2 = h.Client.SignDSSE(ctx, signRequest())
		if errors.Is(err2, client.ErrAgentBusy) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var ce *client.Error
	if !errors.As(err2, &ce) || ce.Code != proto.CodeAgentBusy || ce.RetryAfter <= 0 {
		t.Fatalf("sign while the budget is held: %v", err2)
	}
	hold.Close() // the held charge is given back when its request ends
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, err := h.Client.SignDSSE(ctx, signRequest()); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("sign after the budget was freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDenialFlood: a peer sending refused requests as fast as it can adds
// a bounded number of audit records: its first denials one by one, the
// rest as summary records with their count.
func TestDenialFlood(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
		c.Limits.DenialAuditRate, c.Limits.DenialAuditBurst = 2, 2
	}})
	hc := harness.HTTPClient(h.APISock)
	const n = 300
	for range n {
		req, _ := http.NewRequest(http.MethodPost, "http://signer-agent"+proto.PathSignDSSE, strings.NewReader("{}"))
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	// Wait for the summary covering the rest.
	deadline := time.Now().Add(10 * time.Second)
	for {
		one, summarised := 0, 0
		for _, r := range h.Audit.Records() {
			switch {
			case r.Gate == "audit-limit":
				var k int
				fmt.Sscanf(r.Reason, "%d", &k)
				summarised += k
			case r.Decision == audit.Deny:
				one++
			}
		}
		if one+summarised == n {
			if one > 10 {
				t.Fatalf("%d denials recorded one by one, want the burst and rate only", one)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d recorded + %d summarised, want %d", one, summarised, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
