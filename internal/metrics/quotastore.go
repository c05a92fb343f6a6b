package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stellaops/signer-agent/internal/quota"
)

// QuotaStoreBuckets are the buckets, in seconds, of
// signer_quota_store_duration_seconds: 50 µs to 1 s. A store on the same
// host or rack answers in a fraction of a millisecond, which the request
// latency buckets cannot tell apart.
var QuotaStoreBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1}

// quotaStoreOps and quotaStoreModes are exported at 0 once the store is
// in use, so that alerts see the first change.
var (
	quotaStoreOps   = []string{quota.OpReserve, quota.OpSettle, quota.OpProbe}
	quotaStoreModes = []quota.Mode{quota.ModeShared, quota.ModeLocalShare, quota.ModeUnavailable}
)

// quotaStoreMetrics are the shared quota store's metrics. They are
// registered with the rest but have no series until QuotaStoreObserver is
// called, so an agent with quota.store: local exports none (and its
// alerts cannot fire).
type quotaStoreMetrics struct {
	duration     *prometheus.HistogramVec
	errors       *prometheus.CounterVec
	mode         *prometheus.GaugeVec
	reservations *prometheus.CounterVec
	dropped      *prometheus.CounterVec
}

func newQuotaStoreMetrics(reg prometheus.Registerer) *quotaStoreMetrics {
	q := &quotaStoreMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "signer_quota_store_duration_seconds",
			Help:    "Round trips to the shared quota store, errors included, by op (reserve/settle/probe).",
			Buckets: QuotaStoreBuckets,
		}, []string{"op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_quota_store_errors_total",
			Help: "Round trips to the shared quota store that failed or timed out, by op (reserve/settle/probe).",
		}, []string{"op"}),
		mode: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "signer_quota_store_mode",
			Help: "1 for the current quota mode (shared/local_share/unavailable), 0 for the others; absent with quota.store local.",
		}, []string{"mode"}),
		reservations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_quota_reservations_total",
			Help: "Quota reservations with the shared store configured, by the mode that decided (shared/local_share/unavailable) and outcome.",
		}, []string{"mode", "outcome"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_quota_store_settle_dropped_total",
			Help: "Lease releases and refunds not sent to the store (down or queue full); their leases expire on their own.",
		}, nil),
	}
	reg.MustRegister(q.duration, q.errors, q.mode, q.reservations, q.dropped)
	return q
}

// QuotaStoreObserver returns the quota.Observer (quota.StoreConfig's
// Observer) that feeds the store metrics, and creates their series. Call
// it only when quota.store is redis. A nil *Metrics gives an observer
// that does nothing.
func (m *Metrics) QuotaStoreObserver() quota.Observer {
	if m == nil {
		return quotaStoreObserver{}
	}
	q := m.quotaStore
	for _, op := range quotaStoreOps {
		q.duration.WithLabelValues(op)
		q.errors.WithLabelValues(op)
	}
	for _, md := range quotaStoreModes {
		q.mode.WithLabelValues(string(md))
		q.reservations.WithLabelValues(string(md), quota.OutcomeAdmitted)
	}
	q.reservations.WithLabelValues(string(quota.ModeUnavailable), quota.OutcomeUnavailable)
	q.dropped.WithLabelValues()
	return quotaStoreObserver{q}
}

type quotaStoreObserver struct{ q *quotaStoreMetrics }

func (o quotaStoreObserver) StoreRoundTrip(op string, d time.Duration, err error) {
	if o.q == nil {
		return
	}
	op = orNone(op)
	observe(o.q.duration, d, op)
	if err != nil {
		add(o.q.errors, op)
	}
}

func (o quotaStoreObserver) Reservation(mode quota.Mode, outcome string) {
	if o.q == nil {
		return
	}
	add(o.q.reservations, orNone(string(mode)), orNone(outcome))
}

func (o quotaStoreObserver) ModeChanged(mode quota.Mode) {
	if o.q == nil {
		return
	}
	for _, md := range quotaStoreModes {
		o.q.mode.WithLabelValues(string(md)).Set(b2f(md == mode))
	}
}

func (o quotaStoreObserver) SettleDropped(n int) {
	if o.q == nil || n <= 0 {
		return
	}
	o.q.dropped.WithLabelValues().Add(float64(n))
}
