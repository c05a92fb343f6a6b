package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stellaops/signer-agent/internal/audit"
)

// auditEventKinds are the audit.Event kinds, exported at 0 from the start.
var auditEventKinds = []string{
	audit.EventRotated, audit.EventRecovered, audit.EventAbandoned,
	audit.EventWriteFailed, audit.EventPruned, audit.EventPruneFailed, audit.EventPreallocFailed,
}

// AuditObserver returns an audit.Observer (for audit.LogConfig.Observer)
// that feeds the audit metrics:
//
//   - every commit observes signer_audit_append_duration_seconds with
//     Commit.Latency and signer_audit_batch_size with Records+Failed;
//   - signer_audit_failures_total grows by Commit.Failed, or by 1 for a
//     failed commit that had no append waiting (a recovery notice);
//   - every event counts in signer_audit_events_total{kind}.
//
// Committed runs on the audit writer goroutine; it does no more than a few
// atomic adds. A nil *Metrics gives an observer that does nothing.
func (m *Metrics) AuditObserver() audit.Observer {
	return auditObserver{m}
}

type auditObserver struct{ m *Metrics }

func (o auditObserver) Committed(c audit.Commit) {
	m := o.m
	if m == nil {
		return
	}
	m.AuditCommitted(c.Latency, c.Records+c.Failed)
	switch {
	case c.Failed > 0:
		m.auditFailures.Add(float64(c.Failed))
	case c.Err != nil:
		m.auditFailures.Inc()
	}
}

func (o auditObserver) Event(e audit.Event) {
	if o.m == nil {
		return
	}
	add(o.m.auditEvents, orNone(e.Kind))
}

// journalDesc is signer_audit_journal_entries_total{result}.
var journalDesc = prometheus.NewDesc("signer_audit_journal_entries_total",
	"Audit records forwarded to the systemd journal, by result (sent/dropped/failed); present when audit.journal is on.",
	[]string{"result"}, nil)

// journalCollector reads a JournalForwarder's counters at scrape time.
type journalCollector struct {
	stats atomic.Pointer[func() audit.JournalStats]
}

func (c *journalCollector) Describe(ch chan<- *prometheus.Desc) { ch <- journalDesc }

func (c *journalCollector) Collect(ch chan<- prometheus.Metric) {
	f := c.stats.Load()
	if f == nil {
		return
	}
	st := (*f)()
	for _, v := range []struct {
		result string
		n      uint64
	}{{"sent", st.Sent}, {"dropped", st.Dropped}, {"failed", st.Failed}} {
		ch <- prometheus.MustNewConstMetric(journalDesc, prometheus.CounterValue, float64(v.n), v.result)
	}
}

// SetAuditJournal exports the journal forwarder's counters (nil stops).
func (m *Metrics) SetAuditJournal(stats func() audit.JournalStats) {
	if m == nil {
		return
	}
	if stats == nil {
		m.journal.stats.Store(nil)
		return
	}
	m.journal.stats.Store(&stats)
}
