package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/entitlement"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/fido2"
	"github.com/stellaops/signer-agent/internal/keys/kms"
	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
	"github.com/stellaops/signer-agent/internal/keys/tpm"
	"github.com/stellaops/signer-agent/internal/metrics"
	"github.com/stellaops/signer-agent/internal/quota"
	"github.com/stellaops/signer-agent/internal/release"
	"github.com/stellaops/signer-agent/proto"
)

// Version is set at build time (-ldflags "-X …agent.Version=…").
var Version = "dev"

// Options configure New.
type Options struct {
	// ConfigPath is the YAML file to load (and reload).
	ConfigPath string
	Logger     *zap.Logger
	// Auditor overrides the audit log opened from the config (tests).
	Auditor audit.Auditor
	// Opener opens key URIs (nil: a default keys.Opener).
	Opener *keys.Opener
	// Notify sends sd_notify states (nil: systemd's NOTIFY_SOCKET, if set).
	Notify func(state string)
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// FIDO2 returns the authenticator that unlocks fido2: keys (nil: the
	// device of SIGNER_AGENT_FIDO2_DEVICE, needing the fido2 build tag).
	FIDO2 func() (fido2.Authenticator, error)
	// KeyRetryInterval is how often the backends of pending keys are tried
	// again (0: DefaultKeyRetryInterval).
	KeyRetryInterval time.Duration
}

// DefaultKeyRetryInterval is how often a pending key's backend is tried
// again: a key whose token, TPM or KMS did not answer when the
// configuration was loaded (see openKeys).
const DefaultKeyRetryInterval = 10 * time.Second

// keyOpenTimeout bounds one try at opening a pending key.
const keyOpenTimeout = 30 * time.Second

// Listeners are the sockets Run serves. Admin and TCP may be nil; TCP is a
// plain TCP listener that Run wraps in mTLS.
type Listeners struct {
	API   net.Listener
	Admin net.Listener
	TCP   net.Listener
}

// Agent is the signing daemon.
type Agent struct {
	log     *zap.Logger
	path    string
	auditor audit.Auditor
	journal *audit.JournalForwarder // nil unless audit.journal is on
	opener  *keys.Opener
	notify  func(string)
	now     func() time.Time
	fido2   func() (fido2.Authenticator, error)
	// keyRetry is how often pending keys are tried again.
	keyRetry time.Duration

	nonceKey []byte // DPoP nonce HMAC key: one per process, kept across reloads
	quota    *quota.Limiter
	metrics  *metrics.Metrics

	snap     atomic.Pointer[snapshot]
	reloadMu sync.Mutex
	// keyAdminMu serialises writes of the revocation and rotation files.
	keyAdminMu sync.Mutex
	status     atomic.Value // string: last STATUS= text
}

