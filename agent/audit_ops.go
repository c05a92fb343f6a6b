package agent

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
)

// openAudit opens the durable audit log the configuration names (and the
// journal forwarder when audit.journal is on).
func (a *Agent) openAudit(cfg *config.Config) (*audit.Log, error) {
	var fwd audit.Forwarder
	if cfg.Audit.Journal {
		a.journal = audit.NewJournalForwarder(0)
		fwd = a.journal
		a.metrics.SetAuditJournal(a.journal.Stats)
	}
	l, err := audit.Open(audit.LogConfig{
		Dir:              cfg.Audit.Dir,
		SegmentBytes:     cfg.Audit.SegmentBytes,
		PreallocateBytes: cfg.Audit.PreallocateBytes,
		MinFreeBytes:     cfg.Audit.MinFreeBytes,
		Retention: audit.Retention{
			MaxAge: cfg.Audit.Retention.MaxAge, MaxBytes: cfg.Audit.Retention.MaxBytes,
			DeleteUnexported: cfg.Audit.Retention.DeleteUnexported,
		},
		Now:       a.now,
		Observer:  a.metrics.AuditObserver(),
		Forwarder: fwd,
	})
	if err != nil {
		if a.journal != nil {
			_ = a.journal.Close()
		}
		return nil, err
	}
	if st := l.Stats(); st.SyncMode != audit.SyncAIO {
		// Still durable, but every flush keeps a thread (and a P) busy.
		a.log.Warn("audit log flushes with blocking fdatasync", zap.String("reason", st.SyncFallback))
	}
	if a.journal != nil && !audit.JournalAvailable() {
		a.log.Warn("audit.journal is on but journald's socket is not there; records are counted as failed until it is")
	}
	return l, nil
}

// closeAudit closes the audit log, then the journal forwarder (which sends
// what the log's last commits queued).
func (a *Agent) closeAudit() {
	if err := a.auditor.Close(); err != nil {
		a.log.Error("closing audit log", zap.Error(err))
	}
	if a.journal != nil {
		_ = a.journal.Close()
	}
}

// prune applies audit retention (run hourly: the log prunes on rotation
// and export too, but an idle log needs a clock).
func (a *Agent) prune(context.Context) {
	if removed, err := a.auditor.Prune(); err != nil {
		a.log.Warn("audit retention", zap.Error(err))
	} else if len(removed) > 0 {
		a.log.Info("audit retention removed segments", zap.Strings("segments", removed))
	}
}

// seedQuotas restores today's per-tenant signature counts from the durable
// audit log, so neither a restart nor a crash resets a tenant's day: every
// signature returned to a caller has an fsynced allow record.
func (a *Agent) seedQuotas() error {
	now := a.now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	counts := map[string]int64{}
	err := a.auditor.Query(audit.Filter{Since: midnight, Decision: audit.Allow}, func(r audit.Record) error {
		if r.Gate == gateSign && r.Tenant != "" {
			counts[r.Tenant]++
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("audit: reading today's signatures: %w", err)
	}
	for t, n := range counts {
		a.quota.Seed(t, midnight, n)
	}
	return nil
}
