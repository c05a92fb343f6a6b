package keyless_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keyless"
)

// The keyless against keyful signing benchmarks (issue #16): one
// statement signed into an envelope and a bundle, at 1 and 16 callers,
// library level. Keyful signs with an in-memory P-256 key; keyless makes
// an ephemeral key, gets a Fulcio certificate and an RFC 3161 timestamp
// from the local stack (loopback, so the figures are the servers' own
// cost; docs/perf.md adds the network round trips of a remote Fulcio and
// TSA). "keyless-reuse" shares a key and certificate for a minute
// (Config.ReuseWindow): only the timestamp is per request.
func BenchmarkSign(b *testing.B) {
	_, digest := artifact(b, "benchmark\n")
	payload := statement(b, digest)
	ctx := context.Background()
	keyful, err := keys.NewMemoryKey(keys.AlgECDSAP256)
	if err != nil {
		b.Fatal(err)
	}
	defer keyful.Close()
	ops := []struct {
		name string
		op   func() error
	}{
		{"keyful", func() error {
			_, err := attest.Sign(ctx, payload, []attest.Signer{{ID: "k", Source: "memory", Key: keyful}})
			return err
		}},
		{"keyless", keylessOp(b, payload, 0)},
		{"keyless-reuse", keylessOp(b, payload, time.Minute)},
	}
	for _, o := range ops {
		for _, callers := range []int{1, 16} {
			b.Run(o.name+"/callers="+itoa(callers), func(b *testing.B) { timed(b, callers, o.op) })
		}
	}
}

func keylessOp(b *testing.B, payload []byte, reuse time.Duration) func() error {
	s := newSigner(b, stack, func(c *keyless.Config) { c.ReuseWindow = reuse })
	ctx := context.Background()
	return func() error {
		sg, release, err := s.ForRequest(ctx, "keyless")
		if err != nil {
			return err
		}
		defer release()
		_, err = attest.Sign(ctx, payload, []attest.Signer{sg})
		return err
	}
}

// timed runs op b.N times over callers goroutines and reports ops/s and
// the p50 and p99 latency.
func timed(b *testing.B, callers int, op func() error) {
	var (
		mu   sync.Mutex
		all  []time.Duration
		next = make(chan struct{})
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d []time.Duration
			for range next {
				t := time.Now()
				if err := op(); err != nil {
					b.Error(err)
				}
				d = append(d, time.Since(t))
			}
			mu.Lock()
			all = append(all, d...)
			mu.Unlock()
		}()
	}
	for i := 0; i < b.N; i++ {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "ops/s")
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}
