// Package config loads, validates and watches the agent's YAML configuration
// (SPEC §12). Files are `version: 1`; unknown keys are refused; every value
// is validated before the agent uses it; relative paths are resolved against
// the directory of the config file.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// Version is the only configuration version this build reads.
const Version = 1

// Defaults.
const (
	DefaultStateDir          = "/var/lib/signer-agent"
	DefaultMaxBodyBytes      = 32 << 20
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 60 * time.Second
	DefaultWriteTimeout      = 120 * time.Second
	DefaultIdleTimeout       = 90 * time.Second
	DefaultDrainTimeout      = 20 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// Config is one validated configuration snapshot. It is immutable once
// returned by Load: reloads build a new one.
type Config struct {
	Version   int       `yaml:"version"`
	StateDir  string    `yaml:"stateDir"`
	Listen    Listen    `yaml:"listen"`
	Transport Transport `yaml:"transport"`
	Peers     Peers     `yaml:"peers"`
	Authority Authority `yaml:"authority"`
	DPoP      DPoP      `yaml:"dpop"`
	// Entitlement configures Proof-of-Entitlement checks (SPEC §6).
	Entitlement Entitlement `yaml:"entitlement"`
	// Release configures scanner release integrity (SPEC §7).
	Release Release  `yaml:"release"`
	Plans   []Plan   `yaml:"plans"`
	Limits  Limits   `yaml:"limits"`
	Tenants []Tenant `yaml:"tenants"`
	Keys    []Key    `yaml:"keys"`
	// Keyless configures keyless signing (keyless.go).
	Keyless Keyless `yaml:"keyless"`
	// RevocationList is a watched YAML file of revoked key ids
	// (revoked: [{id, reason, at}]); default <stateDir>/revoked-keys.yaml.
	// POST /admin/v1/keys/{id}/revoke appends to it.
	RevocationList string  `yaml:"revocationList"`
	Audit          Audit   `yaml:"audit"`
	Metrics        Metrics `yaml:"metrics"`
	Logging        Logging `yaml:"logging"`

	// path is the file the config was loaded from (empty for in-memory).
	path string
}

// Listen names the two Unix sockets the agent binds when it is not socket
// activated.
type Listen struct {
	API   Socket `yaml:"api"`
	Admin Socket `yaml:"admin"`
	// TCP is the optional mTLS listener for callers on other hosts (off
	// when Address is empty). Tokens used on it must be bound to the
	// client certificate (cnf.x5t#S256); DPoP does not apply there.
	TCP TCP `yaml:"tcp"`
}

// TCP configures the mTLS listener.
type TCP struct {
	Address      string `yaml:"address"`      // host:port; empty: off
	CertFile     string `yaml:"certFile"`     // server certificate chain (PEM)
	KeyFile      string `yaml:"keyFile"`      // server private key (PEM)
	ClientCAFile string `yaml:"clientCAFile"` // roots client certificates must chain to
}

// Enabled reports whether the TCP listener is configured.
func (t TCP) Enabled() bool { return t.Address != "" }

// Socket is a Unix socket path with its file mode and group.
type Socket struct {
	Path  string `yaml:"path"`
	Mode  string `yaml:"mode"`  // octal, e.g. "0660"
	Group string `yaml:"group"` // group name or numeric gid; empty: unchanged
}

// FileMode parses Mode.
func (s Socket) FileMode() os.FileMode {
	m, _ := strconv.ParseUint(s.Mode, 8, 32)
	return os.FileMode(m)
}

// Transport holds the HTTP limits.
type Transport struct {
	MaxBodyBytes      int64         `yaml:"maxBodyBytes"`
	MaxHeaderBytes    int           `yaml:"maxHeaderBytes"`
	ReadHeaderTimeout time.Duration `yaml:"readHeaderTimeout"`
	ReadTimeout       time.Duration `yaml:"readTimeout"`
	WriteTimeout      time.Duration `yaml:"writeTimeout"`
	IdleTimeout       time.Duration `yaml:"idleTimeout"`
	DrainTimeout      time.Duration `yaml:"drainTimeout"`
}

// Peers is the SO_PEERCRED allowlist of the api socket: a caller is allowed
// when its uid is in UIDs, or its primary gid or one of its supplementary
// groups (SO_PEERGROUPS) is in GIDs. With Allow unset the agent's own uid and
// root are allowed; an explicitly empty list allows nobody.
type Peers struct {
	Allow *PeerAllow `yaml:"allow"`
	// Admin is the allowlist of the admin socket (default: root and the
	// agent's own uid).
	Admin *PeerAllow `yaml:"admin"`
}

// PeerAllow lists allowed uids and gids.
type PeerAllow struct {
	UIDs []uint32 `yaml:"uids"`
	GIDs []uint32 `yaml:"gids"`
}

// Allows reports whether a peer with uid, primary gid and supplementary
// groups is allowed.
func (p *PeerAllow) Allows(uid, gid uint32, groups []uint32) bool {
	for _, u := range p.UIDs {
		if u == uid {
			return true
		}
	}
	for _, g := range p.GIDs {
		if g == gid {
			return true
		}
		for _, sg := range groups {
			if g == sg {
				return true
			}
		}
	}
	return false
}

// Authority configures OpTok verification (SPEC §5).
type Authority struct {
	Issuer        string `yaml:"issuer"`
	Audience      string `yaml:"audience"`      // default "signer"
	RequiredScope string `yaml:"requiredScope"` // default "signer.sign"
	// Installation, when set, must equal the token's inst claim.
	Installation string `yaml:"installation"`
	// JWKSFile (offline nodes) or Discovery (fetch the issuer's
	// /.well-known/openid-configuration): exactly one.
	JWKSFile    string        `yaml:"jwksFile"`
	Discovery   bool          `yaml:"discovery"`
	Skew        time.Duration `yaml:"skew"`        // default 30s
	MaxLifetime time.Duration `yaml:"maxLifetime"` // default 10m
	// RefetchMinInterval rate-limits JWKS refetches on an unknown kid.
	RefetchMinInterval time.Duration `yaml:"refetchMinInterval"` // default 30s
}

// Entitlement configures PoE verification: offline JWTs signed by the
// licensing key(s) in LicensingKeysFile, and/or online introspection.
type Entitlement struct {
	LicensingKeysFile string        `yaml:"licensingKeysFile"` // PEM public key(s)
	Issuer            string        `yaml:"issuer"`            // optional exact iss of JWT PoEs
	IntrospectionURL  string        `yaml:"introspectionURL"`  // <url>/license/introspect
	Timeout           time.Duration `yaml:"timeout"`           // default 3s
	Retries           int           `yaml:"retries"`           // default 2
	CacheTTL          time.Duration `yaml:"cacheTTL"`          // default 5m
	Grace             time.Duration `yaml:"grace"`             // default 1h
}

// Release configures release-integrity checks of the calling scanner's
// image digest: online through the OCI Referrers API of Repository, offline
// through an allowlist and/or a directory of signatures and bundles.
type Release struct {
	Repository    string        `yaml:"repository"`    // e.g. registry.example/stella/scanner
	KeyFiles      []string      `yaml:"keyFiles"`      // trusted release public keys (PEM)
	AllowlistFile string        `yaml:"allowlistFile"` // YAML: entries: [{digest, version, approvedBy, approvedAt, note}]
	OfflineDir    string        `yaml:"offlineDir"`    // signatures/bundles per digest
	CacheTTL      time.Duration `yaml:"cacheTTL"`      // default 10m
	// Insecure allows a plain-HTTP registry (tests on loopback only).
	Insecure bool `yaml:"insecure"`
}

// DPoP configures sender binding (RFC 9449).
type DPoP struct {
	HTUBase       string        `yaml:"htuBase"`       // default "http://signer-agent"
	NonceRequired *bool         `yaml:"nonceRequired"` // default true
	NonceWindow   time.Duration `yaml:"nonceWindow"`   // default 5m
}

// NonceIsRequired reports the effective nonce setting.
func (d DPoP) NonceIsRequired() bool { return d.NonceRequired == nil || *d.NonceRequired }

// Tenant is one tenant's signing policy.
type Tenant struct {
	ID             string   `yaml:"id"`
	PredicateTypes []string `yaml:"predicateTypes"`
	DefaultKey     string   `yaml:"defaultKey"`
	// FallbackKey signs when the default key's backend fails (HSM gone,
	// TPM error); the switch is audited and counted.
	FallbackKey string `yaml:"fallbackKey"`
	// Plan names the tenant's plan until its Proof-of-Entitlement names
	// one; empty: no plan limits.
	Plan string `yaml:"plan"`
}

// Plan is a named set of quotas (SPEC §1 step 6). Zero means unlimited.
type Plan struct {
	Name             string  `yaml:"name"`
	QPS              float64 `yaml:"qps"`
	Burst            int     `yaml:"burst"`
	Concurrency      int     `yaml:"concurrency"`
	MaxArtifactBytes int64   `yaml:"maxArtifactBytes"`
	ArtifactsPerDay  int64   `yaml:"artifactsPerDay"`
}

// Limits are agent-wide limits.
type Limits struct {
	// GlobalConcurrency caps signing requests in flight across all
	// tenants, protecting slow key backends (0: unlimited).
	GlobalConcurrency int `yaml:"globalConcurrency"`
}

// PlanByName returns the named plan, or nil.
func (c *Config) PlanByName(name string) *Plan {
	for i := range c.Plans {
		if c.Plans[i].Name == name {
			return &c.Plans[i]
		}
	}
	return nil
}

// Key is a configured signing key.
type Key struct {
	ID        string     `yaml:"id"`
	URI       string     `yaml:"uri"`
	Tenants   []string   `yaml:"tenants"`
	Status    string     `yaml:"status"` // active (default), verify-only, revoked
	NotBefore *time.Time `yaml:"notBefore"`
	NotAfter  *time.Time `yaml:"notAfter"`
	// CertificateChainFile is a PEM chain for the key, leaf first
	// (keyless.go).
	CertificateChainFile string `yaml:"certificateChainFile"`
}

// Audit configures the audit log.
type Audit struct {
	Dir string `yaml:"dir"` // default <stateDir>/audit
	// SegmentBytes rotates segment files past this size (default 64 MiB).
	SegmentBytes int64 `yaml:"segmentBytes"`
	// PreallocateBytes is the zero-filled space kept ahead of the records
	// in the active segment, so that a commit's fdatasync has no
	// allocation or size change to persist (default 1 MiB; -1 turns it
	// off, which suits copy-on-write file systems such as btrfs or ZFS).
	PreallocateBytes int64 `yaml:"preallocateBytes"`
	// Journal also sends every durable record to the systemd journal
	// (best effort, asynchronous; the log stays the record). Read at start.
	Journal   bool           `yaml:"journal"`
	Retention AuditRetention `yaml:"retention"`
}

// AuditRetention says which closed segments may be deleted. Segments not
// yet exported are kept unless DeleteUnexported.
type AuditRetention struct {
	MaxAge           time.Duration `yaml:"maxAge"`   // 0: keep
	MaxBytes         int64         `yaml:"maxBytes"` // 0: no limit
	DeleteUnexported bool          `yaml:"deleteUnexported"`
}

// Metrics configures the Prometheus listener. The admin socket always
// serves /metrics too.
type Metrics struct {
	// Listen is host:port for GET /metrics (default 127.0.0.1:9464);
	// "off" disables the TCP listener.
	Listen string `yaml:"listen"`
}

// Enabled reports whether the metrics TCP listener is on.
func (m Metrics) Enabled() bool { return m.Listen != "off" }

// Logging configures zap.
type Logging struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json (default) or console
}

