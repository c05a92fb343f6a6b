package metrics

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/stellaops/signer-agent/internal/audit"
)

// t0 is the fake clock's time in every test.
var t0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func newTest(t *testing.T) *Metrics {
	t.Helper()
	return newMetrics(func() time.Time { return t0 })
}

// exercise calls every method once or more with known values; the scrape
// test asserts exactly what they produce.
func exercise(m *Metrics) {
	m.SetOpenConnections("api", func() int { return 3 })
	m.SetBodyBudget(256<<20, func() int64 { return 4 << 20 })
	m.Request("/api/v1/signer/sign/dsse", "allow", "", 250*time.Millisecond)
	m.Request("/api/v1/signer/sign/dsse", "allow", "ok", 500*time.Millisecond)
	m.Request("/api/v1/signer/sign/dsse", "deny", "plan_throttled", time.Millisecond)
	m.Request("/api/v1/signer/sign/dsse", "deny", "signing_backend_unavailable", 2*time.Second)
	m.Request("/nope/../etc/passwd", "deny", "not_found", 0)
	m.Request("/admin/v1/keys/tenant-a-2026/rotate", "allow", "", time.Millisecond)
	m.Gate("entitlement", 2*time.Millisecond)
	m.Gate("sign", 3*time.Millisecond)
	m.Sign("tenant-a-2026", "pkcs11", 250*time.Millisecond, true)
	m.Sign("tenant-a-2026", "pkcs11", 2*time.Second, false)
	m.Sign("tenant-a-fallback", "file", time.Millisecond, true)
	m.Fallback("tenant-a", "tenant-a-2026", "tenant-a-fallback")
	m.KeylessFailure(KeylessFulcio)
	m.KeylessFailure(KeylessTSA)
	m.KeylessFailure("something new")
	m.PoE("valid")
	m.PoE("cached")
	m.PoE("cached")
	m.PoE("grace")
	m.QuotaHit("tenant-a", "team", QuotaRate)
	m.QuotaHit("tenant-a", "team", QuotaRate)
	m.QuotaHit("tenant-b", "free", QuotaDaily)
	m.Release("allowlist", true)
	m.Release("", false)
	m.SetKeyInfo([]KeyInfo{
		{ID: "tenant-a-2026", Source: "pkcs11", Created: t0.AddDate(-1, 0, 0), NotAfter: t0.AddDate(0, 0, 14)},
		{ID: "tenant-a-fallback", Source: "file", Created: t0.Add(-time.Hour)},
	})
	m.AuditCommitted(4*time.Millisecond, 3)
	m.AuditFailed()
	m.SetAuditQueueDepth(7)
	m.SetReady(true)
	m.SetEntitlementBypass(true)
	o := m.AuditObserver()
	o.Committed(audit.Commit{Records: 2, Failed: 1, Latency: 2 * time.Second, Err: audit.ErrUnavailable})
	o.Event(audit.Event{Kind: audit.EventRotated, Segment: "segment-000002.jsonl"})
	exerciseQuotaStore(m)
}