// New loads and validates the configuration, opens the keys and the audit
// log. It does not listen.
func New(ctx context.Context, opts Options) (*Agent, error) {
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	cfg, err := loadConfig(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		log:     opts.Logger,
		path:    opts.ConfigPath,
		auditor: opts.Auditor,
		opener:  opts.Opener,
		notify:  opts.Notify,
		now:     opts.Now,
		fido2:   opts.FIDO2,

		keyRetry: opts.KeyRetryInterval,
	}
	if a.keyRetry <= 0 {
		a.keyRetry = DefaultKeyRetryInterval
	}
	if a.fido2 == nil {
		a.fido2 = func() (fido2.Authenticator, error) { return fido2.OpenDevice(os.Getenv(fido2.DeviceEnv)) }
	}
	if a.opener == nil {
		// One PKCS#11 opener per process: it owns the module handles.
		a.opener = &keys.Opener{PKCS11: (&pkcs11.Opener{}).Open, TPM: tpm.Open, KMS: kms.Open, FIDO2: fido2.Open}
	}
	if a.notify == nil {
		a.notify = sdNotify
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.nonceKey = newNonceKey()
	a.metrics = metrics.New()
	// Tenant buckets and counters live for the process; the global limit
	// is read at start.
	a.quota = quota.New(cfg.Limits.GlobalConcurrency, a.now)
	v, _, err := a.verifierFor(ctx, cfg, nil)
	if err != nil {
		return nil, err
	}
	rev, err := loadRevocations(cfg.RevocationList)
	if err != nil {
		_ = v.Close()
		return nil, err
	}
	ks, err := openKeys(ctx, a.opener, cfg, nil)
	if err != nil {
		_ = v.Close()
		return nil, err
	}
	applyRevocations(ks, rev)
	a.warnKeys(ks)
	openedAudit := a.auditor == nil
	if openedAudit {
		var fwd audit.Forwarder
		if cfg.Audit.Journal {
			a.journal = audit.NewJournalForwarder(0)
			fwd = a.journal
			a.metrics.SetAuditJournal(a.journal.Stats)
		}
		j, err := audit.Open(audit.LogConfig{
			Dir:              cfg.Audit.Dir,
			SegmentBytes:     cfg.Audit.SegmentBytes,
			PreallocateBytes: cfg.Audit.PreallocateBytes,
			Retention: audit.Retention{
				MaxAge: cfg.Audit.Retention.MaxAge, MaxBytes: cfg.Audit.Retention.MaxBytes,
				DeleteUnexported: cfg.Audit.Retention.DeleteUnexported,
			},
			Now:       a.now,
			Observer:  a.metrics.AuditObserver(),
			Forwarder: fwd,
		})
		if err == nil {
			err = a.seedQuotas(cfg.Audit.Dir)
			if err != nil {
				_ = j.Close()
			}
		}
		if err != nil {
			closeKeys(ks)
			_ = v.Close()
			if a.journal != nil {
				_ = a.journal.Close()
			}
			return nil, err
		}
		a.auditor = j
	}
	tc, err := loadTLS(cfg)
	var ent *entitlement.Checker
	var entKeys []byte
	var rel *release.Checker
	if err == nil {
		ent, entKeys, err = a.entitlementFor(cfg, nil)
	}
	if err == nil {
		rel, err = newRelease(cfg, a.now)
	}
	if err != nil {
		closeKeys(ks)
		_ = v.Close()
		if openedAudit {
			a.closeAudit()
		}
		return nil, err
	}
	snap := newSnapshot(cfg, v, ks)
	snap.tls, snap.ent, snap.entKeys, snap.rel = tc, ent, entKeys, rel
	a.snap.Store(snap)
	a.publishKeys(snap)
	a.setStatus(fmt.Sprintf("serving; config %s; %d keys", cfg.Path(), len(ks)))
	return a, nil
}

// Config returns the configuration in force.
func (a *Agent) Config() *config.Config { return a.snap.Load().cfg }

// acquire returns the current snapshot, held until release.
func (a *Agent) acquire() *snapshot {
	for {
		s := a.snap.Load()
		if s.acquire() {
			return s
		}
	}
}

// Reload loads the config file again, validates it, opens its keys and swaps
// it in. On any error the running configuration stays and the error is
// returned (and reported in STATUS=).
func (a *Agent) Reload(ctx context.Context) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	a.notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
	err := a.reload(ctx)
	if err != nil {
		a.log.Error("reload failed; keeping the running configuration", zap.Error(err))
		a.setStatus("reload failed, running previous config: " + oneLine(err.Error()))
	} else {
		cfg := a.Config()
		a.log.Info("configuration reloaded", zap.String("config", cfg.Path()), zap.Int("keys", len(a.snap.Load().keys)))
		a.setStatus(fmt.Sprintf("serving; config %s reloaded at %s", cfg.Path(), a.now().UTC().Format(time.RFC3339)))
	}
	a.notify("READY=1\nSTATUS=" + a.statusText())
	return err
}

func (a *Agent) reload(ctx context.Context) error {
	cfg, err := loadConfig(a.path)
	if err != nil {
		return err
	}
	tc, err := loadTLS(cfg)
	if err != nil {
		return err
	}
	old := a.snap.Load()
	ent, entKeys, err := a.entitlementFor(cfg, old)
	if err != nil {
		return err
	}
	rel, err := newRelease(cfg, a.now)
	if err != nil {
		return err
	}
	v, reused, err := a.verifierFor(ctx, cfg, old)
	if err != nil {
		return err
	}
	rev, err := loadRevocations(cfg.RevocationList)
	if err != nil {
		if !reused {
			_ = v.Close()
		}
		return err
	}
	ks, err := openKeys(ctx, a.opener, cfg, old.keys)
	if err != nil {
		if !reused {
			_ = v.Close()
		}
		return err
	}
	applyRevocations(ks, rev)
	a.warnKeys(ks)
	next := newSnapshot(cfg, v, ks)
	next.tls, next.ent, next.entKeys, next.rel = tc, ent, entKeys, rel
	a.snap.Store(next)
	a.publishKeys(next)
	old.retire()
	go func() {
		<-old.done
		old.closeKeys(next)
	}()
	return nil
}

