package fault

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
)

// rawRequest is a sign request written by hand on its own connection.
type rawRequest struct {
	id   string
	conn net.Conn
}

// sendHead dials the api socket and writes a sign request's head: the
// request line, Host, the request id, auth (when c is set) and extra
// header lines ("Name: value\r\n" each).
func sendHead(t *testing.T, p *agentProc, l *ledger, c *creds, extra string) *rawRequest {
	t.Helper()
	conn, err := net.DialTimeout("unix", p.api, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &rawRequest{id: l.nextID(), conn: conn}
	head := "POST " + proto.PathSignDSSE + " HTTP/1.1\r\nHost: " + proto.Host + "\r\nContent-Type: application/json\r\n" +
		proto.HeaderRequestID + ": " + r.id + "\r\n" + extra
	if c != nil {
		head += p.rawAuth(c, http.MethodPost, proto.PathSignDSSE)
	}
	if _, err := io.WriteString(conn, head+"\r\n"); err != nil {
		t.Fatal(err)
	}
	return r
}

// answer reads the response and records it in the ledger.
func (r *rawRequest) answer(t *testing.T, l *ledger, timeout time.Duration) (*http.Response, *proto.Problem) {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(timeout))
	resp, err := http.ReadResponse(bufio.NewReader(r.conn), nil)
	if err != nil {
		l.noteUnknown(r.id, err.Error())
		t.Fatalf("request %s: no answer: %v", r.id, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		var res proto.SignResponse
		if err := json.Unmarshal(b, &res); err != nil {
			t.Fatal(err)
		}
		l.note(r.id, &res, nil)
		return resp, nil
	}
	pr, err := proto.DecodeProblem(b)
	if err != nil || resp.Header.Get("Content-Type") != proto.MediaTypeProblem {
		t.Fatalf("request %s: %d %s is not a problem document: %s", r.id, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if pr.RequestID == r.id {
		l.noteRefused(r.id, pr.Code)
	}
	return resp, pr
}

// budgetUsed reads signer_body_budget_used_bytes from the admin socket.
func budgetUsed(t *testing.T, p *agentProc) int64 {
	t.Helper()
	m, err := p.adminClient().Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	match := regexp.MustCompile(`(?m)^signer_body_budget_used_bytes (\S+)$`).FindSubmatch(m)
	if match == nil {
		t.Fatal("no signer_body_budget_used_bytes")
	}
	f, err := strconv.ParseFloat(string(match[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return int64(f)
}

func wantProblem(t *testing.T, pr *proto.Problem, resp *http.Response, status int, code proto.Code) {
	t.Helper()
	if pr == nil || resp.StatusCode != status || pr.Code != code {
		t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, pr, status, code)
	}
}

// TestOversizedAndSlowBodies: bodies over the cap, declared or streamed,
// are refused (413) without being held; bodies that stall or end early
// are cut off by the read timeout or their end (400); declared lengths
// are charged to the in-flight budget before a byte arrives, so bodies
// that never come cannot make the agent allocate, and once the budget is
// taken callers get 503 agent_busy with Retry-After until the stalled
// bodies time out; a slow but complete body signs. Nothing refused is
// signed, and every refusal is audited.
func TestOversizedAndSlowBodies(t *testing.T) {
	const readTimeout = 3 * time.Second
	p := newAgent(t, procOptions{edit: func(c *config.Config) { c.Transport.ReadTimeout = readTimeout }})
	cfg, err := config.Load(p.cfg)
	if err != nil {
		t.Fatal(err)
	}
	maxBody := cfg.Transport.MaxBodyBytes
	lim := cfg.Limits.Resources
	l := newLedger(t, p)
	cr := p.newCreds()
	body := func(i int) []byte {
		req := signRequest(i)
		req.PoE = &proto.PoE{Format: "jwt", Value: cr.poe}
		req.ScannerImageDigest = cr.scanner
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	t.Run("declared over the cap", func(t *testing.T) {
		r := sendHead(t, p, l, nil, fmt.Sprintf("Content-Length: %d\r\n", maxBody+1))
		resp, pr := r.answer(t, l, 10*time.Second)
		wantProblem(t, pr, resp, http.StatusRequestEntityTooLarge, proto.CodePayloadTooLarge)
	})
	t.Run("streamed over the cap", func(t *testing.T) {
		r := sendHead(t, p, l, cr, "Transfer-Encoding: chunked\r\n")
		go func() {
			chunk := strings.Repeat("a", 1<<20)
			for sent := int64(0); sent <= maxBody; sent += int64(len(chunk)) {
				if _, err := fmt.Fprintf(r.conn, "%x\r\n%s\r\n", len(chunk), chunk); err != nil {
					return // the agent answered and closed
				}
			}
			_, _ = io.WriteString(r.conn, "0\r\n\r\n")
		}()
		resp, pr := r.answer(t, l, 60*time.Second)
		wantProblem(t, pr, resp, http.StatusRequestEntityTooLarge, proto.CodePayloadTooLarge)
	})
	t.Run("declared, never sent", func(t *testing.T) {
		r := sendHead(t, p, l, cr, "Content-Length: 1000\r\n")
		resp, pr := r.answer(t, l, readTimeout+30*time.Second)
		wantProblem(t, pr, resp, http.StatusBadRequest, proto.CodeInvalidRequest)
	})
	t.Run("shorter than declared", func(t *testing.T) {
		b := body(1)
		r := sendHead(t, p, l, cr, fmt.Sprintf("Content-Length: %d\r\n", len(b)+100))
		if _, err := r.conn.Write(b); err != nil {
			t.Fatal(err)
		}
		_ = r.conn.(*net.UnixConn).CloseWrite()
		resp, pr := r.answer(t, l, 30*time.Second)
		wantProblem(t, pr, resp, http.StatusBadRequest, proto.CodeInvalidRequest)
	})
	t.Run("slow but complete", func(t *testing.T) {
		b := body(2)
		r := sendHead(t, p, l, cr, fmt.Sprintf("Content-Length: %d\r\n", len(b)))
		for i := 0; i < len(b); i += len(b)/10 + 1 {
			if _, err := r.conn.Write(b[i:min(i+len(b)/10+1, len(b))]); err != nil {
				t.Fatal(err)
			}
			time.Sleep(readTimeout / 30)
		}
		resp, pr := r.answer(t, l, 30*time.Second)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("slow complete body: %d %+v", resp.StatusCode, pr)
		}
	})
	t.Run("budget taken by declared bodies", func(t *testing.T) {
		each := maxBody * int64(lim.BodyMemoryFactor)
		k := int(lim.InflightBodyBytes / each)
		var held []*rawRequest
		for i := 0; i < k; i++ {
			held = append(held, sendHead(t, p, l, cr, fmt.Sprintf("Content-Length: %d\r\n", maxBody)))
		}
		waitFor(t, 30*time.Second, fmt.Sprintf("%d declared bodies charged to the budget", k), func() bool {
			return budgetUsed(t, p) == int64(k)*each
		})
		t.Logf("%d connections declaring %d bytes hold %d of the %d-byte budget", k, maxBody, int64(k)*each, lim.InflightBodyBytes)
		for _, size := range []int64{maxBody, int64(len(body(3)))} {
			r := sendHead(t, p, l, cr, fmt.Sprintf("Content-Length: %d\r\n", size))
			resp, pr := r.answer(t, l, 30*time.Second)
			wantProblem(t, pr, resp, http.StatusServiceUnavailable, proto.CodeAgentBusy)
			if resp.Header.Get(proto.HeaderRetryAfter) == "" {
				t.Fatal("agent_busy without Retry-After")
			}
		}
		// The stalled bodies time out and give the budget back.
		for _, r := range held {
			resp, pr := r.answer(t, l, readTimeout+30*time.Second)
			wantProblem(t, pr, resp, http.StatusBadRequest, proto.CodeInvalidRequest)
		}
		waitFor(t, 30*time.Second, "the budget given back", func() bool { return budgetUsed(t, p) == 0 })
		c := p.client()
		defer c.CloseIdleConnections()
		if _, err := l.sign(context.Background(), c, signRequest(4)); err != nil {
			t.Fatalf("sign after the stalled bodies timed out: %v", err)
		}
	})
	finish(t, p, l, checkOpts{})
	t.Logf("bodies: %s", l)
}
