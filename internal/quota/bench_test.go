package quota

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// BenchmarkAdmit16 is one admission and its settlement at 16 concurrent
// callers: the node's own Limiter against the shared Store on a local
// redis-server (Unix socket), in one run so the ratio is fair. The plan
// has every limit, so the script does all its work; one tenant per
// caller, as a fleet has many tenants. docs/perf.md records the figures.
func BenchmarkAdmit16(b *testing.B) {
	plan := Plan{Name: "bench", QPS: 1e9, Burst: 1e9, Concurrency: 1 << 20, ArtifactsPerDay: 1 << 50, MaxArtifactBytes: 1 << 20}
	run := func(b *testing.B, a Admitter) {
		ctx := context.Background()
		b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
		b.ReportAllocs()
		b.ResetTimer()
		var mu sync.Mutex
		var all []time.Duration
		b.RunParallel(func(pb *testing.PB) {
			tenant := "tenant-" + randomID()
			var lat []time.Duration
			for pb.Next() {
				start := time.Now()
				tk, err := a.AdmitN(ctx, tenant, plan, 1000, 1)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Error(err)
					return
				}
				tk.Commit()
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		})
		b.StopTimer()
		if len(all) > 0 {
			slices.Sort(all)
			b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
		}
	}
	b.Run("local", func(b *testing.B) { run(b, New(0, nil)) })
	b.Run("shared", func(b *testing.B) {
		srv := startRedis(b)
		s, err := OpenRedis(context.Background(), StoreConfig{Redis: RedisConfig{Addr: srv.addr(), KeyPrefix: "bench:"}})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		run(b, s)
		if s.Mode() != ModeShared {
			b.Fatalf("store went %s: %s", s.Mode(), s.Status().Err)
		}
	})
}

// BenchmarkAdmitOneCaller is the shared Store's round trip with no
// queueing: one caller, one admission at a time.
func BenchmarkAdmitOneCaller(b *testing.B) {
	srv := startRedis(b)
	s, err := OpenRedis(context.Background(), StoreConfig{Redis: RedisConfig{Addr: srv.addr(), KeyPrefix: "bench:"}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	plan := Plan{Name: "bench", QPS: 1e9, Burst: 1e9, Concurrency: 1 << 20, ArtifactsPerDay: 1 << 50}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		tk, err := s.AdmitN(context.Background(), "tenant", plan, 1, 1)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		tk.Commit()
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