func (a *Agent) setStatus(s string) { a.status.Store(s) }

func (a *Agent) statusText() string {
	s, _ := a.status.Load().(string)
	return s
}

// Run serves the listeners until ctx ends, then drains in-flight requests
// (bounded by transport.drainTimeout), closes keys and the audit log, and
// returns nil. It returns an error only if serving fails.
func (a *Agent) Run(ctx context.Context, ls Listeners) error {
	if ls.API == nil {
		return errors.New("agent: no api listener")
	}
	cfg := a.Config()
	servers := []*http.Server{a.newServer(cfg, a.apiHandler(), "api")}
	lis := []net.Listener{ls.API}
	if ls.Admin != nil {
		servers = append(servers, a.newServer(cfg, a.adminHandler(), "admin"))
		lis = append(lis, ls.Admin)
	}
	if ls.TCP != nil {
		servers = append(servers, a.newServer(cfg, a.tcpHandler(), "tcp"))
		lis = append(lis, tls.NewListener(ls.TCP, a.serverTLS()))
	}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		go func(s *http.Server, l net.Listener) {
			if err := s.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}(s, lis[i])
	}

	wctx, cancelWatch := context.WithCancel(ctx)
	defer cancelWatch()
	if w := a.startWatcher(); w != nil {
		defer w.Close()
		go a.watchFiles(wctx, w)
	}
	go a.watchdog(wctx)
	go a.pruneLoop(wctx)
	go a.statusLoop(wctx)
	go a.retryPendingKeys(wctx)
	if cfg.Metrics.Enabled() {
		if ms, err := a.serveMetrics(cfg.Metrics.Listen); err != nil {
			a.log.Error("metrics listener", zap.String("listen", cfg.Metrics.Listen), zap.Error(err))
		} else {
			defer ms.Close()
		}
	}

	a.notify("READY=1\nSTATUS=" + a.statusText())
	a.metrics.SetReady(true)
	a.log.Info("signer-agent ready", zap.String("api", ls.API.Addr().String()), zap.String("version", Version))
	if j, ok := a.auditor.(*audit.Log); ok {
		if st := j.Stats(); st.SyncMode != audit.SyncAIO {
			// Still durable, but every flush keeps a thread (and a P) busy.
			a.log.Warn("audit log flushes with blocking fdatasync", zap.String("reason", st.SyncFallback))
		}
	}
	if a.journal != nil && !audit.JournalAvailable() {
		a.log.Warn("audit.journal is on but journald's socket is not there; records are counted as failed until it is")
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	a.notify("STOPPING=1")
	a.metrics.SetReady(false)
	drain := a.Config().Transport.DrainTimeout
	a.log.Info("draining", zap.Duration("timeout", drain))
	dctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	var wg sync.WaitGroup
	for _, s := range servers {
		wg.Add(1)
		go func(s *http.Server) {
			defer wg.Done()
			if err := s.Shutdown(dctx); err != nil {
				a.log.Warn("drain timed out; closing connections", zap.Error(err))
				_ = s.Close()
			}
		}(s)
	}
	wg.Wait()
	a.close()
	a.log.Info("stopped")
	return serveErr
}

