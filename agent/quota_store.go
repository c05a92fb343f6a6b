package agent

import (
	"context"
	"fmt"
	"reflect"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/quota"
)

// openQuota builds the plan-quota admitter the configuration names: the
// node's own limiter (quota.store: local) or the fleet's shared store in
// Redis/Valkey (quota.store: redis; SPEC §16). The store being down is not
// an error: the outage mode applies until it answers.
func (a *Agent) openQuota(ctx context.Context, cfg *config.Config) (quota.Admitter, error) {
	if cfg.Quota.Store != config.QuotaStoreRedis {
		return quota.New(cfg.Limits.GlobalConcurrency, a.now), nil
	}
	log := a.log.Named("quota-store")
	quota.SetClientLogger(func(f string, args ...any) { log.Debug(fmt.Sprintf(f, args...)) })
	sc := cfg.Quota.StoreConfig()
	sc.GlobalConcurrency, sc.Now = cfg.Limits.GlobalConcurrency, a.now
	sc.Observer = a.metrics.QuotaStoreObserver()
	sc.OnModeChange = a.quotaModeChanged
	st, err := quota.OpenRedis(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("quota store: %w", err)
	}
	return st, nil
}

// quotaModeChanged audits, and logs once, a switch between shared
// counting and the outage mode (called by the store, once per switch).
func (a *Agent) quotaModeChanged(mc quota.ModeChange) {
	rec := audit.Record{
		Time: mc.At.UTC(), RequestID: "quota-store", Route: "quota-store",
		Decision: audit.Notice, Gate: gateQuota,
		Reason: fmt.Sprintf("quota mode %s -> %s", orStart(mc.From), mc.To),
	}
	if mc.Err != nil {
		rec.Reason += ": " + mc.Err.Error()
	}
	if mc.To == quota.ModeShared {
		a.log.Info("quota store answers again; counting shared", zap.String("from", string(mc.From)), zap.Duration("down", mc.Down))
	} else {
		a.log.Warn("quota store unreachable", zap.String("mode", string(mc.To)), zap.Error(mc.Err))
	}
	if err := a.auditor.Append(context.Background(), &rec); err != nil {
		a.log.Error("audit append failed for a quota mode switch", zap.Error(err))
	}
}

func orStart(m quota.Mode) string {
	if m == "" {
		return "start"
	}
	return string(m)
}

// quotaStatus is implemented by the shared store: readiness shows its mode.
type quotaStatus interface{ Status() quota.Status }

// warnQuotaChange logs that a reload changed the quota store settings,
// which apply only at start.
func (a *Agent) warnQuotaChange(old, next *config.Config) {
	if !reflect.DeepEqual(old.Quota, next.Quota) {
		a.log.Warn("quota store settings changed; they apply at the next start")
	}
}
