package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/metrics"
	"github.com/stellaops/signer-agent/internal/peercred"
	"github.com/stellaops/signer-agent/proto"
	"go.uber.org/zap"
)

// connLimits wraps a listener with the connection limits of SPEC §3: a
// cap on open connections and one per peer (uid), checked at accept; a
// peer the socket does not allow is closed at accept and holds nothing;
// at a cap the longest-idle connection is closed for the new one, and when
// none is idle the new one is answered 503 agent_busy and closed. Each
// socket has its own connLimits, so the admin socket keeps capacity of its
// own.
//
// Its connections also turn the plain-text errors net/http writes before a
// handler runs (malformed request line, bad or duplicate headers, headers
// too large) into problem documents.
type connLimits struct {
	net.Listener
	max, perPeer int
	// allow decides at accept whether a peer may use the socket (nil:
	// no check, e.g. the mTLS listener, whose peer is its certificate).
	allow func(*peercred.Cred) bool
	// refused is told of each connection closed at accept.
	refused func(cr *peercred.Cred, code proto.Code, reason string)
	// rejected is told of each request net/http refused before a handler.
	rejected func(cr *peercred.Cred, status int, text string)
	// evicted is told of each idle connection closed for a new one.
	evicted func()

	mu     sync.Mutex
	open   map[*limitedConn]struct{}
	perUID map[uint32]int
}

func newConnLimits(l net.Listener, max, perPeer int) *connLimits {
	return &connLimits{Listener: l, max: max, perPeer: perPeer, open: map[*limitedConn]struct{}{}, perUID: map[uint32]int{}}
}

// Accept returns the next connection the limits admit; refused ones are
// dealt with here and never reach the server.
func (l *connLimits) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cr, _ := peercred.FromConn(c) // nil on TCP
		if l.allow != nil && (cr == nil || !l.allow(cr)) {
			_ = c.Close()
			if l.refused != nil {
				l.refused(cr, proto.CodePeerNotAllowed, "peer not allowed on this socket: closed at accept")
			}
			continue
		}
		lc := &limitedConn{Conn: c, l: l, cred: cr, idleSince: time.Now()}
		if reason := l.admit(lc); reason != "" {
			busy(c)
			if l.refused != nil {
				l.refused(cr, proto.CodeAgentBusy, reason)
			}
			continue
		}
		return lc, nil
	}
}

// admit counts lc in, closing the longest-idle connection (of the same
// peer at the per-peer cap) to make room; it returns why lc cannot be
// admitted, or "".
func (l *connLimits) admit(lc *limitedConn) string {
	l.mu.Lock()
	var evict *limitedConn
	reason := ""
	switch {
	case lc.cred != nil && l.perUID[lc.cred.UID] >= l.perPeer:
		if evict = l.longestIdle(func(c *limitedConn) bool { return c.cred != nil && c.cred.UID == lc.cred.UID }); evict == nil {
			reason = "the peer's connection limit is reached and none of its connections is idle"
		}
	case len(l.open) >= l.max:
		if evict = l.longestIdle(nil); evict == nil {
			reason = "the connection limit is reached and no connection is idle"
		}
	}
	if reason == "" {
		if evict != nil {
			l.forget(evict)
		}
		l.open[lc] = struct{}{}
		if lc.cred != nil {
			l.perUID[lc.cred.UID]++
		}
	}
	l.mu.Unlock()
	if evict != nil {
		_ = evict.Conn.Close()
		if l.evicted != nil {
			l.evicted()
		}
	}
	return reason
}

// longestIdle returns the connection idle the longest among those match
// accepts (nil: all), or nil when none is idle. l.mu held.
func (l *connLimits) longestIdle(match func(*limitedConn) bool) *limitedConn {
	var best *limitedConn
	for c := range l.open {
		if c.active || (match != nil && !match(c)) {
			continue
		}
		if best == nil || c.idleSince.Before(best.idleSince) {
			best = c
		}
	}
	return best
}

// forget removes c from the counts (once). l.mu held.
func (l *connLimits) forget(c *limitedConn) {
	if _, ok := l.open[c]; !ok {
		return
	}
	delete(l.open, c)
	if c.cred != nil {
		if l.perUID[c.cred.UID]--; l.perUID[c.cred.UID] <= 0 {
			delete(l.perUID, c.cred.UID)
		}
	}
}

// connState is the http.Server.ConnState hook: it tells the limits which
// connections are idle (between requests, or not yet sending one) and
// forgets closed ones.
func (l *connLimits) connState(c net.Conn, s http.ConnState) {
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateActive:
		lc.active = true
	case http.StateIdle:
		lc.active, lc.idleSince = false, time.Now()
	case http.StateHijacked, http.StateClosed:
		l.forget(lc)
	}
}

// count returns the open connections (for tests and metrics).
func (l *connLimits) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}

// limitedConn is an admitted connection.
type limitedConn struct {
	net.Conn
	l    *connLimits
	cred *peercred.Cred
	// active and idleSince are guarded by l.mu.
	active    bool
	idleSince time.Time
}

