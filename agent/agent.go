package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/fido2"
	"github.com/stellaops/signer-agent/internal/metrics"
)

// errClosing is returned by Reload once Run has begun to stop.
var errClosing = errors.New("agent: stopping; reload refused")

// New loads and validates the configuration, opens the audit log and the
// keys, and builds the first snapshot. It does not listen.
func New(ctx context.Context, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	cfg, err := loadConfig(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		log:           opts.Logger,
		path:          opts.ConfigPath,
		auditor:       opts.Auditor,
		opener:        opts.Opener,
		notify:        opts.Notify,
		now:           opts.Now,
		fido2:         opts.FIDO2,
		keyRetry:      opts.KeyRetryInterval,
		reloadSignals: opts.ReloadSignals,
		afterCommit:   opts.AfterCommit,
	}
	a.reload = a.Reload
	if a.keyRetry <= 0 {
		a.keyRetry = DefaultKeyRetryInterval
	}
	if a.fido2 == nil {
		a.fido2 = func() (fido2.Authenticator, error) { return fido2.OpenDevice(os.Getenv(fido2.DeviceEnv)) }
	}
	if a.opener == nil {
		a.opener = &keys.Opener{Backends: DefaultBackends()}
	}
	if a.notify == nil {
		a.notify = sdNotify
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.nonceKey = newNonceKey()
	a.metrics = metrics.New()
	// Resource limits are read at start.
	lim := cfg.Limits.Resources
	a.denials = newDenialLimiter(lim.DenialAuditRate, lim.DenialAuditBurst, a.now)
	a.budget = newBodyBudget(lim.InflightBodyBytes, lim.BodyMemoryFactor)
	a.metrics.SetBodyBudget(lim.InflightBodyBytes, a.budget.used)
	if a.auditor == nil {
		l, err := a.openAudit(cfg)
		if err != nil {
			return nil, err
		}
		a.auditor = l
	}
	// Kept answers come back from the journal once the audit log says
	// their records are durable.
	if a.idem, err = a.openIdempotency(cfg); err != nil {
		if opts.Auditor == nil {
			a.closeAudit()
		}
		return nil, err
	}
	// Tenant buckets and counters live for the process: the quota
	// settings are read at start.
	a.quota, err = a.openQuota(ctx, cfg)
	var snap *snapshot
	if err == nil {
		snap, err = a.buildSnapshot(ctx, cfg, nil)
		if err == nil {
			if err = a.seedQuotas(); err == nil {
				err = a.auditLoad(ctx, snap, "start")
			}
			if err != nil {
				snap.closeKeys(nil)
			}
		}
		if err != nil {
			_ = a.quota.Close()
		}
	}
	if err != nil {
		_ = a.idem.Close()
		if opts.Auditor == nil {
			a.closeAudit()
		}
		return nil, err
	}
	a.snap.Store(snap)
	a.publishKeys(snap)
	a.setStatus(fmt.Sprintf("serving; config %s; %d keys", cfg.Path(), len(snap.keys)))
	return a, nil
}

// Reload loads the config file again, validates it, opens its keys and swaps
// it in. On any error the running configuration stays and the error is
// returned (and reported in STATUS=). Once Run has begun to stop, Reload
// refuses.
func (a *Agent) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	if a.closing {
		return errClosing
	}
	a.notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
	old := a.snap.Load()
	cfg, err := loadConfig(a.path)
	var next *snapshot
	if err == nil {
		next, err = a.buildSnapshot(ctx, cfg, old)
		if err == nil {
			if err = a.auditLoad(ctx, next, "reload"); err != nil {
				next.closeKeys(old)
			}
		}
	}
	if err != nil {
		a.log.Error("reload failed; keeping the running configuration", zap.Error(err))
		a.setStatus("reload failed, running previous config: " + oneLine(err.Error()))
		a.auditRefusedLoad(ctx, err)
	} else {
		a.warnQuotaChange(old.cfg, cfg)
		a.warnIdempotencyChange(old.cfg, cfg)
		a.snap.Store(next)
		a.publishKeys(next)
		old.retire()
		a.retired.add(old, next)
		a.log.Info("configuration reloaded", zap.String("config", cfg.Path()), zap.Int("keys", len(next.keys)))
		a.setStatus(fmt.Sprintf("serving; config %s reloaded at %s", cfg.Path(), a.now().UTC().Format(time.RFC3339)))
	}
	a.notify("READY=1\nSTATUS=" + a.statusText())
	return err
}

