package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Label values the package fills in itself.
const (
	// ResultOK and ResultError are the result label of
	// signer_key_signatures_total.
	ResultOK    = "ok"
	ResultError = "error"
	// CodeOK is the code label of an allowed request (no error code).
	CodeOK = "ok"
	// None stands for an empty label value (a release verdict without a
	// source, say).
	None = "none"
	// Other replaces a route or error code the package does not know, so
	// a caller cannot create series by sending odd paths.
	Other = "other"
)

// PoE verdict states, the state label of signer_poe_verdicts_total. They
// equal the entitlement package's State* constants; every state is
// exported at 0 from the start so that increase() sees the first verdict.
var PoEStates = []string{"valid", "cached", "grace", "bypass", "denied", "unavailable"}

// Quota kinds, the kind label of signer_quota_hits_total.
const (
	QuotaRate        = "rate"
	QuotaConcurrency = "concurrency"
	QuotaSize        = "size"
	QuotaDaily       = "daily"
)

// LatencyBuckets are the histogram buckets, in seconds, of every latency
// metric: 0.5 ms to 5 s, about three per decade. A local signer answers in
// milliseconds (file and TPM keys) to a second or two (PKCS#11 tokens,
// KMS, Fulcio); anything slower lands in +Inf.
var LatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// BatchBuckets are the buckets of signer_audit_batch_size (records per
// group commit).
var BatchBuckets = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256}

// Metrics holds the agent's Prometheus metrics in a registry of its own
// (never the global default registry), with the Go runtime and process
// collectors. All methods are safe for concurrent use, and every method is
// a no-op on a nil *Metrics, so an agent with metrics turned off can hold
// a nil one.
type Metrics struct {
	// Registry holds every metric below plus the Go and process
	// collectors. Register extra collectors here, never in the default
	// registry.
	Registry *prometheus.Registry

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	gateDuration    *prometheus.HistogramVec
	signDuration    *prometheus.HistogramVec
	signatures      *prometheus.CounterVec
	poe             *prometheus.CounterVec
	quotaHits       *prometheus.CounterVec
	release         *prometheus.CounterVec
	fallback        *prometheus.CounterVec
	keys            *keyCollector
	auditDuration   prometheus.Histogram
	auditBatch      prometheus.Histogram
	auditFailures   prometheus.Counter
	auditEvents     *prometheus.CounterVec
	auditQueue      prometheus.Gauge
	journal         *journalCollector
	ready           prometheus.Gauge
	bypass          prometheus.Gauge
	quotaStore      *quotaStoreMetrics // quotastore.go
	limits          *limitMetrics      // limits.go
	sidecar         *sidecarMetrics    // sidecar.go
	keyless         *keylessMetrics    // keyless.go

	handler http.Handler
}

// New returns Metrics registered in a new registry, with the Go runtime
// and process collectors.
func New() *Metrics {
	return newMetrics(time.Now)
}

func newMetrics(now func() time.Time) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_requests_total",
			Help: "Requests answered, by route, decision (allow/deny) and error code (ok when allowed).",
		}, []string{"route", "decision", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signer_request_duration_seconds",
			Help:    "Time from the request's arrival to its answer, by route.",
			Buckets: LatencyBuckets,
		}, []string{"route"}),
		gateDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signer_gate_duration_seconds",
			Help:    "Time spent in one gate of the request pipeline, by gate.",
			Buckets: LatencyBuckets,
		}, []string{"gate"}),
		signDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signer_sign_duration_seconds",
			Help:    "Time of one signature by a key backend, failures included, by key source.",
			Buckets: LatencyBuckets,
		}, []string{"key_source"}),
		signatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_key_signatures_total",
			Help: "Signatures attempted, by key id, key source and result (ok/error).",
		}, []string{"key_id", "key_source", "result"}),
		poe: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_poe_verdicts_total",
			Help: "Proof-of-Entitlement verdicts, by state (valid/cached/grace/bypass/denied/unavailable).",
		}, []string{"state"}),
		quotaHits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_quota_hits_total",
			Help: "Requests refused by a plan limit, by tenant, plan and kind (rate/concurrency/size/daily).",
		}, []string{"tenant", "plan", "kind"}),
		release: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_release_verdicts_total",
			Help: "Scanner release-integrity verdicts, by source and trusted (true/false).",
		}, []string{"source", "trusted"}),
		fallback: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_key_fallback_total",
			Help: "Signatures made with a fallback key because the primary key's backend failed.",
		}, []string{"tenant", "from_key", "to_key"}),
		keys: newKeyCollector(now),
		auditDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "signer_audit_append_duration_seconds",
			Help:    "Time of one audit group commit (writes and fdatasyncs).",
			Buckets: LatencyBuckets,
		}),
		auditBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "signer_audit_batch_size",
			Help:    "Audit records per group commit.",
			Buckets: BatchBuckets,
		}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signer_audit_failures_total",
			Help: "Audit appends that failed: the record is not durable and its request was refused.",
		}),
		auditEvents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_audit_events_total",
			Help: "Audit log maintenance events, by kind (rotated/recovered/abandoned/write_failed/pruned/prune_failed/prealloc_failed).",
		}, []string{"kind"}),
		journal: &journalCollector{},
		auditQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "signer_audit_queue_depth",
			Help: "Audit appends waiting for the writer.",
		}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "signer_ready",
			Help: "1 when the agent is ready (keys unlocked, trust roots loaded), else 0.",
		}),
		bypass: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "signer_entitlement_bypass_active",
			Help: "1 while the emergency entitlement bypass is on, else 0.",
		}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.gateDuration, m.signDuration, m.signatures,
		m.poe, m.quotaHits, m.release, m.fallback, m.keys,
		m.auditDuration, m.auditBatch, m.auditFailures, m.auditEvents, m.auditQueue, m.journal,
		m.ready, m.bypass,
	)
	m.quotaStore = newQuotaStoreMetrics(reg)
	m.limits = newLimitMetrics(reg)
	m.sidecar = newSidecarMetrics(reg)
	m.keyless = newKeylessMetrics(reg)
	// Series whose first increment alerts watch for start at 0: a
	// counter that first appears at 1 shows no increase().
	for _, s := range PoEStates {
		m.poe.WithLabelValues(s)
	}
	for _, k := range auditEventKinds {
		m.auditEvents.WithLabelValues(k)
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		// Serve what can be gathered rather than nothing, and count the
		// errors in promhttp_metric_handler_errors_total.
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
	})
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return m.handler
}

