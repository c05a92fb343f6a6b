// Package entitlement checks a caller's Proof-of-Entitlement (PoE), the
// license that says a tenant may sign and under which plan (SPEC §1 step 4,
// §6).
//
// A PoE is either a JWT signed by the licensing key, verified locally
// (offline nodes), or a value sent to the licensing service's introspection
// endpoint (online). Online verdicts are cached per PoE hash for a TTL
// (never beyond the PoE's exp); while licensing is unreachable or failing,
// the last positive verdict serves until its grace ends, marked "grace";
// after that the check is "unavailable". A negative verdict is never
// overridden by the cache or by grace. Concurrent misses for the same PoE
// make one upstream call. An operator may enable a time-bounded emergency
// bypass; every request admitted under it is marked "bypass".
package entitlement

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/stellaops/signer-agent/proto"
)

// Verdict states, as recorded in the audit log and metrics.
const (
	StateValid       = "valid"
	StateCached      = "cached"
	StateGrace       = "grace"
	StateBypass      = "bypass"
	StateDenied      = "denied"
	StateUnavailable = "unavailable"
)

// Config configures a Checker.
type Config struct {
	// LicensingKeys verify JWT PoEs locally. Without them JWT PoEs are
	// introspected like opaque ones.
	LicensingKeys []crypto.PublicKey
	// Issuer, when set, must equal a JWT PoE's iss.
	Issuer string
	// IntrospectionURL is the licensing service base URL; the agent POSTs
	// to <url>/license/introspect. Empty: no online checks.
	IntrospectionURL string
	HTTPClient       *http.Client
	Timeout          time.Duration // per attempt, default 3s
	Retries          int           // extra attempts after the first, default 2
	Backoff          time.Duration // first retry delay, doubled each time, default 200ms
	CacheTTL         time.Duration // default 5m
	Grace            time.Duration // default 1h
	Now              func() time.Time
}

// Window is a PoE's allowed scanner release range (inclusive; empty ends
// are open).
type Window struct {
	Earliest string `json:"earliest,omitempty"`
	Latest   string `json:"latest,omitempty"`
}

// Quotas are a PoE's overrides of its plan's limits (nil: keep the plan's).
type Quotas struct {
	QPS              *float64 `json:"qps,omitempty"`
	Burst            *int     `json:"burst,omitempty"`
	Concurrency      *int     `json:"concurrency,omitempty"`
	MaxArtifactBytes *int64   `json:"maxArtifactBytes,omitempty"`
	ArtifactsPerDay  *int64   `json:"artifactsPerDay,omitempty"`
}

// Verdict is the outcome of a check.
type Verdict struct {
	State         string
	Tenant        string
	Installation  string
	Plan          string
	Quotas        *Quotas
	VersionWindow *Window
	Expiry        time.Time
	// PoEHash is "sha256:<hex>" of the PoE value, for the audit log.
	PoEHash string
	// Reason explains a denial or a degraded state (never the PoE).
	Reason string
	// BypassReason is the operator's reason when State is bypass.
	BypassReason string
}

// Errors, each mapped by the agent to one code.
var (
	ErrDenied      = errors.New("entitlement denied")      // entitlement_denied
	ErrUnavailable = errors.New("entitlement unavailable") // entitlement_unavailable
)

// Error is a refused check.
type Error struct {
	Err     error // ErrDenied or ErrUnavailable
	Verdict Verdict
}

func (e *Error) Error() string { return e.Err.Error() + ": " + e.Verdict.Reason }
func (e *Error) Unwrap() error { return e.Err }

// Code maps the error to its wire code.
func (e *Error) Code() proto.Code {
	if errors.Is(e.Err, ErrUnavailable) {
		return proto.CodeEntitlementUnavailable
	}
	return proto.CodeEntitlementDenied
}

// Checker checks PoEs. It is safe for concurrent use.
type Checker struct {
	cfg Config
	sf  singleflight.Group

	mu       sync.Mutex
	cache    map[string]*cached // by PoE hash
	offline  map[string]Verdict // verified offline PoEs by hash, until exp
	bypass   *Bypass
	upstream int // introspection calls made (tests)
}

type cached struct {
	v         Verdict
	fetchedAt time.Time
	positive  bool
}

// Bypass is an emergency bypass window.
type Bypass struct {
	Reason string    `json:"reason"`
	By     string    `json:"by,omitempty"`
	Until  time.Time `json:"until"`
	SetAt  time.Time `json:"setAt"`
}

