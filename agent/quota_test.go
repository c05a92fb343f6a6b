package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

func withPlans(plans, plan string) func(string) string {
	return func(c string) string {
		c = strings.Replace(c, "tenants:\n", plans+"tenants:\n", 1)
		return strings.Replace(c, "  - id: dev\n", "  - id: dev\n    plan: "+plan+"\n", 1)
	}
}

func TestQuotas(t *testing.T) {
	ctx := context.Background()
	t.Run("burst then throttle", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{EditConfig: withPlans("plans:\n  - {name: slow, qps: 0.01, burst: 2}\n", "slow")})
		for i := 0; i < 2; i++ {
			if _, err := h.Client.SignDSSE(ctx, signRequest()); err != nil {
				t.Fatalf("within burst: %v", err)
			}
		}
		before := len(h.Signed())
		_, err := h.Client.SignDSSE(ctx, signRequest())
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != proto.CodePlanThrottled || ce.Status != 429 {
			t.Fatalf("got %v", err)
		}
		// One token per 100 s at 0.01 qps.
		if ce.RetryAfter.Seconds() < 90 || ce.RetryAfter.Seconds() > 100 {
			t.Fatalf("Retry-After %v", ce.RetryAfter)
		}
		if len(h.Signed()) != before {
			t.Fatal("signed while throttled")
		}
		recs := h.Audit.Records()
		if last := recs[len(recs)-1]; last.Code != string(proto.CodePlanThrottled) || last.Plan != "slow" {
			t.Fatalf("audit %+v", last)
		}
	})
	t.Run("size and daily cap", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{EditConfig: withPlans("plans:\n  - {name: free, maxArtifactBytes: 400, artifactsPerDay: 2}\n", "free")})
		big := signRequest()
		big.Predicate = json.RawMessage(`{"filler":"` + strings.Repeat("x", 500) + `"}`)
		_, err := h.Client.SignDSSE(ctx, big)
		if !errors.Is(err, client.ErrArtifactTooLarge) {
			t.Fatalf("size: %v", err)
		}
		res, err := h.Client.SignDSSE(ctx, signRequest())
		if err != nil {
			t.Fatal(err)
		}
		if res.Quota == nil || res.Quota.Plan != "free" || res.Quota.RemainingToday != 1 {
			t.Fatalf("quota field %+v", res.Quota)
		}
		if _, err := h.Client.SignDSSE(ctx, signRequest()); err != nil {
			t.Fatal(err)
		}
		_, err = h.Client.SignDSSE(ctx, signRequest())
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != proto.CodeQuotaExhausted || ce.RetryAfter <= 0 {
			t.Fatalf("daily cap: %v", err)
		}
		// A refused request (bad predicate type) does not use the allowance.
		if len(h.Signed()) != 2 {
			t.Fatalf("%d signed", len(h.Signed()))
		}
	})
	t.Run("no plan, no limits, no quota field", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{})
		res, err := h.Client.SignDSSE(ctx, signRequest())
		if err != nil || res.Quota != nil {
			t.Fatalf("%v %+v", err, res)
		}
	})
}
