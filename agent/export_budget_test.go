package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestSignExportBodyBudget: an export body is charged twice against the
// in-flight memory budget. With half the budget held by a slow caller, a
// sign request of some size still fits and signs while an export of the
// same size is refused with 503 agent_busy (nothing signed, audited);
// once the budget is free the export signs. An export at the body cap
// runs when the budget is exactly maxBodyBytes × bodyMemoryFactor (the
// second charge is capped so that it always fits alone).
func TestSignExportBodyBudget(t *testing.T) {
	const maxBody, factor = 1 << 20, 4
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
		c.Transport.MaxBodyBytes, c.Limits.InflightBodyBytes, c.Limits.BodyMemoryFactor = maxBody, maxBody*factor, factor
		harness.DevPlan(c).MaxArtifactBytes = 2 << 20
	}})
	ctx := context.Background()

	exp := exportRequest(2300)
	eb, _ := json.Marshal(exp)
	sr := signRequest()
	sr.Predicate = json.RawMessage(`{"filler":"` + strings.Repeat("x", len(eb)) + `"}`)
	if len(eb) < 280<<10 || len(eb) > 320<<10 {
		t.Fatalf("export body %d bytes, want about 300 KiB", len(eb))
	}

	// A caller holds half the budget: it declares 512 KiB (charged 2 MiB)
	// and never sends the body.
	hold, err := net.Dial("unix", h.APISock)
	if err != nil {
		t.Fatal(err)
	}
	defer hold.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: signer-agent\r\nContent-Length: %d\r\n", proto.PathSignDSSE, maxBody/2)
	for k, v := range h.AuthHeaders(t, h.Creds, http.MethodPost, proto.PathSignDSSE) {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v[0])
	}
	b.WriteString("\r\n{")
	if _, err := io.WriteString(hold, b.String()); err != nil {
		t.Fatal(err)
	}
	// Wait until the held charge is in place: a sign request of twice the
	// export's size no longer fits.
	huge := signRequest()
	huge.Predicate = json.RawMessage(`{"filler":"` + strings.Repeat("x", 2*len(eb)+100<<10) + `"}`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := h.Client.SignDSSE(ctx, huge)
		if errors.Is(err, client.ErrAgentBusy) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the held charge never took effect: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	signed := len(h.Signed())
	if _, err := h.Client.SignDSSE(ctx, sr); err != nil {
		t.Fatalf("a sign request of the export's size: %v", err)
	}
	before := len(h.Audit.Records())
	_, err = h.Client.SignExport(ctx, exp)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != proto.CodeAgentBusy || ce.Status != 503 || ce.RetryAfter <= 0 {
		t.Fatalf("export while half the budget is held: %v", err)
	}
	if n := len(h.Signed()); n != signed+1 {
		t.Fatalf("%d signed, want %d", n, signed+1)
	}
	busy := 0
	for _, r := range h.Audit.Records()[before:] {
		if r.Code == string(proto.CodeAgentBusy) && r.Gate == "body" && r.Route == proto.PathSignExport {
			busy++
		}
	}
	if busy == 0 {
		t.Fatal("agent_busy refusal not audited")
	}

	hold.Close() // the held charge is given back when its request ends
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := h.Client.SignExport(ctx, exp)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("export after the budget was freed: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// An export close to the body cap, alone, fits the exact budget.
	big := exportRequest(7000)
	bb, _ := json.Marshal(big)
	if len(bb) < maxBody*8/10 || len(bb) > maxBody-1024 {
		t.Fatalf("big export body %d bytes, want close to %d", len(bb), maxBody)
	}
	if _, err := h.Client.SignExport(ctx, big); err != nil {
		t.Fatalf("export near the body cap: %v", err)
	}
}
