package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults for Config's zero values.
const (
	DefaultAudience           = "signer"
	DefaultRequiredScope      = "signer.sign"
	DefaultSkew               = 30 * time.Second
	DefaultMaxLifetime        = 10 * time.Minute
	DefaultRefetchMinInterval = 30 * time.Second
	DefaultRefreshInterval    = 15 * time.Minute
	DefaultHTUBase            = "http://signer-agent"
	DefaultNonceWindow        = 5 * time.Minute
	DefaultReplayCacheSize    = 100000
	DefaultTokenCacheSize     = 10000
	DefaultHTTPTimeout        = 10 * time.Second
)

// Size limits: inputs beyond them are refused before any parsing.
const (
	MaxTokenBytes = 16 << 10 // OpTok
	MaxProofBytes = 8 << 10  // DPoP proof
	maxJWKSBytes  = 1 << 20  // JWKS and discovery documents
	maxJTIBytes   = 256
)

// Config configures a Verifier. Zero values take the documented defaults.
type Config struct {
	Issuer        string // exact iss; in discovery form also the discovery base URL
	Audience      string // default "signer"
	RequiredScope string // default "signer.sign"
	Installation  string // if set, inst must equal it (else tenant_mismatch)

	// Exactly one key source: JWKSFile (offline) or Discovery (online).
	JWKSFile   string       // JWKS JSON file, reloaded on change (fsnotify)
	Discovery  bool         // fetch Issuer+"/.well-known/openid-configuration" -> jwks_uri
	HTTPClient *http.Client // for discovery/JWKS (nil: a client with a 10 s timeout)

	Skew               time.Duration // default 30s
	MaxLifetime        time.Duration // default 10m: exp-iat (exp-nbf without iat); longer is refused
	RefetchMinInterval time.Duration // at most one JWKS refetch on unknown kid per interval (default 30s)
	// RefreshInterval is the period of the background JWKS refetch in the
	// discovery form, which is how retirements are noticed when no new kid
	// shows up (default 15m; negative disables).
	RefreshInterval time.Duration

	HTUBase       string        // default "http://signer-agent"
	NonceRequired bool          // the agent sets true by default
	NonceWindow   time.Duration // default 5m; the current and the previous window are accepted
	NonceKey      []byte        // HMAC key for stateless nonces (nil: 32 random bytes)

	ReplayCacheSize int // default 100000 jti entries
	TokenCacheSize  int // default 10000 verified tokens

	// ReplayFrom, when set, makes the new Verifier share that Verifier's
	// DPoP jti replay cache (its size stays; the longer retention wins).
	// Set it when a config reload replaces the Verifier, or proofs accepted
	// just before the swap could be replayed just after it.
	ReplayFrom *Verifier

	Now func() time.Time // default time.Now

	// ReportError, when set, receives errors of background JWKS reloads and
	// refetches (the keys in use stay unchanged). Called from background
	// goroutines and request paths; must not block.
	ReportError func(error)
}

func (c *Config) setDefaults() error {
	if c.Issuer == "" {
		return errors.New("auth: Issuer is required")
	}
	if (c.JWKSFile == "") == !c.Discovery {
		return errors.New("auth: exactly one of JWKSFile and Discovery must be set")
	}
	if c.Audience == "" {
		c.Audience = DefaultAudience
	}
	if c.RequiredScope == "" {
		c.RequiredScope = DefaultRequiredScope
	}
	if strings.ContainsAny(c.RequiredScope, " \t") {
		return fmt.Errorf("auth: RequiredScope %q must be a single scope", c.RequiredScope)
	}
	for _, d := range []struct {
		name string
		p    *time.Duration
		def  time.Duration
	}{
		{"Skew", &c.Skew, DefaultSkew},
		{"MaxLifetime", &c.MaxLifetime, DefaultMaxLifetime},
		{"RefetchMinInterval", &c.RefetchMinInterval, DefaultRefetchMinInterval},
		{"NonceWindow", &c.NonceWindow, DefaultNonceWindow},
	} {
		if *d.p < 0 {
			return fmt.Errorf("auth: %s must not be negative", d.name)
		}
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = DefaultRefreshInterval
	}
	if c.HTUBase == "" {
		c.HTUBase = DefaultHTUBase
	}
	c.HTUBase = strings.TrimSuffix(c.HTUBase, "/")
	if u, err := url.Parse(c.HTUBase); err != nil || u.Scheme == "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("auth: HTUBase %q is not an absolute URL without query", c.HTUBase)
	}
	if c.NonceKey == nil {
		c.NonceKey = make([]byte, 32)
		if _, err := rand.Read(c.NonceKey); err != nil {
			return fmt.Errorf("auth: nonce key: %w", err)
		}
	} else if len(c.NonceKey) < 16 {
		return errors.New("auth: NonceKey must be at least 16 bytes")
	}
	if c.ReplayCacheSize < 0 || c.TokenCacheSize < 0 {
		return errors.New("auth: cache sizes must not be negative")
	}
	if c.ReplayCacheSize == 0 {
		c.ReplayCacheSize = DefaultReplayCacheSize
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = DefaultTokenCacheSize
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Discovery {
		if err := checkFetchURL(c.Issuer); err != nil {
			return fmt.Errorf("auth: Issuer: %w", err)
		}
	}
	return nil
}

// checkFetchURL accepts https URLs, and http URLs only for a loopback host
// (tests, an Authority on the same node).
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", raw)
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
		return fmt.Errorf("%q: plain http is allowed only for loopback", raw)
	default:
		return fmt.Errorf("%q: scheme must be https", raw)
	}
}