// want is the exposition exercise produces for the signer_* metrics
// (histograms other than signer_sign_duration_seconds are checked by
// count and sum in TestHistograms).
const want = `
# HELP signer_requests_total Requests answered, by route, decision (allow/deny) and error code (ok when allowed).
# TYPE signer_requests_total counter
signer_requests_total{code="ok",decision="allow",route="/api/v1/signer/sign/dsse"} 2
signer_requests_total{code="plan_throttled",decision="deny",route="/api/v1/signer/sign/dsse"} 1
signer_requests_total{code="signing_backend_unavailable",decision="deny",route="/api/v1/signer/sign/dsse"} 1
signer_requests_total{code="not_found",decision="deny",route="other"} 1
signer_requests_total{code="ok",decision="allow",route="/admin/v1/keys/{id}/rotate"} 1
# HELP signer_key_signatures_total Signatures attempted, by key id, key source and result (ok/error).
# TYPE signer_key_signatures_total counter
signer_key_signatures_total{key_id="tenant-a-2026",key_source="pkcs11",result="ok"} 1
signer_key_signatures_total{key_id="tenant-a-2026",key_source="pkcs11",result="error"} 1
signer_key_signatures_total{key_id="tenant-a-fallback",key_source="file",result="ok"} 1
# HELP signer_key_fallback_total Signatures made with a fallback key because the primary key's backend failed.
# TYPE signer_key_fallback_total counter
signer_key_fallback_total{from_key="tenant-a-2026",tenant="tenant-a",to_key="tenant-a-fallback"} 1
# HELP signer_keyless_failures_total Keyless signatures that failed, by cause (fulcio/tsa/identity/other); each was refused or signed by the tenant's fallback key.
# TYPE signer_keyless_failures_total counter
signer_keyless_failures_total{cause="fulcio"} 1
signer_keyless_failures_total{cause="tsa"} 1
signer_keyless_failures_total{cause="identity"} 0
signer_keyless_failures_total{cause="other"} 1
# HELP signer_poe_verdicts_total Proof-of-Entitlement verdicts, by state (valid/cached/grace/bypass/denied/unavailable).
# TYPE signer_poe_verdicts_total counter
signer_poe_verdicts_total{state="valid"} 1
signer_poe_verdicts_total{state="cached"} 2
signer_poe_verdicts_total{state="grace"} 1
signer_poe_verdicts_total{state="bypass"} 0
signer_poe_verdicts_total{state="denied"} 0
signer_poe_verdicts_total{state="unavailable"} 0
# HELP signer_quota_hits_total Requests refused by a plan limit, by tenant, plan and kind (rate/concurrency/size/daily).
# TYPE signer_quota_hits_total counter
signer_quota_hits_total{kind="rate",plan="team",tenant="tenant-a"} 2
signer_quota_hits_total{kind="daily",plan="free",tenant="tenant-b"} 1
# HELP signer_release_verdicts_total Scanner release-integrity verdicts, by source and trusted (true/false).
# TYPE signer_release_verdicts_total counter
signer_release_verdicts_total{source="allowlist",trusted="true"} 1
signer_release_verdicts_total{source="none",trusted="false"} 1
# HELP signer_key_age_seconds Seconds since the key was created, by key id and key source.
# TYPE signer_key_age_seconds gauge
signer_key_age_seconds{key_id="tenant-a-2026",key_source="pkcs11"} 31536000
signer_key_age_seconds{key_id="tenant-a-fallback",key_source="file"} 3600
# HELP signer_key_not_after_timestamp_seconds End of the key's validity window, Unix seconds, by key id.
# TYPE signer_key_not_after_timestamp_seconds gauge
signer_key_not_after_timestamp_seconds{key_id="tenant-a-2026"} 1781481600
# HELP signer_audit_failures_total Audit appends that failed: the record is not durable and its request was refused.
# TYPE signer_audit_failures_total counter
signer_audit_failures_total 2
# HELP signer_audit_events_total Audit log maintenance events, by kind (rotated/recovered/abandoned/write_failed/pruned/prune_failed/prealloc_failed).
# TYPE signer_audit_events_total counter
signer_audit_events_total{kind="rotated"} 1
signer_audit_events_total{kind="recovered"} 0
signer_audit_events_total{kind="abandoned"} 0
signer_audit_events_total{kind="write_failed"} 0
signer_audit_events_total{kind="pruned"} 0
signer_audit_events_total{kind="prune_failed"} 0
signer_audit_events_total{kind="prealloc_failed"} 0
# HELP signer_audit_queue_depth Audit appends waiting for the writer.
# TYPE signer_audit_queue_depth gauge
signer_audit_queue_depth 7
# HELP signer_ready 1 when the agent is ready (keys unlocked, trust roots loaded), else 0.
# TYPE signer_ready gauge
signer_ready 1
# HELP signer_entitlement_bypass_active 1 while the emergency entitlement bypass is on, else 0.
# TYPE signer_entitlement_bypass_active gauge
signer_entitlement_bypass_active 1
# HELP signer_sign_duration_seconds Time of one signature by a key backend, failures included, by key source.
# TYPE signer_sign_duration_seconds histogram
signer_sign_duration_seconds_bucket{key_source="file",le="0.0005"} 0
signer_sign_duration_seconds_bucket{key_source="file",le="0.001"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="0.0025"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="0.005"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="0.01"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="0.025"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="0.05"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="0.1"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="0.25"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="0.5"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="1"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="2.5"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="5"} 1
signer_sign_duration_seconds_bucket{key_source="file",le="+Inf"} 1
signer_sign_duration_seconds_sum{key_source="file"} 0.001
signer_sign_duration_seconds_count{key_source="file"} 1
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="0.0005"} 0
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="0.001"} 0
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="0.0025"} 0
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="0.005"} 0
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="0.01"} 0
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="0.025"} 0
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="0.05"} 0
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="0.1"} 0
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="0.25"} 1
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="0.5"} 1
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="1"} 1
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="2.5"} 2
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="5"} 2
signer_sign_duration_seconds_bucket{key_source="pkcs11",le="+Inf"} 2
signer_sign_duration_seconds_sum{key_source="pkcs11"} 2.25
signer_sign_duration_seconds_count{key_source="pkcs11"} 2
`

