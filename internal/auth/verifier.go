package auth

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stellaops/signer-agent/internal/fswatch"
)

// Verifier verifies OpToks and DPoP proofs. It is safe for concurrent use.
type Verifier struct {
	cfg    Config
	src    source
	keys   atomic.Pointer[keySet]
	tokens *tokenCache
	replay *replayCache
	nonces *nonceSource
	proofs *proofKeyCache // parsed DPoP proof headers (proofkeys.go)

	installMu sync.Mutex // serialises loads; merge needs the previous set
	lastErr   atomic.Pointer[errBox]

	fetchMu   sync.Mutex // guards lastFetch and inflight
	lastFetch time.Time
	inflight  chan struct{}

	sigChecks atomic.Int64 // signature verifications of OpToks, for tests

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	watcher   *fswatch.Watcher
	closeOnce sync.Once
}

type errBox struct{ err error }

// New checks cfg, loads the JWKS (an error if none can be loaded) and starts
// the background reloads: the file watcher (file form) or the periodic
// refetch (discovery form). ctx bounds the initial load only; Close stops the
// background work.
func New(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	v := &Verifier{
		cfg:    cfg,
		tokens: newTokenCache(cfg.TokenCacheSize),
		nonces: newNonceSource(cfg.NonceKey, cfg.NonceWindow),
		proofs: newProofKeyCache(DefaultProofKeyCacheSize),
	}
	retention := max(2*cfg.Skew, 2*cfg.NonceWindow)
	if cfg.ReplayFrom != nil {
		v.replay = cfg.ReplayFrom.replay
		v.replay.extend(retention)
	} else {
		v.replay = newReplayCache(cfg.ReplayCacheSize, retention)
	}
	v.cfg.ReplayFrom = nil // do not keep the old Verifier alive
	if cfg.JWKSFile != "" {
		abs, err := filepath.Abs(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("auth: JWKS file: %w", err)
		}
		v.cfg.JWKSFile = abs
		v.src = fileSource{path: abs}
	} else {
		v.src = discoverySource{issuer: cfg.Issuer, client: cfg.HTTPClient}
	}
	if err := v.reload(ctx); err != nil {
		return nil, err
	}

	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	v.cancel = cancel
	if cfg.JWKSFile != "" {
		w, err := fswatch.New()
		if err != nil {
			cancel()
			return nil, fmt.Errorf("auth: watch JWKS file: %w", err)
		}
		if err := w.SetFiles([]string{v.cfg.JWKSFile}); err != nil {
			cancel()
			_ = w.Close()
			return nil, fmt.Errorf("auth: watch JWKS file: %w", err)
		}
		v.watcher = w
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			w.Run(bctx, func() { _ = v.reload(bctx) }, func(err error) {
				v.report(fmt.Errorf("auth: watch JWKS file: %w", err))
			})
		}()
	} else if cfg.RefreshInterval > 0 {
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			t := time.NewTicker(cfg.RefreshInterval)
			defer t.Stop()
			for {
				select {
				case <-bctx.Done():
					return
				case <-t.C:
					rctx, rcancel := context.WithTimeout(bctx, DefaultHTTPTimeout)
					_ = v.reload(rctx)
					rcancel()
				}
			}
		}()
	}
	return v, nil
}

// Close stops the background reloads. The Verifier keeps verifying with the
// keys it has.
func (v *Verifier) Close() error {
	var err error
	v.closeOnce.Do(func() {
		if v.cancel != nil {
			v.cancel()
		}
		v.wg.Wait()
		if v.watcher != nil {
			err = v.watcher.Close()
		}
	})
	return err
}

// Reload loads the JWKS now (file or issuer), outside the refetch rate
// limit; for SIGHUP and the admin reload. On error the keys in use stay.
func (v *Verifier) Reload(ctx context.Context) error { return v.reload(ctx) }

// Status describes the key set, for readiness and metrics.
type Status struct {
	Published int       // keys in the current JWKS
	Retired   int       // keys gone from the JWKS, still honoured
	LoadedAt  time.Time // last successful load
	LastError error     // the last load's error, nil after a success
}

// Status reports the key set's state.
func (v *Verifier) Status() Status {
	ks := v.keys.Load()
	st := Status{LoadedAt: ks.loadedAt}
	st.Published, st.Retired = ks.counts(v.cfg.Now())
	if b := v.lastErr.Load(); b != nil {
		st.LastError = b.err
	}
	return st
}

// reload loads, parses and installs the JWKS. Loads are serialised end to
// end, so a slow load of older content can never overwrite a newer set.
func (v *Verifier) reload(ctx context.Context) error {
	v.installMu.Lock()
	defer v.installMu.Unlock()
	b, err := v.src.load(ctx)
	var keys []*verifyKey
	if err == nil {
		keys, err = parseJWKS(b)
	}
	if err != nil {
		err = fmt.Errorf("auth: load JWKS from %s: %w", v.src, err)
		v.lastErr.Store(&errBox{err})
		if v.keys.Load() != nil {
			v.report(err)
		}
		return err
	}
	v.keys.Store(merge(v.keys.Load(), keys, v.cfg.Now(), v.cfg.MaxLifetime+v.cfg.Skew))
	v.lastErr.Store(nil)
	return nil
}

func (v *Verifier) report(err error) {
	if v.cfg.ReportError != nil {
		v.cfg.ReportError(err)
	}
}

// refetch reloads the JWKS for an unknown kid: at most once per
// RefetchMinInterval, and concurrent callers share one load (they wait for
// it, or for their ctx).
func (v *Verifier) refetch(ctx context.Context) {
	v.fetchMu.Lock()
	if ch := v.inflight; ch != nil {
		v.fetchMu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	now := v.cfg.Now()
	if !v.lastFetch.IsZero() && !now.Before(v.lastFetch) && now.Sub(v.lastFetch) < v.cfg.RefetchMinInterval {
		v.fetchMu.Unlock()
		return
	}
	ch := make(chan struct{})
	v.inflight, v.lastFetch = ch, now
	v.fetchMu.Unlock()

	// The load is shared: it does not end with this caller's ctx.
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultHTTPTimeout)
	_ = v.reload(lctx)
	cancel()

	v.fetchMu.Lock()
	v.inflight = nil
	v.fetchMu.Unlock()
	close(ch)
}