// Path is the file the config came from.
func (c *Config) Path() string { return c.path }

// Tenant returns the tenant with id, or nil.
func (c *Config) Tenant(id string) *Tenant {
	for i := range c.Tenants {
		if c.Tenants[i].ID == id {
			return &c.Tenants[i]
		}
	}
	return nil
}

// Load reads, parses and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config path: %w", err)
	}
	return Parse(b, filepath.Dir(abs), abs)
}

// Parse parses and validates config bytes. Relative paths resolve against
// baseDir. file is recorded as the config's path (may be empty).
func Parse(b []byte, baseDir, file string) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("config: empty document")
		}
		return nil, fmt.Errorf("config: %w", err)
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("config: more than one YAML document")
	}
	c.path = file
	c.applyDefaults(baseDir)
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func resolve(base, p string) string {
	if p == "" || filepath.IsAbs(p) || base == "" {
		return p
	}
	return filepath.Join(base, p)
}

func (c *Config) applyDefaults(base string) {
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir
	}
	c.StateDir = resolve(base, c.StateDir)
	c.Keyless.applyDefaults(base)
	if c.Listen.API.Path == "" {
		c.Listen.API.Path = proto.DefaultSocket
	}
	c.Listen.API.Path = resolve(base, c.Listen.API.Path)
	if c.Listen.API.Mode == "" {
		c.Listen.API.Mode = "0660"
	}
	if c.Listen.Admin.Path == "" {
		c.Listen.Admin.Path = proto.DefaultAdminSocket
	}
	c.Listen.Admin.Path = resolve(base, c.Listen.Admin.Path)
	if c.Listen.Admin.Mode == "" {
		c.Listen.Admin.Mode = "0600"
	}
	c.Listen.TCP.CertFile = resolve(base, c.Listen.TCP.CertFile)
	c.Listen.TCP.KeyFile = resolve(base, c.Listen.TCP.KeyFile)
	c.Listen.TCP.ClientCAFile = resolve(base, c.Listen.TCP.ClientCAFile)
	t := &c.Transport
	if t.MaxBodyBytes == 0 {
		t.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if t.MaxHeaderBytes == 0 {
		t.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if t.ReadHeaderTimeout == 0 {
		t.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if t.ReadTimeout == 0 {
		t.ReadTimeout = DefaultReadTimeout
	}
	if t.WriteTimeout == 0 {
		t.WriteTimeout = DefaultWriteTimeout
	}
	if t.IdleTimeout == 0 {
		t.IdleTimeout = DefaultIdleTimeout
	}
	if t.DrainTimeout == 0 {
		t.DrainTimeout = DefaultDrainTimeout
	}
	for i := range c.Keys {
		if c.Keys[i].Status == "" {
			c.Keys[i].Status = proto.KeyStatusActive
		}
		c.Keys[i].URI = resolveKeyURI(base, c.Keys[i].URI)
		c.Keys[i].CertificateChainFile = resolve(base, c.Keys[i].CertificateChainFile)
	}
	a := &c.Authority
	if a.Audience == "" {
		a.Audience = "signer"
	}
	if a.RequiredScope == "" {
		a.RequiredScope = "signer.sign"
	}
	a.JWKSFile = resolve(base, a.JWKSFile)
	if a.Skew == 0 {
		a.Skew = 30 * time.Second
	}
	if a.MaxLifetime == 0 {
		a.MaxLifetime = 10 * time.Minute
	}
	if a.RefetchMinInterval == 0 {
		a.RefetchMinInterval = 30 * time.Second
	}
	rl := &c.Release
	for i := range rl.KeyFiles {
		rl.KeyFiles[i] = resolve(base, rl.KeyFiles[i])
	}
	rl.AllowlistFile = resolve(base, rl.AllowlistFile)
	rl.OfflineDir = resolve(base, rl.OfflineDir)
	if rl.CacheTTL == 0 {
		rl.CacheTTL = 10 * time.Minute
	}
	en := &c.Entitlement
	en.LicensingKeysFile = resolve(base, en.LicensingKeysFile)
	if en.Timeout == 0 {
		en.Timeout = 3 * time.Second
	}
	if en.Retries == 0 {
		en.Retries = 2
	}
	if en.CacheTTL == 0 {
		en.CacheTTL = 5 * time.Minute
	}
	if en.Grace == 0 {
		en.Grace = time.Hour
	}
	if c.DPoP.HTUBase == "" {
		c.DPoP.HTUBase = "http://" + proto.Host
	}
	if c.DPoP.NonceWindow == 0 {
		c.DPoP.NonceWindow = 5 * time.Minute
	}
	if c.Audit.Dir == "" {
		c.Audit.Dir = filepath.Join(c.StateDir, "audit")
	}
	if c.RevocationList == "" {
		c.RevocationList = filepath.Join(c.StateDir, "revoked-keys.yaml")
	}
	c.RevocationList = resolve(base, c.RevocationList)
	c.Audit.Dir = resolve(base, c.Audit.Dir)
	if c.Metrics.Listen == "" {
		c.Metrics.Listen = "127.0.0.1:9464"
	}
	if c.Logging.Level == "" {
		c.Logging.Level = "info"
	}
	if c.Logging.Format == "" {
		c.Logging.Format = "json"
	}
}

// resolveKeyURI makes a relative file: path absolute against base.
func resolveKeyURI(base, uri string) string {
	rest, ok := strings.CutPrefix(uri, "file:")
	if !ok || strings.HasPrefix(rest, "/") || base == "" {
		return uri
	}
	return "file:" + filepath.Join(base, rest)
}

// Validate checks a config with defaults applied.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Version != Version {
		add("version: must be %d, got %d", Version, c.Version)
	}
	for name, s := range map[string]Socket{"listen.api": c.Listen.API, "listen.admin": c.Listen.Admin} {
		if !filepath.IsAbs(s.Path) {
			add("%s.path: must be absolute", name)
		}
		if len(s.Path) > 104 {
			add("%s.path: longer than 104 bytes (Unix socket limit)", name)
		}
		m, err := strconv.ParseUint(s.Mode, 8, 32)
		if err != nil || m > 0o777 {
			add("%s.mode: want an octal file mode such as 0660", name)
		} else if m&0o007 != 0 {
			add("%s.mode: must not grant access to others", name)
		}
	}
	if t := c.Listen.TCP; t.Enabled() {
		if _, _, err := net.SplitHostPort(t.Address); err != nil {
			add("listen.tcp.address: want host:port")
		}
		if t.CertFile == "" || t.KeyFile == "" || t.ClientCAFile == "" {
			add("listen.tcp: certFile, keyFile and clientCAFile are required (mTLS only)")
		}
	}
	if c.Metrics.Enabled() {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			add("metrics.listen: want host:port or off")
		}
	}
	if c.Listen.API.Path == c.Listen.Admin.Path {
		add("listen: api and admin sockets must differ")
	}
	if c.Transport.MaxBodyBytes < 1024 {
		add("transport.maxBodyBytes: at least 1024")
	}
	for name, d := range map[string]time.Duration{
		"readHeaderTimeout": c.Transport.ReadHeaderTimeout, "readTimeout": c.Transport.ReadTimeout,
		"writeTimeout": c.Transport.WriteTimeout, "idleTimeout": c.Transport.IdleTimeout, "drainTimeout": c.Transport.DrainTimeout,
	} {
		if d < 0 {
			add("transport.%s: must be positive", name)
		}
	}
	if c.Authority.Issuer == "" {
		add("authority.issuer: required (nothing can be signed without caller authentication)")
	}
	if (c.Authority.JWKSFile == "") == !c.Authority.Discovery {
		add("authority: set exactly one of jwksFile (offline) and discovery: true")
	}
	if c.Authority.Discovery && !strings.HasPrefix(c.Authority.Issuer, "https://") {
		add("authority.issuer: discovery needs an https issuer")
	}
	if c.Authority.Audience != "signer" {
		add("authority.audience: must be \"signer\"")
	}
	if c.Authority.Skew < 0 || c.Authority.Skew > 5*time.Minute {
		add("authority.skew: between 0 and 5m")
	}
	if c.Authority.MaxLifetime <= 0 || c.Authority.MaxLifetime > time.Hour {
		add("authority.maxLifetime: between 1s and 1h")
	}
	if u, err := url.Parse(c.DPoP.HTUBase); err != nil || u.Scheme == "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || (u.Path != "" && u.Path != "/") {
		add("dpop.htuBase: want scheme://host without path or query")
	}
	if en := c.Entitlement; en.LicensingKeysFile == "" && en.IntrospectionURL == "" {
		add("entitlement: set licensingKeysFile (offline PoEs) and/or introspectionURL (online); nothing is signed without a PoE")
	} else if en.IntrospectionURL != "" {
		if u, err := url.Parse(en.IntrospectionURL); err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
			add("entitlement.introspectionURL: want https (http only to a loopback host)")
		}
	}
	if c.Entitlement.Retries < 0 || c.Entitlement.Retries > 10 || c.Entitlement.Timeout < 0 || c.Entitlement.Grace < 0 || c.Entitlement.CacheTTL < 0 {
		add("entitlement: timeout, retries (0–10), cacheTTL and grace must not be negative")
	}
	if rl := c.Release; rl.Repository == "" && rl.AllowlistFile == "" && rl.OfflineDir == "" {
		add("release: set repository (online), allowlistFile and/or offlineDir; no scanner release can be trusted without one")
	} else if (rl.Repository != "" || rl.OfflineDir != "") && len(rl.KeyFiles) == 0 {
		add("release.keyFiles: required to verify signatures from repository or offlineDir")
	}
	if c.DPoP.NonceWindow < 10*time.Second || c.DPoP.NonceWindow > time.Hour {
		add("dpop.nonceWindow: between 10s and 1h")
	}
	tenants := map[string]bool{}
	for i, t := range c.Tenants {
		if t.ID == "" {
			add("tenants[%d].id: required", i)
		}
		if tenants[t.ID] {
			add("tenants[%d].id: duplicate %q", i, t.ID)
		}
		tenants[t.ID] = true
		if len(t.PredicateTypes) == 0 {
			add("tenants[%d].predicateTypes: at least one (nothing could be signed)", i)
		}
	}
	plans := map[string]bool{}
	for i, p := range c.Plans {
		if p.Name == "" || plans[p.Name] {
			add("plans[%d].name: required and unique", i)
		}
		plans[p.Name] = true
		if p.QPS < 0 || p.Burst < 0 || p.Concurrency < 0 || p.MaxArtifactBytes < 0 || p.ArtifactsPerDay < 0 {
			add("plans[%d]: limits must not be negative", i)
		}
		if p.QPS > 0 && p.Burst < 1 {
			add("plans[%d].burst: at least 1 when qps is set", i)
		}
	}
	for i, t := range c.Tenants {
		if t.Plan != "" && !plans[t.Plan] {
			add("tenants[%d].plan: unknown plan %q", i, t.Plan)
		}
	}
	if c.Audit.SegmentBytes < 0 {
		add("audit.segmentBytes: must not be negative")
	}
	if c.Audit.PreallocateBytes < -1 {
		add("audit.preallocateBytes: must be -1 (off), 0 (default) or a size in bytes")
	}
	if c.Limits.GlobalConcurrency < 0 {
		add("limits.globalConcurrency: must not be negative")
	}
	ids := map[string]*Key{}
	for i := range c.Keys {
		k := &c.Keys[i]
		if k.ID == "" {
			add("keys[%d].id: required", i)
		}
		if ids[k.ID] != nil {
			add("keys[%d].id: duplicate %q", i, k.ID)
		}
		ids[k.ID] = k
		if keys.Scheme(k.URI) == "" {
			add("keys[%d].uri: want scheme:…", i)
		}
		switch k.Status {
		case proto.KeyStatusActive, proto.KeyStatusVerifyOnly, proto.KeyStatusRevoked:
		default:
			add("keys[%d].status: want active, verify-only or revoked", i)
		}
		if k.NotBefore != nil && k.NotAfter != nil && !k.NotAfter.After(*k.NotBefore) {
			add("keys[%d]: notAfter must be after notBefore", i)
		}
		if len(k.Tenants) == 0 {
			add("keys[%d].tenants: at least one", i)
		}
		for _, t := range k.Tenants {
			if !tenants[t] {
				add("keys[%d].tenants: unknown tenant %q", i, t)
			}
		}
	}
	for i, t := range c.Tenants {
		if t.FallbackKey != "" {
			k := ids[t.FallbackKey]
			switch {
			case k == nil:
				add("tenants[%d].fallbackKey: unknown key %q", i, t.FallbackKey)
			case !contains(k.Tenants, t.ID):
				add("tenants[%d].fallbackKey: key %q does not serve tenant %q", i, t.FallbackKey, t.ID)
			case t.FallbackKey == t.DefaultKey:
				add("tenants[%d].fallbackKey: must differ from defaultKey", i)
			}
		}
		if t.DefaultKey == "" {
			continue
		}
		k := ids[t.DefaultKey]
		switch {
		case k == nil:
			add("tenants[%d].defaultKey: unknown key %q", i, t.DefaultKey)
		case !contains(k.Tenants, t.ID):
			add("tenants[%d].defaultKey: key %q does not serve tenant %q", i, t.DefaultKey, t.ID)
		}
	}
	switch c.Logging.Level {
	case "debug", "info", "warn", "error":
	default:
		add("logging.level: want debug, info, warn or error")
	}
	switch c.Logging.Format {
	case "json", "console":
	default:
		add("logging.format: want json or console")
	}
	errs = append(errs, c.validateKeyless()...)
	if len(errs) > 0 {
		return fmt.Errorf("config: %w", errors.Join(errs...))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// WatchedFiles lists the files whose change should trigger a reload: the
// config file itself, file: keys and their password files.
func (c *Config) WatchedFiles() []string {
	var out []string
	if c.path != "" {
		out = append(out, c.path)
	}
	for _, k := range c.Keys {
		out = append(out, keyFiles(k.URI)...)
	}
	if c.Release.AllowlistFile != "" {
		out = append(out, c.Release.AllowlistFile)
	}
	if c.RevocationList != "" {
		out = append(out, c.RevocationList)
	}
	out = append(out, c.Release.KeyFiles...)
	if c.Entitlement.LicensingKeysFile != "" {
		out = append(out, c.Entitlement.LicensingKeysFile)
	}
	return out
}

// keyFiles returns the local files a file: key URI names (the key and its
// password file).
func keyFiles(uri string) []string {
	if keys.Scheme(uri) != "file" {
		return nil
	}
	u, err := url.Parse(uri)
	if err != nil {
		return nil
	}
	p := u.Path
	if p == "" {
		p = u.Opaque
	}
	out := []string{p}
	if pf := u.Query().Get("password-file"); pf != "" {
		out = append(out, pf)
	}
	return out
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
