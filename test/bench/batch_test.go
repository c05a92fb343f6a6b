package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// Issue #13's batch targets: batches of 16 statements (1 KiB each, 16
// concurrent callers, durable audit and the idempotency journal on, as the
// client sends an Idempotency-Key with every call) against OpenSSH
// ssh-agent (BenchmarkSSHAgentSign, ≥ 3× in statements/s) and against
// in-process signing of the same statements (≥ 0.5×). One op is one batch
// of batchSize statements in both batch benchmarks; bench.sh turns ns/op
// into statements/s.

const batchSize = 16

// batchOf16 is a batch of 16 distinct 1 KiB statements.
func batchOf16() *proto.BatchRequest {
	reqs := make([]proto.SignRequest, batchSize)
	for i := range reqs {
		r := request(1024)
		r.Subject[0].Name = fmt.Sprintf("registry.example/app-%d", i)
		reqs[i] = *r
	}
	return &proto.BatchRequest{Requests: reqs}
}

// BenchmarkAgentSignBatch16: the agent end to end through
// client.SignBatch, every item signed.
func BenchmarkAgentSignBatch16(b *testing.B) {
	h := harness.StartAgent(b, harness.Options{FileAudit: true})
	batch := batchOf16()
	ctx := context.Background()
	res, err := h.Client.SignBatch(ctx, batch)
	if err != nil {
		b.Fatal(err)
	}
	for i := range res.Results {
		if err := client.BatchItemError(&res.Results[i]); err != nil {
			b.Fatalf("item %d: %v", i, err)
		}
	}
	b.ResetTimer()
	parallel16Timed(b, func() error {
		res, err := h.Client.SignBatch(ctx, batch)
		if err == nil && !res.Results[batchSize-1].OK() {
			err = client.BatchItemError(&res.Results[batchSize-1])
		}
		return err
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "statements/s")
}

// BenchmarkInProcessSignBatch16: the same 16 statements decoded as a batch
// body, canonicalised and signed (DSSE and bundle) with the same file key
// in process: the work the agent cannot avoid, without HTTP, gates, audit
// or the journal.
func BenchmarkInProcessSignBatch16(b *testing.B) {
	h := harness.StartAgent(b, harness.Options{FileAudit: true})
	s := fileSigner(b, h)
	body, err := json.Marshal(batchOf16())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ResetTimer()
	parallel16(b, func(pb *testing.PB) {
		for pb.Next() {
			d, err := proto.DecodeBatchRequest(body)
			if err != nil {
				b.Error(err)
				return
			}
			for _, it := range d.Items {
				if err := signInProcess(ctx, it.Request, s); err != nil {
					b.Error(err)
					return
				}
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N*batchSize)/b.Elapsed().Seconds(), "statements/s")
}

// BenchmarkAgentSignNoKey is BenchmarkAgentSign with the client's
// Idempotency-Keys off: the single-request cost of the idempotency journal
// (one more write and fdatasync, group committed) is the difference.
func BenchmarkAgentSignNoKey(b *testing.B) {
	h := harness.StartAgent(b, harness.Options{FileAudit: true})
	c := h.ClientWith(h.Creds)
	c.DisableIdempotencyKeys = true
	req := request(1024)
	ctx := context.Background()
	b.ResetTimer()
	parallel16Timed(b, func() error {
		_, err := c.SignDSSE(ctx, req)
		return err
	})
}
