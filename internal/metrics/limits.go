package metrics

import "github.com/prometheus/client_golang/prometheus"

// Reasons a connection is closed at accept, the reason label of
// signer_connections_refused_total.
const (
	RefusedPeer = "peer" // the peer is not allowed on the socket
	RefusedBusy = "busy" // a connection cap, with no idle connection to close
)

// limitMetrics count what the resource limits of SPEC §3 turned away.
type limitMetrics struct {
	refused    *prometheus.CounterVec
	evicted    *prometheus.CounterVec
	bodyBusy   prometheus.Counter
	suppressed prometheus.Counter
}

func newLimitMetrics(reg prometheus.Registerer) *limitMetrics {
	l := &limitMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_connections_refused_total",
			Help: "Connections closed at accept, by socket and reason (peer: not allowed; busy: at a connection cap with none idle).",
		}, []string{"socket", "reason"}),
		evicted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "signer_connections_evicted_total",
			Help: "Idle connections closed to make room for a new one at a connection cap, by socket.",
		}, []string{"socket"}),
		bodyBusy: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signer_body_budget_refused_total",
			Help: "Requests refused with agent_busy because their body did not fit the in-flight memory budget.",
		}),
		suppressed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "signer_audit_denials_suppressed_total",
			Help: "Denials not written to the audit log one by one because their peer exceeded its denial-record rate; each burst is one summary record.",
		}),
	}
	for _, s := range []string{"api", "admin", "tcp"} {
		for _, r := range []string{RefusedPeer, RefusedBusy} {
			l.refused.WithLabelValues(s, r)
		}
		l.evicted.WithLabelValues(s)
	}
	reg.MustRegister(l.refused, l.evicted, l.bodyBusy, l.suppressed)
	return l
}

// ConnRefused counts a connection closed at accept on socket.
func (m *Metrics) ConnRefused(socket, reason string) {
	if m == nil {
		return
	}
	m.limits.refused.WithLabelValues(socket, reason).Inc()
}

// ConnEvicted counts an idle connection closed for a new one on socket.
func (m *Metrics) ConnEvicted(socket string) {
	if m == nil {
		return
	}
	m.limits.evicted.WithLabelValues(socket).Inc()
}

// BodyBudgetRefused counts a request refused for the memory budget.
func (m *Metrics) BodyBudgetRefused() {
	if m == nil {
		return
	}
	m.limits.bodyBusy.Inc()
}

// DenialsSuppressed counts n denials folded into a summary record.
func (m *Metrics) DenialsSuppressed(n int) {
	if m == nil {
		return
	}
	m.limits.suppressed.Add(float64(n))
}