// Request records one answered request. route is the request path; known
// paths are kept, admin key paths become /admin/v1/keys/{id}/<action> and
// anything else "other" (see Route). decision is allow or deny; code is
// the proto error code, empty (or "ok") for an allowed request; an unknown
// code becomes "other". d is the whole request's latency.
func (m *Metrics) Request(route, decision, code string, d time.Duration) {
	if m == nil {
		return
	}
	route = Route(route)
	add(m.requests, route, orNone(decision), errorCode(code))
	observe(m.requestDuration, d, route)
}

// Gate records the time one gate took, by the agent's gate name
// (transport, peer, route, optok, dpop, mtls, body, entitlement, release,
// quota, policy, sign, audit).
func (m *Metrics) Gate(gate string, d time.Duration) {
	if m == nil {
		return
	}
	observe(m.gateDuration, d, orNone(gate))
}

// Sign records one signature by key keyID from backend source (the key
// URI scheme: file, pkcs11, tpm, fido2, awskms, …, keyless). The latency
// is observed whether or not it succeeded.
func (m *Metrics) Sign(keyID, source string, d time.Duration, ok bool) {
	if m == nil {
		return
	}
	source = orNone(source)
	observe(m.signDuration, d, source)
	result := ResultOK
	if !ok {
		result = ResultError
	}
	add(m.signatures, orNone(keyID), source, result)
}

// PoE records one entitlement verdict by its state (see PoEStates).
func (m *Metrics) PoE(state string) {
	if m == nil {
		return
	}
	add(m.poe, orNone(state))
}

// QuotaHit records a request refused by a plan limit: kind is rate,
// concurrency, size or daily (the Quota* constants).
func (m *Metrics) QuotaHit(tenant, plan, kind string) {
	if m == nil {
		return
	}
	add(m.quotaHits, orNone(tenant), orNone(plan), orNone(kind))
}

// Release records one release-integrity verdict: source is what decided
// (referrers, tag, allowlist, offline-bundle, cache; empty for a denial
// with no source, exported as "none").
func (m *Metrics) Release(source string, trusted bool) {
	if m == nil {
		return
	}
	add(m.release, orNone(source), strconv.FormatBool(trusted))
}

// Fallback records a signature made with key to because key from failed,
// for tenant.
func (m *Metrics) Fallback(tenant, from, to string) {
	if m == nil {
		return
	}
	add(m.fallback, orNone(tenant), orNone(from), orNone(to))
}

// AuditCommitted records one audit group commit: how long its writes and
// fdatasyncs took and how many records it carried.
func (m *Metrics) AuditCommitted(latency time.Duration, batch int) {
	if m == nil {
		return
	}
	m.auditDuration.Observe(seconds(latency))
	m.auditBatch.Observe(float64(max(batch, 0)))
}

// AuditFailed records one audit append that failed.
func (m *Metrics) AuditFailed() {
	if m == nil {
		return
	}
	m.auditFailures.Inc()
}

// SetAuditQueueDepth sets the number of appends waiting for the audit
// writer (audit.Stats.QueueDepth).
func (m *Metrics) SetAuditQueueDepth(n int) {
	if m == nil {
		return
	}
	m.auditQueue.Set(float64(n))
}

// SetReady sets signer_ready.
func (m *Metrics) SetReady(ready bool) {
	if m == nil {
		return
	}
	m.ready.Set(b2f(ready))
}

// SetEntitlementBypass sets signer_entitlement_bypass_active.
func (m *Metrics) SetEntitlementBypass(active bool) {
	if m == nil {
		return
	}
	m.bypass.Set(b2f(active))
}

// SetKeyInfo replaces the key age and expiry gauges with keys, whole (a
// key missing from keys disappears from the scrape). Call it at start and
// after every reload, rotation or revocation with the keys that can sign:
// verify-only and revoked keys would raise expiry and age alerts for keys
// nobody signs with. Ages are computed at scrape time.
func (m *Metrics) SetKeyInfo(keys []KeyInfo) {
	if m == nil {
		return
	}
	m.keys.set(keys)
}

// add increments the child of v with the given label values. Label values
// that are not valid UTF-8 drop the sample rather than panic in the
// request path.
func add(v *prometheus.CounterVec, lvs ...string) {
	if c, err := v.GetMetricWithLabelValues(lvs...); err == nil {
		c.Inc()
	}
}

func observe(v *prometheus.HistogramVec, d time.Duration, lvs ...string) {
	if h, err := v.GetMetricWithLabelValues(lvs...); err == nil {
		h.Observe(seconds(d))
	}
}

// seconds converts d, clamping a negative duration (a clock step) to 0.
func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func orNone(s string) string {
	if s == "" {
		return None
	}
	return s
}