func (a *Agent) close() {
	s := a.snap.Load()
	s.retire()
	<-s.done
	s.closeKeys(nil)
	a.closeAudit()
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

// startWatcher watches the files the config names; it is set up before
// READY so no change after readiness is missed.
func (a *Agent) startWatcher() *config.Watcher {
	w, err := config.NewWatcher()
	if err != nil {
		a.log.Warn("file watching disabled", zap.Error(err))
		return nil
	}
	if err := w.SetFiles(a.Config().WatchedFiles()); err != nil {
		a.log.Warn("watching config files", zap.Error(err))
	}
	return w
}

// watchFiles reloads when a file the config names changes.
func (a *Agent) watchFiles(ctx context.Context, w *config.Watcher) {
	w.Run(ctx, func() {
		a.log.Info("watched file changed; reloading")
		_ = a.Reload(ctx)
		if err := w.SetFiles(a.Config().WatchedFiles()); err != nil {
			a.log.Warn("watching config files", zap.Error(err))
		}
	}, func(err error) { a.log.Warn("file watcher", zap.Error(err)) })
}

// seedQuotas restores today's per-tenant signature counts from the durable
// audit log, so neither a restart nor a crash resets a tenant's day: every
// signature returned to a caller has an fsynced allow record.
func (a *Agent) seedQuotas(dir string) error {
	now := a.now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	counts := map[string]int64{}
	err := audit.Query(dir, audit.Filter{Since: midnight, Decision: audit.Allow}, func(r audit.Record) error {
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

// publishKeys exports the signing keys' age and expiry (only keys that can
// sign: verify-only and revoked keys would trip the expiry alerts).
func (a *Agent) publishKeys(s *snapshot) {
	var out []metrics.KeyInfo
	for _, k := range s.keys {
		if k.cfg.Status != proto.KeyStatusActive {
			continue
		}
		ki := metrics.KeyInfo{ID: k.cfg.ID, Source: k.source}
		if k.cfg.NotBefore != nil {
			ki.Created = *k.cfg.NotBefore
		}
		if k.cfg.NotAfter != nil {
			ki.NotAfter = *k.cfg.NotAfter
		}
		out = append(out, ki)
	}
	a.metrics.SetKeyInfo(out)
}

// serveMetrics serves GET /metrics on a TCP address (loopback by default).
func (a *Agent) serveMetrics(addr string) (*http.Server, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", a.metrics.Handler())
	s := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 60 * time.Second}
	go func() { _ = s.Serve(l) }()
	a.log.Info("metrics listening", zap.String("addr", l.Addr().String()))
	return s, nil
}

// loadConfig loads the operator's configuration and lays the key rotations
// made through the admin API over it.
func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := applyRotations(cfg); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("after key rotations: %w", err)
	}
	return cfg, nil
}

// warnKeys logs the keys of a new configuration that are pending, and
// PKCS#11 keys whose PIN is in the configuration itself.
func (a *Agent) warnKeys(ks map[string]*keyEntry) {
	for _, e := range ks {
		if e.source == "pkcs11" {
			if u, err := pkcs11.ParseURI(e.cfg.URI); err == nil && u.HasPINValue() {
				a.log.Warn("the key's URI carries its PIN (pin-value): anyone who can read the configuration has it; use pin-source=file:… with a 0400 file",
					zap.String("key", e.cfg.ID))
			}
		}
		if e.pending != nil {
			a.log.Warn("key backend unavailable; the key signs nothing until it answers (tried again periodically)",
				zap.String("key", e.cfg.ID), zap.Duration("retryEvery", a.keyRetry), zap.Error(e.pending))
		}
	}
}

// retryPendingKeys tries the backends of pending keys again every
// a.keyRetry; once one answers it reloads the configuration, which opens
// the key (and lists it in GET /keys, and makes it sign).
func (a *Agent) retryPendingKeys(ctx context.Context) {
	every(ctx, a.keyRetry, func() {
		if a.pendingKeyAnswers(ctx) {
			_ = a.Reload(ctx) // logs and reports its own failure
		}
	})
}

// every calls fn every d until ctx ends (the first call after d).
func every(ctx context.Context, d time.Duration, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// pendingKeyAnswers reports whether a pending key of the running
// configuration opens now.
func (a *Agent) pendingKeyAnswers(ctx context.Context) bool {
	for _, e := range a.snap.Load().keys {
		if e.pending == nil {
			continue
		}
		octx, cancel := context.WithTimeout(ctx, keyOpenTimeout)
		k, err := a.opener.Open(octx, e.cfg.URI)
		cancel()
		if err == nil {
			_ = k.Close()
			a.log.Info("a pending key's backend answers; reloading to open it", zap.String("key", e.cfg.ID))
			return true
		}
		a.log.Debug("pending key still unavailable", zap.String("key", e.cfg.ID), zap.Error(err))
	}
	return false
}