// New makes a Checker.
func New(cfg Config) (*Checker, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Retries == 0 {
		cfg.Retries = 2
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = 200 * time.Millisecond
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = 5 * time.Minute
	}
	if cfg.Grace == 0 {
		cfg.Grace = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if len(cfg.LicensingKeys) == 0 && cfg.IntrospectionURL == "" {
		return nil, errors.New("entitlement: configure licensing keys (offline PoE) or an introspection URL (online)")
	}
	return &Checker{cfg: cfg, cache: map[string]*cached{}, offline: map[string]Verdict{}}, nil
}

// SetBypass enables the emergency bypass until b.Until (a zero Until
// disables it).
func (c *Checker) SetBypass(b *Bypass) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b == nil || b.Until.IsZero() {
		c.bypass = nil
		return
	}
	c.bypass = b
}

// ActiveBypass returns the bypass in force now, or nil.
func (c *Checker) ActiveBypass() *Bypass {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bypass == nil || !c.cfg.Now().Before(c.bypass.Until) {
		return nil
	}
	b := *c.bypass
	return &b
}

func hashPoE(v string) string {
	sum := sha256.Sum256([]byte(v))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Check verifies a PoE for the token's tenant and installation. The
// returned error is an *Error (ErrDenied or ErrUnavailable).
func (c *Checker) Check(ctx context.Context, poe *proto.PoE, tenant, installation string) (Verdict, error) {
	if b := c.ActiveBypass(); b != nil {
		v := Verdict{State: StateBypass, Tenant: tenant, Installation: installation, BypassReason: b.Reason,
			Reason: "emergency bypass until " + b.Until.UTC().Format(time.RFC3339)}
		if poe != nil {
			v.PoEHash = hashPoE(poe.Value)
		}
		return v, nil
	}
	if poe == nil || poe.Value == "" {
		return Verdict{State: StateDenied, Reason: "no Proof-of-Entitlement in the request"},
			&Error{Err: ErrDenied, Verdict: Verdict{State: StateDenied, Reason: "no Proof-of-Entitlement in the request"}}
	}
	h := hashPoE(poe.Value)
	var v Verdict
	var err error
	if poe.Format == "jwt" && len(c.cfg.LicensingKeys) > 0 {
		v, err = c.verifyJWTCached(poe.Value, h)
	} else if c.cfg.IntrospectionURL != "" {
		v, err = c.introspectCached(ctx, poe.Value, h)
	} else {
		v = Verdict{State: StateDenied, Reason: fmt.Sprintf("PoE format %q needs an introspection URL, none configured", poe.Format)}
		err = &Error{Err: ErrDenied, Verdict: v}
	}
	v.PoEHash = h
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Verdict.PoEHash = h
			return e.Verdict, e
		}
		return v, err
	}
	if v.Tenant != tenant {
		v.State, v.Reason = StateDenied, fmt.Sprintf("PoE is for tenant %q, token for %q", v.Tenant, tenant)
		return v, &Error{Err: ErrDenied, Verdict: v}
	}
	if installation != "" && v.Installation != installation {
		v.State, v.Reason = StateDenied, fmt.Sprintf("PoE is for installation %q, token for %q", v.Installation, installation)
		return v, &Error{Err: ErrDenied, Verdict: v}
	}
	return v, nil
}

// Upstream reports how many introspection calls were made (for tests and
// metrics).
func (c *Checker) Upstream() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.upstream
}

// maxOffline bounds the verified offline PoE cache.
const maxOffline = 10000

// verifyJWTCached verifies an offline PoE's signature once: the verdict is
// kept by PoE hash until the PoE expires (time checks still run each use).
func (c *Checker) verifyJWTCached(raw, h string) (Verdict, error) {
	now := c.cfg.Now()
	c.mu.Lock()
	v, ok := c.offline[h]
	c.mu.Unlock()
	if ok {
		if now.Before(v.Expiry.Add(skew)) {
			return v, nil
		}
		c.mu.Lock()
		delete(c.offline, h)
		c.mu.Unlock()
	}
	v, err := c.verifyJWT(raw)
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	if len(c.offline) >= maxOffline {
		for k, old := range c.offline { // drop expired, else an arbitrary one
			if !now.Before(old.Expiry) || len(c.offline) >= maxOffline {
				delete(c.offline, k)
			}
			if len(c.offline) < maxOffline {
				break
			}
		}
	}
	c.offline[h] = v
	c.mu.Unlock()
	return v, nil
}
