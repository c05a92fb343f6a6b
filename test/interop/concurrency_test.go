package interop

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestConcurrencyCapWithSlowBackend: the plan allows one request in
// flight; while a signature hangs in a paused TPM, the tenant's next
// request is throttled at once (not queued), and the first completes when
// the TPM resumes.
func TestConcurrencyCapWithSlowBackend(t *testing.T) {
	sim := harness.StartSWTPM(t)
	dir := harness.ShortTempDir(t)
	uri := sim.CreateKey(t, dir)
	h := harness.StartAgent(t, harness.Options{Dir: dir, Edit: func(c *config.Config) {
		harness.DevPlan(c).Concurrency = 1
		harness.WithDefaultKey("tpm", uri)(c)
	}})
	req := signRequestFor("a")
	ctx := context.Background()
	if _, err := h.Client.SignDSSE(ctx, req); err != nil {
		t.Fatal(err)
	}
	if err := sim.Pause(); err != nil {
		t.Fatal(err)
	}
	first := make(chan error, 1)
	go func() {
		_, err := h.Client.SignDSSE(ctx, req)
		first <- err
	}()
	// The first request holds the plan's one slot once it is past the
	// quota and policy gates (the warm-up sign passed them once).
	h.WaitMetric(t, `signer_gate_duration_seconds_count{gate="policy"}`, 2)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := h.ClientWith(h.Creds).SignDSSE(cctx, req)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != proto.CodePlanThrottled || ce.RetryAfter <= 0 {
		sim.Resume()
		t.Fatalf("second request while one is in flight: %v", err)
	}
	if err := sim.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatalf("the in-flight request: %v", err)
	}
	if _, err := h.Client.SignDSSE(ctx, req); err != nil {
		t.Fatalf("after the slot freed: %v", err)
	}
}
