package keyless_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
	"github.com/stellaops/signer-agent/test/sigstack"
)

// writeTB writes a file for a test or benchmark.
func writeTB(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// BenchmarkAgentSign is keyless against keyful signing through the whole
// agent (issue #16): the client (DPoP proof per request) over the Unix
// socket, every gate, the durable audit log, at 1 and 16 callers.
// Keyful signs with the dev file key (ECDSA P-256); keyless makes an
// ephemeral key, gets a Fulcio certificate and an RFC 3161 timestamp from
// the package's local stack; keyless-reuse shares the key and
// certificate for a minute (keyless.reuseWindow), so only the timestamp
// is per request. Reports ops/s, p50 and p99 (docs/perf.md §12).
func BenchmarkAgentSign(b *testing.B) {
	_, digest := artifact(b, "agent benchmark\n")
	ctx := context.Background()
	start := func(reuse time.Duration) *harness.Agent {
		tsaChain := writeTB(b, "tsa.pem", sigstack.PEM(stack.TSAChain...))
		token := tokenFile(b, stack.Issuer, 10*time.Minute)
		return harness.StartAgent(b, harness.Options{FileAudit: true, Edit: func(c *config.Config) {
			c.Keyless = config.Keyless{FulcioURL: stack.FulcioURL, TSAURL: stack.TSAURL, TSAChainFile: tsaChain, ReuseWindow: reuse,
				Identity: config.KeylessIdentity{TokenFile: token}}
			harness.DevTenant(c).Keyless = config.KeylessAllowed
			p := harness.DevPlan(c)
			p.QPS, p.Burst, p.Concurrency, p.ArtifactsPerDay = 1e6, 1e6, 1024, 1e12
		}})
	}
	plain, reused := start(0), start(time.Minute)
	op := func(h *harness.Agent, mode string) func() error {
		return func() error {
			_, err := h.Client.SignDSSE(ctx, agentRequest(digest, mode))
			return err
		}
	}
	for _, o := range []struct {
		name string
		op   func() error
	}{
		{"keyful", op(plain, "")},
		{"keyless", op(plain, proto.ModeKeyless)},
		{"keyless-reuse", op(reused, proto.ModeKeyless)},
	} {
		for _, callers := range []int{1, 16} {
			b.Run(o.name+"/callers="+itoa(callers), func(b *testing.B) { timed(b, callers, o.op) })
		}
	}
}
