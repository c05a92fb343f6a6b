package metrics

import (
	"sort"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

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
	gauges     *limitGauges
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
	l.gauges = &limitGauges{open: map[string]func() int{}}
	reg.MustRegister(l.refused, l.evicted, l.bodyBusy, l.suppressed, l.gauges)
	return l
}

var (
	connOpenDesc = prometheus.NewDesc("signer_connections_open",
		"Connections open now, by socket, counted against the socket's cap (limits.maxConnections, limits.adminMaxConnections).",
		[]string{"socket"}, nil)
	budgetUsedDesc = prometheus.NewDesc("signer_body_budget_used_bytes",
		"Bytes of the in-flight body memory budget charged now: each body in flight, declared or read so far, times limits.bodyMemoryFactor.",
		nil, nil)
	budgetTotalDesc = prometheus.NewDesc("signer_body_budget_bytes",
		"The in-flight body memory budget (limits.inflightBodyBytes).", nil, nil)
)

// limitGauges reads the agent's connection counts and body budget at
// scrape time.
type limitGauges struct {
	mu          sync.Mutex
	open        map[string]func() int
	budgetTotal int64
	budgetUsed  func() int64
}

func (g *limitGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- connOpenDesc
	ch <- budgetUsedDesc
	ch <- budgetTotalDesc
}

func (g *limitGauges) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	socks := make([]string, 0, len(g.open))
	for s := range g.open {
		socks = append(socks, s)
	}
	sort.Strings(socks)
	open := make([]func() int, len(socks))
	for i, s := range socks {
		open[i] = g.open[s]
	}
	total, used := g.budgetTotal, g.budgetUsed
	g.mu.Unlock()
	for i, s := range socks {
		ch <- prometheus.MustNewConstMetric(connOpenDesc, prometheus.GaugeValue, float64(open[i]()), s)
	}
	if used != nil {
		ch <- prometheus.MustNewConstMetric(budgetUsedDesc, prometheus.GaugeValue, float64(used()))
		ch <- prometheus.MustNewConstMetric(budgetTotalDesc, prometheus.GaugeValue, float64(total))
	}
}

// SetOpenConnections exports socket's open connection count, read from
// open at each scrape (nil stops exporting it).
func (m *Metrics) SetOpenConnections(socket string, open func() int) {
	if m == nil {
		return
	}
	g := m.limits.gauges
	g.mu.Lock()
	defer g.mu.Unlock()
	if open == nil {
		delete(g.open, socket)
		return
	}
	g.open[socket] = open
}

// SetBodyBudget exports the in-flight body budget: its total and the
// bytes charged now, read from used at each scrape.
func (m *Metrics) SetBodyBudget(total int64, used func() int64) {
	if m == nil {
		return
	}
	g := m.limits.gauges
	g.mu.Lock()
	defer g.mu.Unlock()
	g.budgetTotal, g.budgetUsed = total, used
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
