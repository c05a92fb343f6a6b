package metrics

import (
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/audit"
)

// The request path: one request's worth of calls, series already present.
func BenchmarkRequestPath(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Gate("entitlement", time.Millisecond)
			m.PoE("valid")
			m.Release("allowlist", true)
			m.Sign("tenant-a-2026", "pkcs11", 3*time.Millisecond, true)
			m.Request("/api/v1/signer/sign/dsse", "allow", "", 5*time.Millisecond)
		}
	})
}

func BenchmarkQuotaHit(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.QuotaHit("tenant-a", "team", QuotaRate)
	}
}

func BenchmarkAuditObserver(b *testing.B) {
	o := New().AuditObserver()
	c := audit.Commit{Records: 8, Bytes: 4096, Latency: 2 * time.Millisecond}
	b.ReportAllocs()
	for b.Loop() {
		o.Committed(c)
	}
}

func BenchmarkRoute(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Route("/admin/v1/keys/tenant-a-2026/rotate")
	}
}
