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

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestRefusedPeerClosedAtAccept: a peer the api socket does not allow is
// closed at accept, before a byte of its request is read, and the refusal
// is audited.
func TestRefusedPeerClosedAtAccept(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{EditConfig: func(c string) string {
		return c + "peers:\n  allow:\n    uids: [4242]\n"
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
	h := harness.StartAgent(t, harness.Options{EditConfig: func(c string) string {
		return c + "transport:\n  maxHeaderBytes: 4096\n"
	}})
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