// Close closes the connection and gives its place back.
func (c *limitedConn) Close() error {
	c.l.mu.Lock()
	c.l.forget(c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// cannedHeaders ends the status line of every error net/http writes itself,
// before a handler runs (net/http server.go, conn.serve).
var cannedHeaders = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")

// Write passes responses through, except net/http's own plain-text error
// answers, which become problem documents (400 invalid_request).
func (c *limitedConn) Write(b []byte) (int, error) {
	status, text, ok := parseCanned(b)
	if !ok {
		return c.Conn.Write(b)
	}
	if c.l.rejected != nil {
		c.l.rejected(c.cred, status, text)
	}
	detail := "malformed HTTP request"
	if text != "" {
		detail += ": " + text
	}
	if _, err := c.Conn.Write(problemResponse(proto.NewProblem(proto.CodeInvalidRequest, detail, ""), 0)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// parseCanned recognises net/http's pre-handler error answers: "HTTP/1.1
// NNN Text[: detail]" + cannedHeaders + body. It returns the status and
// the detail net/http gave (never the caller's bytes).
func parseCanned(b []byte) (int, string, bool) {
	rest, ok := bytes.CutPrefix(b, []byte("HTTP/1.1 "))
	if !ok || len(rest) < 4 || rest[3] != ' ' {
		return 0, "", false
	}
	line, _, ok := bytes.Cut(rest, cannedHeaders)
	if !ok {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(line[:3]))
	if err != nil || status < 400 {
		return 0, "", false
	}
	text := ""
	if _, d, ok := bytes.Cut(line[4:], []byte(": ")); ok {
		text = string(d)
	} else if status == http.StatusRequestHeaderFieldsTooLarge {
		text = "request headers too large"
	} else if status == http.StatusNotImplemented {
		text = "unsupported transfer encoding"
	}
	return status, text, true
}

// problemResponse is a complete HTTP/1.1 response carrying p, closing the
// connection.
func problemResponse(p *proto.Problem, retryAfter time.Duration) []byte {
	body, _ := json.Marshal(p)
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(p.Status) + " " + http.StatusText(p.Status) + "\r\n")
	b.WriteString("Content-Type: " + proto.MediaTypeProblem + "\r\n")
	if retryAfter > 0 {
		b.WriteString(proto.HeaderRetryAfter + ": " + retryAfterSeconds(retryAfter) + "\r\n")
	}
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)+1) + "\r\nConnection: close\r\n\r\n")
	b.Write(body)
	b.WriteByte('\n')
	return b.Bytes()
}

// busy answers a connection the limits refuse with 503 agent_busy and
// closes it, without reading its request.
func busy(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(problemResponse(proto.NewProblem(proto.CodeAgentBusy, "too many connections; retry later", ""), time.Second))
	if uc, ok := c.(interface{ CloseWrite() error }); ok {
		_ = uc.CloseWrite()
	}
	_ = c.Close()
}

// limitConns wraps a socket's listener in its connection limits, with the
// socket's peer allowlist checked at accept (the mTLS listener's peers are
// checked by their certificates instead), refusals metered and audited
// (rate-limited per peer), and net/http's own refusals audited.
func (a *Agent) limitConns(l net.Listener, sock socketKind, max, perPeer int) *connLimits {
	cl := newConnLimits(l, max, perPeer)
	if sock != socketTCP {
		cl.allow = func(cr *peercred.Cred) bool {
			return a.peerAllow(a.snap.Load().cfg, sock).Allows(cr.UID, cr.GID, cr.Groups)
		}
	}
	cl.refused = func(cr *peercred.Cred, code proto.Code, reason string) {
		r := metrics.RefusedBusy
		gate := gateTransport
		if code == proto.CodePeerNotAllowed {
			r, gate = metrics.RefusedPeer, gatePeer
		}
		a.metrics.ConnRefused(string(sock), r)
		a.auditConn(cr, sock, gate, code, reason)
	}
	cl.evicted = func() { a.metrics.ConnEvicted(string(sock)) }
	a.metrics.SetOpenConnections(string(sock), cl.count)
	cl.rejected = func(cr *peercred.Cred, status int, text string) {
		a.auditConn(cr, sock, gateTransport, proto.CodeInvalidRequest, fmt.Sprintf("net/http refused the request (%d): %s", status, text))
	}
	return cl
}

// auditConn audits a refusal made on a connection, before any request was
// read (rate-limited per peer like every denial).
func (a *Agent) auditConn(cr *peercred.Cred, sock socketKind, gate string, code proto.Code, reason string) {
	rec := audit.Record{
		Time: a.now().UTC(), RequestID: "conn-" + string(sock), Route: "", Peer: cr,
		Decision: audit.Deny, Gate: gate, Code: string(code), Reason: reason,
	}
	if err := a.auditDenial(context.Background(), &rec); err != nil {
		a.log.Error("audit append failed for a refused connection", zap.Error(err))
	}
}
