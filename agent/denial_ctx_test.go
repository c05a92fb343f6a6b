package agent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// ctxAuditor is an in-memory audit log that, like the durable one,
// refuses a record whose context has ended before it was queued.
type ctxAuditor struct{ *audit.Memory }

func (c ctxAuditor) Append(ctx context.Context, r *audit.Record) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("append audit record: %w", err)
	}
	return c.Memory.Append(ctx, r)
}

// TestDenialOfBrokenConnectionAudited: a body that never arrives is cut
// off by the read timeout, which also ends the request's context; the
// denial is audited all the same.
func TestDenialOfBrokenConnectionAudited(t *testing.T) {
	mem := &audit.Memory{}
	h := harness.StartAgent(t, harness.Options{Auditor: ctxAuditor{mem}, Edit: func(c *config.Config) {
		c.Transport.ReadTimeout = time.Second
	}})
	c, err := net.Dial("unix", h.APISock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	hd := h.AuthHeaders(t, h.Creds, http.MethodPost, proto.PathSignDSSE)
	head := "POST " + proto.PathSignDSSE + " HTTP/1.1\r\nHost: signer-agent\r\nX-Request-Id: stalled-body\r\nContent-Length: 1000\r\n"
	for k := range hd {
		head += k + ": " + hd.Get(k) + "\r\n"
	}
	if _, err := io.WriteString(c, head+"\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, _ = io.ReadAll(c) // the answer, then the close
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, r := range mem.Records() {
			if r.RequestID == "stalled-body" && r.Decision == audit.Deny && r.Gate == "body" && r.Code == string(proto.CodeInvalidRequest) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stalled body's denial was not audited: %+v", mem.Records())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
