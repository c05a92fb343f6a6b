package agent_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// withPlan adds a plan to the dev config; the test's PoE names it.
func withPlan(p config.Plan) func(*config.Config) {
	return func(c *config.Config) { c.Plans = append([]config.Plan{p}, c.Plans...) }
}

// clientOnPlan is a client whose PoE names plan.
func clientOnPlan(t *testing.T, h *harness.Agent, plan string) *client.Client {
	return h.ClientWith(h.Mint(t, devauth.Options{Plan: plan}))
}

func TestQuotas(t *testing.T) {
	ctx := context.Background()
	t.Run("burst then throttle", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{Edit: withPlan(config.Plan{Name: "slow", QPS: 0.01, Burst: 2})})
		cl := clientOnPlan(t, h, "slow")
		for i := 0; i < 2; i++ {
			if _, err := cl.SignDSSE(ctx, signRequest()); err != nil {
				t.Fatalf("within burst: %v", err)
			}
		}
		before := len(h.Signed())
		_, err := cl.SignDSSE(ctx, signRequest())
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
		h := harness.StartAgent(t, harness.Options{Edit: withPlan(config.Plan{Name: "free", MaxArtifactBytes: 400, ArtifactsPerDay: 2})})
		cl := clientOnPlan(t, h, "free")
		big := signRequest()
		big.Predicate = json.RawMessage(`{"filler":"` + strings.Repeat("x", 500) + `"}`)
		_, err := cl.SignDSSE(ctx, big)
		if !errors.Is(err, client.ErrArtifactTooLarge) {
			t.Fatalf("size: %v", err)
		}
		res, err := cl.SignDSSE(ctx, signRequest())
		if err != nil {
			t.Fatal(err)
		}
		if res.Quota == nil || res.Quota.Plan != "free" || res.Quota.RemainingToday != 1 {
			t.Fatalf("quota field %+v", res.Quota)
		}
		if _, err := cl.SignDSSE(ctx, signRequest()); err != nil {
			t.Fatal(err)
		}
		_, err = cl.SignDSSE(ctx, signRequest())
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != proto.CodeQuotaExhausted || ce.RetryAfter <= 0 {
			t.Fatalf("daily cap: %v", err)
		}
		// A refused request (bad predicate type) does not use the allowance.
		if len(h.Signed()) != 2 {
			t.Fatalf("%d signed", len(h.Signed()))
		}
	})
	t.Run("PoE quota overrides and plan in the response", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{})
		res, err := h.Client.SignDSSE(ctx, signRequest())
		if err != nil || res.Quota == nil || res.Quota.Plan != "dev" || res.Quota.RemainingToday != 10000000-1 {
			t.Fatalf("%v %+v", err, res.Quota)
		}
	})
	t.Run("PoE for an unknown plan", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{})
		_, err := clientOnPlan(t, h, "platinum").SignDSSE(ctx, signRequest())
		if !errors.Is(err, client.ErrEntitlementDenied) {
			t.Fatalf("got %v", err)
		}
		recs := h.Audit.Records()
		if last := recs[len(recs)-1]; last.Gate != "entitlement" || last.PoEHash == "" || !strings.Contains(last.Reason, "platinum") {
			t.Fatalf("audit %+v", last)
		}
	})
}
