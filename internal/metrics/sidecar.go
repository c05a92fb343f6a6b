package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/stellaops/signer-agent/proto"
)

// Idempotency outcomes, the outcome label of signer_idempotency_total.
const (
	// IdemStored: an answer was kept for retries of its key.
	IdemStored = "stored"
	// IdemReplayed: a retry got a kept answer (Idempotent-Replayed).
	IdemReplayed = "replayed"
	// IdemReused: a key came with a different request (422).
	IdemReused = "reused"
	// IdemNotStored: an answer over idempotency.maxBytes was sent but not
	// kept; a retry of it is served afresh.
	IdemNotStored = "not_stored"
)

// IdemOutcomes lists every idempotency outcome.
var IdemOutcomes = []string{IdemStored, IdemReplayed, IdemReused, IdemNotStored}

// sidecarMetrics count the batch endpoint's items and the idempotency
// store's outcomes (issue #13).
type sidecarMetrics struct {
	idem  *prometheus.CounterVec
	items *prometheus.CounterVec
}

func newSidecarMetrics(reg prometheus.Registerer) *sidecarMetrics {
	s := &sidecarMetrics{
		idem: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_idempotency_total",
			Help: "Requests with an Idempotency-Key by route and outcome (stored/replayed/reused/not_stored).",
		}, []string{"route", "outcome"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_batch_items_total",
			Help: "Items of admitted batches by outcome code (ok when signed).",
		}, []string{"code"}),
	}
	for _, o := range IdemOutcomes {
		s.idem.WithLabelValues(proto.PathSignDSSE, o)
	}
	s.items.WithLabelValues(CodeOK)
	reg.MustRegister(s.idem, s.items)
	return s
}

// Idempotency counts one idempotency outcome on route (a request path).
func (m *Metrics) Idempotency(route, outcome string) {
	if m == nil {
		return
	}
	add(m.sidecar.idem, Route(route), orNone(outcome))
}

// BatchItem counts one item of an admitted batch by its code ("" or "ok"
// when signed).
func (m *Metrics) BatchItem(code string) {
	if m == nil {
		return
	}
	add(m.sidecar.items, errorCode(code))
}
