package release

import (
	"github.com/stellaops/signer-agent/proto"

	"context"
	"crypto"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Verdict sources.
const (
	SourceReferrers     = "referrers"      // a registry referrer of the digest
	SourceTag           = "tag"            // cosign's sha256-<hex>.sig tag
	SourceAllowlist     = "allowlist"      // Config.Allowlist
	SourceOfflineBundle = "offline-bundle" // a signature or bundle in Config.OfflineDir
	SourceCache         = "cache"          // a cached verdict; OriginalSource says whose
)

// Defaults.
const (
	DefaultCacheTTL      = 10 * time.Minute
	DefaultNegativeTTL   = 30 * time.Second
	DefaultLookupTimeout = 30 * time.Second
)

// Limits.
const (
	maxCacheEntries = 4096
	maxReason       = 1024
)

// Errors returned by New and Check. Untrusted digests are not errors: they
// are verdicts with Trusted false.
var (
	// ErrConfig is wrapped by every configuration error from New.
	ErrConfig = errors.New("release: invalid configuration")
	// ErrInvalidDigest: Check was given something other than
	// sha256:<64 lowercase hex>. Callers validate request digests first; the
	// referrers endpoint maps it to invalid_request.
	ErrInvalidDigest = errors.New("release: invalid image digest")
)

// Config configures a Checker. At least one trust source is needed: a
// Repository, an Allowlist or an OfflineDir.
type Config struct {
	// Repository is the scanner repository, e.g.
	// "registry.example/stella/scanner", looked up online; empty means
	// offline only.
	Repository string
	// PublicKeys are the trusted release keys (see LoadKeys). Needed with a
	// Repository or an OfflineDir.
	PublicKeys []crypto.PublicKey
	// Allowlist holds digests trusted without a signature (see
	// LoadAllowlist).
	Allowlist []AllowEntry
	// OfflineDir holds signatures and bundles named after the digest (the
	// layout is in the package documentation).
	OfflineDir string
	// CacheTTL is how long a trusted verdict is cached; 0 means
	// DefaultCacheTTL.
	CacheTTL time.Duration
	// NegativeTTL is how long an untrusted verdict is cached; 0 means
	// DefaultNegativeTTL, negative means untrusted verdicts are not cached.
	// It is capped at CacheTTL.
	NegativeTTL time.Duration
	// LookupTimeout bounds one registry and offline lookup; 0 means
	// DefaultLookupTimeout.
	LookupTimeout time.Duration
	// Transport carries registry requests; nil means a transport with dial,
	// TLS-handshake and response-header timeouts.
	Transport http.RoundTripper
	// Keychain provides registry credentials; nil means anonymous.
	Keychain authn.Keychain
	// Insecure allows a plain-HTTP registry (tests on 127.0.0.1). Without
	// it every registry request, token exchanges included, must be HTTPS.
	Insecure bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// AllowEntry is one trusted digest of the allowlist.
type AllowEntry struct {
	Digest     string
	Version    string
	ApprovedBy string
	ApprovedAt *time.Time
	Note       string
}

// Approval records a manual approval (see proto.ReleaseApproval).
type Approval = proto.ReleaseApproval

// Verdict is the release-integrity decision for one digest (see
// proto.ReleaseVerdict).
type Verdict = proto.ReleaseVerdict

// Checker answers release-integrity checks. It is safe for concurrent use.
// Reloading configuration means building a new Checker (its cache starts
// empty).
type Checker struct {
	keys       []trustedKey
	allow      map[string]AllowEntry
	repo       *name.Repository
	remoteOpts []remote.Option
	offlineDir string
	posTTL     time.Duration
	negTTL     time.Duration
	timeout    time.Duration
	now        func() time.Time

	mu      sync.Mutex
	cache   map[string]cached
	flights map[string]*flight

	lookups atomic.Int64 // lookups run (tests)
	waiting atomic.Int64 // callers waiting on a flight (tests)
}

type cached struct {
	v       Verdict
	expires time.Time
}

type flight struct {
	done chan struct{}
	v    Verdict
}

// New validates cfg and builds a Checker.
func New(cfg Config) (*Checker, error) {
	c := &Checker{
		allow:      map[string]AllowEntry{},
		offlineDir: cfg.OfflineDir,
		posTTL:     cfg.CacheTTL,
		negTTL:     cfg.NegativeTTL,
		timeout:    cfg.LookupTimeout,
		now:        cfg.Now,
		cache:      map[string]cached{},
		flights:    map[string]*flight{},
	}
	if cfg.Repository == "" && cfg.OfflineDir == "" && len(cfg.Allowlist) == 0 {
		return nil, fmt.Errorf("%w: no trust source (repository, allowlist or offline directory)", ErrConfig)
	}
	if (cfg.Repository != "" || cfg.OfflineDir != "") && len(cfg.PublicKeys) == 0 {
		return nil, fmt.Errorf("%w: signatures need at least one release public key", ErrConfig)
	}
	for i, pub := range cfg.PublicKeys {
		k, err := newTrustedKey(pub)
		if err != nil {
			return nil, fmt.Errorf("%w: release key %d: %v", ErrConfig, i, err)
		}
		c.keys = append(c.keys, k)
	}
	for _, e := range cfg.Allowlist {
		if err := validateEntry(e); err != nil {
			return nil, fmt.Errorf("%w: allowlist: %v", ErrConfig, err)
		}
		if _, dup := c.allow[e.Digest]; dup {
			return nil, fmt.Errorf("%w: allowlist: %s listed twice", ErrConfig, e.Digest)
		}
		c.allow[e.Digest] = e
	}
	if cfg.OfflineDir != "" {
		st, err := os.Stat(cfg.OfflineDir)
		if err != nil {
			return nil, fmt.Errorf("%w: offline directory: %v", ErrConfig, err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("%w: offline directory %s is not a directory", ErrConfig, cfg.OfflineDir)
		}
	}
	if cfg.Repository != "" {
		var opts []name.Option
		if cfg.Insecure {
			opts = append(opts, name.Insecure)
		}
		repo, err := name.NewRepository(cfg.Repository, opts...)
		if err != nil {
			return nil, fmt.Errorf("%w: repository: %v", ErrConfig, err)
		}
		c.repo = &repo
		c.remoteOpts = remoteOptions(cfg)
	}
	if c.posTTL < 0 || c.timeout < 0 {
		return nil, fmt.Errorf("%w: negative cache TTL or lookup timeout", ErrConfig)
	}
	if c.posTTL == 0 {
		c.posTTL = DefaultCacheTTL
	}
	switch {
	case c.negTTL == 0:
		c.negTTL = DefaultNegativeTTL
	case c.negTTL < 0:
		c.negTTL = 0
	}
	c.negTTL = min(c.negTTL, c.posTTL)
	if c.timeout == 0 {
		c.timeout = DefaultLookupTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// Check returns the verdict for digest ("sha256:<64 lowercase hex>"). The
// error is non-nil only for a malformed digest (ErrInvalidDigest); every
// doubt about the release is an untrusted verdict with a Reason.
func (c *Checker) Check(ctx context.Context, digest string) (Verdict, error) {
	if err := ValidateDigest(digest); err != nil {
		return Verdict{}, fmt.Errorf("%w: %v", ErrInvalidDigest, err)
	}
	if e, ok := c.allow[digest]; ok {
		v := Verdict{Digest: digest, Trusted: true, Source: SourceAllowlist, Version: e.Version, CheckedAt: c.now()}
		if e.ApprovedBy != "" {
			v.ManualApproval = &Approval{ApprovedBy: e.ApprovedBy, ApprovedAt: e.ApprovedAt, Note: e.Note}
		}
		return v, nil
	}
	if c.repo == nil && c.offlineDir == "" {
		return c.untrusted(digest, "not in the release allowlist (no offline directory or registry configured)"), nil
	}

	c.mu.Lock()
	if e, ok := c.cache[digest]; ok {
		if c.now().Before(e.expires) {
			c.mu.Unlock()
			v := e.v
			v.OriginalSource, v.Source = v.Source, SourceCache
			return v, nil
		}
		delete(c.cache, digest)
	}
	fl, ok := c.flights[digest]
	if !ok {
		fl = &flight{done: make(chan struct{})}
		c.flights[digest] = fl
		go c.run(context.WithoutCancel(ctx), digest, fl)
	}
	c.mu.Unlock()

	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	select {
	case <-fl.done:
		return fl.v, nil
	case <-ctx.Done():
		return c.untrusted(digest, "release check abandoned: "+ctx.Err().Error()), nil
	}
}

// run performs one lookup for the callers of a flight and caches its result.
func (c *Checker) run(ctx context.Context, digest string, fl *flight) {
	c.lookups.Add(1)
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	v := c.lookup(ctx, digest)

	c.mu.Lock()
	defer c.mu.Unlock()
	ttl := c.negTTL
	if v.Trusted {
		ttl = c.posTTL
	}
	if ttl > 0 {
		c.store(digest, cached{v: v, expires: v.CheckedAt.Add(ttl)})
	}
	delete(c.flights, digest)
	fl.v = v
	close(fl.done)
}

// store adds a cache entry, making room by dropping expired entries and,
// if that is not enough, arbitrary ones. Called with c.mu held.
func (c *Checker) store(digest string, e cached) {
	if len(c.cache) >= maxCacheEntries {
		now := c.now()
		for d, old := range c.cache {
			if !now.Before(old.expires) {
				delete(c.cache, d)
			}
		}
		for d := range c.cache {
			if len(c.cache) < maxCacheEntries {
				break
			}
			delete(c.cache, d)
		}
	}
	c.cache[digest] = e
}

// lookup consults the offline directory, then the registry.
func (c *Checker) lookup(ctx context.Context, digest string) Verdict {
	var reasons []string
	if c.offlineDir != "" {
		v, final := c.checkOffline(digest)
		if v.Trusted || final {
			return v
		}
		reasons = append(reasons, v.Reason)
	}
	if c.repo != nil {
		v := c.checkRegistry(ctx, digest)
		if v.Trusted {
			return v
		}
		reasons = append(reasons, v.Reason)
	}
	return c.untrusted(digest, strings.Join(reasons, "; "))
}

func (c *Checker) untrusted(digest, reason string) Verdict {
	return Verdict{Digest: digest, Reason: truncate(reason, maxReason), CheckedAt: c.now()}
}

func (c *Checker) trusted(digest, source string, f *finding, version string) Verdict {
	return Verdict{Digest: digest, Trusted: true, Source: source, KeyHint: f.keyHint, Version: version, CheckedAt: c.now()}
}

// ValidateDigest checks that d is "sha256:" followed by 64 lowercase hex
// digits, the only digest form the gate accepts for scanner images.
func ValidateDigest(d string) error {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok {
		return fmt.Errorf("digest %q is not sha256:<hex>", truncate(d, 80))
	}
	if len(hexPart) != 64 {
		return fmt.Errorf("digest has %d hex digits, want 64", len(hexPart))
	}
	for i := 0; i < len(hexPart); i++ {
		ch := hexPart[i]
		if (ch < '0' || ch > '9') && (ch < 'a' || ch > 'f') {
			return errors.New("digest is not lowercase hex")
		}
	}
	return nil
}

// truncate shortens s to at most n bytes (on a rune boundary), marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func utf8RuneStart(b byte) bool { return b&0xC0 != 0x80 }