// wantNames are the families want covers.
var wantNames = []string{
	"signer_requests_total", "signer_key_signatures_total", "signer_key_fallback_total", "signer_keyless_failures_total",
	"signer_poe_verdicts_total", "signer_quota_hits_total", "signer_release_verdicts_total",
	"signer_key_age_seconds", "signer_key_not_after_timestamp_seconds",
	"signer_audit_failures_total", "signer_audit_events_total", "signer_audit_queue_depth",
	"signer_ready", "signer_entitlement_bypass_active", "signer_sign_duration_seconds",
}

// TestScrape exercises every method, scrapes the handler over HTTP and
// asserts the exact series and values.
func TestScrape(t *testing.T) {
	m := newTest(t)
	exercise(m)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()

	if err := testutil.ScrapeAndCompare(srv.URL, strings.NewReader(want), wantNames...); err != nil {
		t.Fatal(err)
	}

	// The scrape also carries the Go and process collectors.
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "signer_audit_append_duration_seconds_bucket"} {
		if !strings.Contains(string(body), "\n"+name) {
			t.Errorf("scrape has no %s", name)
		}
	}
}

// TestHistograms checks count and sum of the histograms want leaves out.
func TestHistograms(t *testing.T) {
	m := newTest(t)
	exercise(m)
	cases := []struct {
		name   string
		labels map[string]string
		count  uint64
		sum    float64
	}{
		{"signer_request_duration_seconds", map[string]string{"route": "/api/v1/signer/sign/dsse"}, 4, 2.751},
		{"signer_request_duration_seconds", map[string]string{"route": "other"}, 1, 0},
		{"signer_request_duration_seconds", map[string]string{"route": "/admin/v1/keys/{id}/rotate"}, 1, 0.001},
		{"signer_gate_duration_seconds", map[string]string{"gate": "entitlement"}, 1, 0.002},
		{"signer_gate_duration_seconds", map[string]string{"gate": "sign"}, 1, 0.003},
		// AuditCommitted(4ms, 3) and the observer's commit (2s, 2+1).
		{"signer_audit_append_duration_seconds", nil, 2, 2.004},
		{"signer_audit_batch_size", nil, 2, 6},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := histogram(t, m.Registry, c.name, c.labels)
			if h.GetSampleCount() != c.count {
				t.Errorf("count %d, want %d", h.GetSampleCount(), c.count)
			}
			if d := h.GetSampleSum() - c.sum; d > 1e-9 || d < -1e-9 {
				t.Errorf("sum %v, want %v", h.GetSampleSum(), c.sum)
			}
		})
	}
}