// Run serves the listeners until ctx ends, then drains in-flight requests
// (bounded by transport.drainTimeout), closes keys and the audit log, and
// returns nil. It returns an error only if serving fails. Every subsystem
// (servers, watchers, periodic loops) is a task: Run returns only after all
// of them have.
func (a *Agent) Run(ctx context.Context, ls Listeners) error {
	if ls.API == nil {
		return errors.New("agent: no api listener")
	}
	cfg := a.Config()
	drain := cfg.Transport.DrainTimeout
	capped := 1
	if ls.TCP != nil {
		capped = 2
	}
	lim := a.connCaps(cfg.Limits.Resources, capped)
	api := a.limitConns(ls.API, socketAPI, lim.MaxConnections, lim.MaxConnectionsPerPeer)
	tasks := []task{
		a.stopping,
		a.retired.run,
		loop(time.Second, a.flushDenials),
		a.serve(a.newServer(cfg, a.apiHandler(), "api", api), api, drain),
		a.watchdog,
		loop(time.Hour, a.prune),
		a.statusLoop,
		loop(a.keyRetry, a.retryPendingKeys),
		a.reloadOnSignals,
	}
	if ls.Admin != nil {
		admin := a.limitConns(ls.Admin, socketAdmin, lim.AdminMaxConnections, lim.AdminMaxConnections)
		tasks = append(tasks, a.serve(a.newServer(cfg, a.adminHandler(), "admin", admin), admin, drain))
	}
	if ls.TCP != nil {
		tcp := a.limitConns(ls.TCP, socketTCP, lim.MaxConnections, lim.MaxConnectionsPerPeer)
		tasks = append(tasks, a.serve(a.newServer(cfg, a.tcpHandler(), "tcp", tcp), tls.NewListener(tcp, a.serverTLS()), drain))
	}
	if w := a.startWatcher(); w != nil {
		tasks = append(tasks, a.watchFiles(w))
	}
	if cfg.Metrics.Enabled() {
		if l := a.listenMetrics(cfg.Metrics.Listen); l != nil {
			tasks = append(tasks, a.serveMetrics(l))
		}
	}

	a.notify("READY=1\nSTATUS=" + a.statusText())
	a.metrics.SetReady(true)
	a.log.Info("signer-agent ready", zap.String("api", ls.API.Addr().String()), zap.String("version", Version))
	err := runTasks(ctx, tasks...)

	// Every request has been answered (or its connection closed) and no
	// reload can start: close the retired snapshots, the last one and the
	// audit log (after the last denial summaries).
	a.retired.drain()
	a.flushDenials(context.Background())
	s := a.snap.Load()
	s.retire()
	<-s.done
	s.closeKeys(nil)
	if err := a.quota.Close(); err != nil {
		a.log.Warn("closing the quota store", zap.Error(err))
	}
	if err := a.idem.Close(); err != nil {
		a.log.Warn("closing the idempotency journal", zap.Error(err))
	}
	a.closeAudit()
	a.log.Info("stopped")
	return err
}

// serve is the task of one server: it serves l until ctx ends, then drains
// for at most drain before closing the remaining connections.
func (a *Agent) serve(s *http.Server, l net.Listener, drain time.Duration) task {
	return func(ctx context.Context) error {
		err := serveUntil(ctx, s, l, drain)
		if err != nil && ctx.Err() != nil {
			a.log.Warn("drain timed out; connections closed", zap.Error(err))
			return nil
		}
		return err
	}
}

// stopping is the task that marks the start of the shutdown: STOPPING=1,
// not ready, and no more reloads.
func (a *Agent) stopping(ctx context.Context) error {
	<-ctx.Done()
	a.reloadMu.Lock()
	a.closing = true
	a.reloadMu.Unlock()
	a.notify("STOPPING=1")
	a.metrics.SetReady(false)
	a.log.Info("draining", zap.Duration("timeout", a.Config().Transport.DrainTimeout))
	return nil
}