// histogram returns the series of family name whose labels equal labels.
func histogram(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) *dto.Histogram {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, mt := range mf.GetMetric() {
			if len(mt.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range mt.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			return mt.GetHistogram()
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return nil
}

func TestOwnRegistry(t *testing.T) {
	before, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	a, b := New(), New() // two agents in one process (tests) must not collide
	exercise(a)
	exercise(b)
	after, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("default registry went from %d to %d families", len(before), len(after))
	}
	for _, mf := range after {
		if strings.HasPrefix(mf.GetName(), "signer_") {
			t.Errorf("%s in the default registry", mf.GetName())
		}
	}
	if got := testutil.ToFloat64(a.auditQueue); got != 7 {
		t.Errorf("queue depth %v", got)
	}
}

func TestLint(t *testing.T) {
	m := newTest(t)
	exercise(m)
	problems, err := testutil.GatherAndLint(m.Registry)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "signer_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}

func TestGaugesFlip(t *testing.T) {
	m := newTest(t)
	m.SetReady(true)
	m.SetReady(false)
	m.SetEntitlementBypass(true)
	m.SetEntitlementBypass(false)
	m.SetAuditQueueDepth(3)
	m.SetAuditQueueDepth(0)
	for name, g := range map[string]prometheus.Gauge{"ready": m.ready, "bypass": m.bypass, "queue": m.auditQueue} {
		if v := testutil.ToFloat64(g); v != 0 {
			t.Errorf("%s = %v, want 0", name, v)
		}
	}
}

func TestSetKeyInfoReplacesWhole(t *testing.T) {
	m := newTest(t)
	m.SetKeyInfo([]KeyInfo{
		{ID: "old", Source: "file", Created: t0.Add(-48 * time.Hour), NotAfter: t0.Add(time.Hour)},
		{ID: "gone", Source: "tpm", Created: t0.Add(-time.Hour)},
	})
	m.SetKeyInfo([]KeyInfo{
		{ID: "new", Source: "pkcs11", Created: t0.Add(-time.Minute), NotAfter: t0.Add(90 * 24 * time.Hour)},
		{ID: "new", Source: "file", Created: t0}, // repeated id: dropped
		{ID: "nodates"},                          // no dates: no series
	})
	const want = `
# HELP signer_key_age_seconds Seconds since the key was created, by key id and key source.
# TYPE signer_key_age_seconds gauge
signer_key_age_seconds{key_id="new",key_source="pkcs11"} 60
# HELP signer_key_not_after_timestamp_seconds End of the key's validity window, Unix seconds, by key id.
# TYPE signer_key_not_after_timestamp_seconds gauge
signer_key_not_after_timestamp_seconds{key_id="new"} 1788048000
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want),
		"signer_key_age_seconds", "signer_key_not_after_timestamp_seconds"); err != nil {
		t.Fatal(err)
	}
	m.SetKeyInfo(nil)
	if n := testutil.CollectAndCount(m.keys); n != 0 {
		t.Errorf("%d key series after SetKeyInfo(nil)", n)
	}
}

func TestKeyAgeAtScrapeTime(t *testing.T) {
	now := t0
	m := newMetrics(func() time.Time { return now })
	m.SetKeyInfo([]KeyInfo{{ID: "k", Source: "file", Created: t0}})
	now = t0.Add(10 * time.Second)
	const want = `
# HELP signer_key_age_seconds Seconds since the key was created, by key id and key source.
# TYPE signer_key_age_seconds gauge
signer_key_age_seconds{key_id="k",key_source="file"} 10
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(want), "signer_key_age_seconds"); err != nil {
		t.Fatal(err)
	}
}

func TestRoute(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"sign", "/api/v1/signer/sign/dsse", "/api/v1/signer/sign/dsse"},
		{"export", "/api/v1/signer/sign/export", "/api/v1/signer/sign/export"},
		{"referrers", "/api/v1/signer/verify/referrers", "/api/v1/signer/verify/referrers"},
		{"keys", "/api/v1/signer/keys", "/api/v1/signer/keys"},
		{"healthz", "/healthz", "/healthz"},
		{"readyz", "/readyz", "/readyz"},
		{"audit", "/admin/v1/audit", "/admin/v1/audit"},
		{"reload", "/admin/v1/reload", "/admin/v1/reload"},
		{"bypass", "/admin/v1/entitlement/bypass", "/admin/v1/entitlement/bypass"},
		{"metrics", "/metrics", "/metrics"},
		{"rotate", "/admin/v1/keys/tenant-a-2026/rotate", "/admin/v1/keys/{id}/rotate"},
		{"revoke", "/admin/v1/keys/k/revoke", "/admin/v1/keys/{id}/revoke"},
		{"unlock", "/admin/v1/keys/fido/unlock", "/admin/v1/keys/{id}/unlock"},
		{"key action without id", "/admin/v1/keys//rotate", Other},
		{"key bad action", "/admin/v1/keys/k/delete", Other},
		{"key no action", "/admin/v1/keys/k", Other},
		{"keys root", "/admin/v1/keys/", Other},
		{"unknown", "/api/v1/signer/sign/dsse/", Other},
		{"query kept out", "/healthz?x=1", Other},
		{"empty", "", Other},
		{"traversal", "/../../etc/passwd", Other},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Route(c.in); got != c.want {
				t.Errorf("Route(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

func TestErrorCodeLabel(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"allowed", "", "ok"},
		{"ok", "ok", "ok"},
		{"known", "audit_unavailable", "audit_unavailable"},
		{"unknown", "teapot", Other},
		{"case matters", "Invalid_Request", Other},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := errorCode(c.in); got != c.want {
				t.Errorf("errorCode(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

// A label value that is not UTF-8 (a tenant from a bad token, say) drops
// the sample; it must not panic in the request path.
func TestBadLabelValueDoesNotPanic(t *testing.T) {
	m := newTest(t)
	bad := string([]byte{0xff, 0xfe})
	m.QuotaHit(bad, "team", QuotaRate)
	m.Fallback(bad, "a", "b")
	m.Sign(bad, "file", time.Millisecond, true)
	m.Gate(bad, time.Millisecond)
	m.PoE(bad)
	m.Release(bad, true)
	m.Request("/healthz", bad, "", time.Millisecond)
	if n := testutil.CollectAndCount(m.quotaHits); n != 0 {
		t.Errorf("%d quota series", n)
	}
	if _, err := m.Registry.Gather(); err != nil {
		t.Fatal(err)
	}
}

func TestNegativeDuration(t *testing.T) {
	m := newTest(t)
	m.Gate("sign", -time.Second) // a clock step
	if h := histogram(t, m.Registry, "signer_gate_duration_seconds", map[string]string{"gate": "sign"}); h.GetSampleSum() != 0 {
		t.Errorf("sum %v, want 0", h.GetSampleSum())
	}
}

// TestNil: every method is a no-op on a nil *Metrics (metrics off).
func TestNil(t *testing.T) {
	var m *Metrics
	exercise(m)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil handler: %d", rec.Code)
	}
}

func TestAuditObserver(t *testing.T) {
	cases := []struct {
		name      string
		commit    audit.Commit
		failures  float64
		batchSum  float64
		latencySm float64
	}{
		{"ok", audit.Commit{Records: 4, Bytes: 100, Latency: time.Millisecond}, 0, 4, 0.001},
		{"all failed", audit.Commit{Failed: 3, Latency: 5 * time.Millisecond, Err: audit.ErrUnavailable}, 3, 3, 0.005},
		{"partly failed", audit.Commit{Records: 1, Failed: 2, Latency: time.Millisecond, Err: audit.ErrUnavailable}, 2, 3, 0.001},
		{"notice only failed", audit.Commit{Latency: time.Millisecond, Err: audit.ErrUnavailable}, 1, 0, 0.001},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newTest(t)
			m.AuditObserver().Committed(c.commit)
			if got := testutil.ToFloat64(m.auditFailures); got != c.failures {
				t.Errorf("failures %v, want %v", got, c.failures)
			}
			b := histogram(t, m.Registry, "signer_audit_batch_size", nil)
			if b.GetSampleCount() != 1 || b.GetSampleSum() != c.batchSum {
				t.Errorf("batch count %d sum %v, want 1, %v", b.GetSampleCount(), b.GetSampleSum(), c.batchSum)
			}
			l := histogram(t, m.Registry, "signer_audit_append_duration_seconds", nil)
			if l.GetSampleCount() != 1 || l.GetSampleSum() != c.latencySm {
				t.Errorf("latency count %d sum %v, want 1, %v", l.GetSampleCount(), l.GetSampleSum(), c.latencySm)
			}
		})
	}
}

// TestAuditObserverRealLog wires the observer into a real audit.Log: good
// appends are committed and counted; when the disk fails, the failed
// appends are counted. The Log calls the observer after it answers the
// appends, so each phase ends with Close, which waits for the writer.
func TestAuditObserverRealLog(t *testing.T) {
	m := newTest(t)
	dir := filepath.Join(t.TempDir(), "audit")
	var fail failSwitch
	open := func() *audit.Log {
		l, err := audit.Open(audit.LogConfig{
			Dir:      dir,
			Observer: m.AuditObserver(),
			WrapFile: func(f audit.File) audit.File { return failingFile{f, &fail} },
		})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	rec := func() *audit.Record { return &audit.Record{Route: "/healthz", Decision: audit.Allow} }

	l := open()
	for range 3 {
		if err := l.Append(t.Context(), rec()); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := histogram(t, m.Registry, "signer_audit_batch_size", nil).GetSampleSum(); got != 3 {
		t.Errorf("%v records committed, want 3", got)
	}
	if got := testutil.ToFloat64(m.auditFailures); got != 0 {
		t.Errorf("failures %v before the fault", got)
	}

	l = open()
	fail.on.Store(true)
	if err := l.Append(t.Context(), rec()); !errors.Is(err, audit.ErrUnavailable) {
		t.Fatalf("append on a failing disk: %v", err)
	}
	st := l.Stats()
	_ = l.Close() // reports the failed segment
	if st.Failed != 1 {
		t.Fatalf("log counted %d failed appends, want 1", st.Failed)
	}
	if got := testutil.ToFloat64(m.auditFailures); got != 1 {
		t.Errorf("failures %v, want 1", got)
	}
}

// failSwitch makes failingFile's writes fail while on.
type failSwitch struct{ on atomic.Bool }

type failingFile struct {
	audit.File
	s *failSwitch
}

func (f failingFile) WriteAt(p []byte, off int64) (int, error) {
	if f.s.on.Load() {
		return 0, errors.New("injected EIO")
	}
	return f.File.WriteAt(p, off)
}

// TestLimitGauges: the connection and body-budget gauges read their
// sources at scrape time.
func TestLimitGauges(t *testing.T) {
	m := New()
	open, used := 2, int64(1<<20)
	m.SetOpenConnections("admin", func() int { return open })
	m.SetBodyBudget(64<<20, func() int64 { return used })
	open, used = 5, 3<<20
	body := scrape(t, m)
	for _, want := range []string{
		`signer_connections_open{socket="admin"} 5`,
		"signer_body_budget_used_bytes 3.145728e+06",
		"signer_body_budget_bytes 6.7108864e+07",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("no %q in\n%s", want, body)
		}
	}
	m.SetOpenConnections("admin", nil)
	if strings.Contains(scrape(t, m), "signer_connections_open") {
		t.Error("still exported after SetOpenConnections(nil)")
	}
}

// scrape returns the text exposition of m.
func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d", rec.Code)
	}
	return rec.Body.String()
}
