package config

import (
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/proto"
)

// badValue is one table case of a section: mutate changes a valid config
// as written (before defaults), want is the exact problem Validate must
// report, starting with the key it names.
type badValue struct {
	name   string
	mutate func(c *Config)
	want   string
}

// checkBad runs cases against the minimal config: each must be refused
// with its problem among the reported ones.
func checkBad(t *testing.T, cases []badValue) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseMutated(t, tc.mutate)
			if err == nil {
				t.Fatalf("accepted; want %q", tc.want)
			}
			for _, line := range strings.Split(strings.TrimPrefix(err.Error(), "config: "), "\n") {
				if line == tc.want {
					return
				}
			}
			t.Fatalf("got %q\nwant the problem %q", err, tc.want)
		})
	}
}

// parseMutated applies mutate to the minimal config as written and
// returns it with defaults applied and validated.
func parseMutated(t *testing.T, mutate func(c *Config)) (*Config, error) {
	t.Helper()
	c, err := Decode([]byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	mutate(c)
	c.applyDefaults("/etc/sa")
	return c, c.Validate()
}

func TestMinimalIsValid(t *testing.T) {
	if _, err := Parse([]byte(minimal), "/etc/sa", ""); err != nil {
		t.Fatal(err)
	}
}

func TestVersionSection(t *testing.T) {
	checkBad(t, []badValue{
		{"missing", func(c *Config) { c.Version = 0 }, "version: must be 1, got 0"},
		{"future", func(c *Config) { c.Version = 2 }, "version: must be 1, got 2"},
	})
}

func TestListenSection(t *testing.T) {
	checkBad(t, []badValue{
		{"long path", func(c *Config) { c.Listen.API.Path = "/" + strings.Repeat("a", 104) }, "listen.api.path: longer than 104 bytes (Unix socket limit)"},
		{"mode not octal", func(c *Config) { c.Listen.API.Mode = "rw" }, "listen.api.mode: want an octal file mode such as 0660"},
		{"mode too big", func(c *Config) { c.Listen.Admin.Mode = "1777" }, "listen.admin.mode: want an octal file mode such as 0660"},
		{"mode for others", func(c *Config) { c.Listen.API.Mode = "0666" }, "listen.api.mode: must not grant access to others"},
		{"admin mode for others", func(c *Config) { c.Listen.Admin.Mode = "0601" }, "listen.admin.mode: must not grant access to others"},
		{"same sockets", func(c *Config) { c.Listen.API.Path = "/run/a.sock"; c.Listen.Admin.Path = "/run/a.sock" }, "listen: api and admin sockets must differ"},
		{"tcp address", func(c *Config) {
			c.Listen.TCP = TCP{Address: "8443", CertFile: "c", KeyFile: "k", ClientCAFile: "ca"}
		}, "listen.tcp.address: want host:port"},
		{"tcp without mTLS files", func(c *Config) { c.Listen.TCP = TCP{Address: ":8443", CertFile: "c"} },
			"listen.tcp: certFile, keyFile and clientCAFile are required (mTLS only)"},
	})
	// A relative socket path resolves against the config's directory.
	c, err := parseMutated(t, func(c *Config) { c.Listen.API.Path = "run/api.sock" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.API.Path != "/etc/sa/run/api.sock" {
		t.Fatalf("api path %s", c.Listen.API.Path)
	}
}

func TestTransportSection(t *testing.T) {
	checkBad(t, []badValue{
		{"tiny body cap", func(c *Config) { c.Transport.MaxBodyBytes = 1023 }, "transport.maxBodyBytes: at least 1024"},
		{"negative read header timeout", func(c *Config) { c.Transport.ReadHeaderTimeout = -time.Second }, "transport.readHeaderTimeout: must be positive"},
		{"negative read timeout", func(c *Config) { c.Transport.ReadTimeout = -time.Second }, "transport.readTimeout: must be positive"},
		{"negative write timeout", func(c *Config) { c.Transport.WriteTimeout = -time.Second }, "transport.writeTimeout: must be positive"},
		{"negative idle timeout", func(c *Config) { c.Transport.IdleTimeout = -time.Second }, "transport.idleTimeout: must be positive"},
		{"negative drain timeout", func(c *Config) { c.Transport.DrainTimeout = -time.Second }, "transport.drainTimeout: must be positive"},
	})
}

func TestAuthoritySection(t *testing.T) {
	checkBad(t, []badValue{
		{"no issuer", func(c *Config) { c.Authority.Issuer = "" }, "authority.issuer: required (nothing can be signed without caller authentication)"},
		{"no JWKS source", func(c *Config) { c.Authority.JWKSFile = "" }, "authority: set exactly one of jwksFile (offline) and discovery: true"},
		{"two JWKS sources", func(c *Config) { c.Authority.Discovery = true }, "authority: set exactly one of jwksFile (offline) and discovery: true"},
		{"discovery over http", func(c *Config) {
			c.Authority.JWKSFile, c.Authority.Discovery, c.Authority.Issuer = "", true, "http://authority.example"
		}, "authority.issuer: discovery needs an https issuer"},
		{"wrong audience", func(c *Config) { c.Authority.Audience = "other" }, `authority.audience: must be "signer"`},
		{"negative skew", func(c *Config) { c.Authority.Skew = -time.Second }, "authority.skew: between 0 and 5m"},
		{"huge skew", func(c *Config) { c.Authority.Skew = time.Hour }, "authority.skew: between 0 and 5m"},
		{"negative lifetime", func(c *Config) { c.Authority.MaxLifetime = -time.Second }, "authority.maxLifetime: between 1s and 1h"},
		{"long lifetime", func(c *Config) { c.Authority.MaxLifetime = 2 * time.Hour }, "authority.maxLifetime: between 1s and 1h"},
	})
}

func TestDPoPSection(t *testing.T) {
	checkBad(t, []badValue{
		{"htu without scheme", func(c *Config) { c.DPoP.HTUBase = "signer-agent" }, "dpop.htuBase: want scheme://host without path or query"},
		{"htu with path", func(c *Config) { c.DPoP.HTUBase = "http://signer-agent/x" }, "dpop.htuBase: want scheme://host without path or query"},
		{"htu with query", func(c *Config) { c.DPoP.HTUBase = "http://signer-agent?x=1" }, "dpop.htuBase: want scheme://host without path or query"},
		{"tiny nonce window", func(c *Config) { c.DPoP.NonceWindow = time.Second }, "dpop.nonceWindow: between 10s and 1h"},
		{"huge nonce window", func(c *Config) { c.DPoP.NonceWindow = 2 * time.Hour }, "dpop.nonceWindow: between 10s and 1h"},
	})
	c, err := parseMutated(t, func(c *Config) { c.DPoP.NonceRequired = new(bool) })
	if err != nil {
		t.Fatal(err)
	}
	if c.DPoP.NonceIsRequired() {
		t.Fatal("nonceRequired: false ignored")
	}
}

func TestEntitlementSection(t *testing.T) {
	checkBad(t, []badValue{
		{"no source", func(c *Config) { c.Entitlement.LicensingKeysFile = "" },
			"entitlement: set licensingKeysFile (offline PoEs) and/or introspectionURL (online); nothing is signed without a PoE"},
		{"plain http", func(c *Config) { c.Entitlement.IntrospectionURL = "http://licensing.example" },
			"entitlement.introspectionURL: want https (http only to a loopback host)"},
		{"not a URL", func(c *Config) { c.Entitlement.IntrospectionURL = "licensing.example" },
			"entitlement.introspectionURL: want https (http only to a loopback host)"},
		{"negative retries", func(c *Config) { c.Entitlement.Retries = -1 }, "entitlement: timeout, retries (0–10), cacheTTL and grace must not be negative"},
		{"many retries", func(c *Config) { c.Entitlement.Retries = 11 }, "entitlement: timeout, retries (0–10), cacheTTL and grace must not be negative"},
		{"negative grace", func(c *Config) { c.Entitlement.Grace = -time.Second }, "entitlement: timeout, retries (0–10), cacheTTL and grace must not be negative"},
	})
	for _, u := range []string{"http://127.0.0.1:8080", "http://localhost", "http://[::1]:1", "https://licensing.example"} {
		if _, err := parseMutated(t, func(c *Config) { c.Entitlement.IntrospectionURL = u }); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestReleaseSection(t *testing.T) {
	checkBad(t, []badValue{
		{"no source", func(c *Config) { c.Release.AllowlistFile = "" },
			"release: set repository (online), allowlistFile and/or offlineDir; no scanner release can be trusted without one"},
		{"registry without keys", func(c *Config) { c.Release.Repository = "registry.example/scanner" },
			"release.keyFiles: required to verify signatures from repository or offlineDir"},
		{"offline dir without keys", func(c *Config) { c.Release.OfflineDir = "offline" },
			"release.keyFiles: required to verify signatures from repository or offlineDir"},
	})
}

func TestTenantsSection(t *testing.T) {
	checkBad(t, []badValue{
		{"no id", func(c *Config) { c.Tenants[0].ID = "" }, "tenants[0].id: required"},
		{"duplicate id", func(c *Config) { c.Tenants = append(c.Tenants, Tenant{ID: "t", PredicateTypes: []string{"x"}}) }, `tenants[1].id: duplicate "t"`},
		{"no predicate types", func(c *Config) { c.Tenants[0].PredicateTypes = nil }, "tenants[0].predicateTypes: at least one (nothing could be signed)"},
		{"unknown plan", func(c *Config) { c.Tenants[0].Plan = "gold" }, `tenants[0].plan: unknown plan "gold"`},
		{"unknown default key", func(c *Config) { c.Tenants[0].DefaultKey = "nope" }, `tenants[0].defaultKey: unknown key "nope"`},
		{"default key of another tenant", func(c *Config) {
			c.Tenants = append(c.Tenants, Tenant{ID: "u", PredicateTypes: []string{"x"}, DefaultKey: "k"})
		}, `tenants[1].defaultKey: key "k" does not serve tenant "u"`},
		{"unknown fallback key", func(c *Config) { c.Tenants[0].FallbackKey = "nope" }, `tenants[0].fallbackKey: unknown key "nope"`},
		{"fallback of another tenant", func(c *Config) {
			c.Tenants = append(c.Tenants, Tenant{ID: "u", PredicateTypes: []string{"x"}})
			c.Keys = append(c.Keys, Key{ID: "ku", URI: "memory:ku", Tenants: []string{"u"}})
			c.Tenants[0].FallbackKey = "ku"
		}, `tenants[0].fallbackKey: key "ku" does not serve tenant "t"`},
		{"fallback is the default", func(c *Config) { c.Tenants[0].FallbackKey = "k" }, "tenants[0].fallbackKey: must differ from defaultKey"},
	})
}

func TestPlansSection(t *testing.T) {
	checkBad(t, []badValue{
		{"no name", func(c *Config) { c.Plans = []Plan{{}} }, "plans[0].name: required and unique"},
		{"duplicate name", func(c *Config) { c.Plans = []Plan{{Name: "a"}, {Name: "a"}} }, "plans[1].name: required and unique"},
		{"negative limit", func(c *Config) { c.Plans = []Plan{{Name: "a", ArtifactsPerDay: -1}} }, "plans[0]: limits must not be negative"},
		{"qps without burst", func(c *Config) { c.Plans = []Plan{{Name: "a", QPS: 1}} }, "plans[0].burst: at least 1 when qps is set"},
	})
}

func TestKeysSection(t *testing.T) {
	notBefore, notAfter := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	checkBad(t, []badValue{
		{"no id", func(c *Config) { c.Keys[0].ID = "" }, "keys[0].id: required"},
		{"duplicate id", func(c *Config) { c.Keys = append(c.Keys, Key{ID: "k", URI: "memory:x", Tenants: []string{"t"}}) }, `keys[1].id: duplicate "k"`},
		{"no scheme", func(c *Config) { c.Keys[0].URI = "keys/k.pem" }, "keys[0].uri: want scheme:…"},
		{"bad status", func(c *Config) { c.Keys[0].Status = "maybe" }, "keys[0].status: want active, verify-only or revoked"},
		{"validity inverted", func(c *Config) { c.Keys[0].NotBefore, c.Keys[0].NotAfter = &notBefore, &notAfter }, "keys[0]: notAfter must be after notBefore"},
		{"no tenants", func(c *Config) { c.Keys[0].Tenants = nil }, "keys[0].tenants: at least one"},
		{"unknown tenant", func(c *Config) { c.Keys[0].Tenants = []string{"t", "u"} }, `keys[0].tenants: unknown tenant "u"`},
	})
}

func TestAuditSection(t *testing.T) {
	checkBad(t, []badValue{
		{"negative segment size", func(c *Config) { c.Audit.SegmentBytes = -1 }, "audit.segmentBytes: must not be negative"},
		{"bad preallocation", func(c *Config) { c.Audit.PreallocateBytes = -2 }, "audit.preallocateBytes: must be -1 (off), 0 (default) or a size in bytes"},
	})
}

func TestLimitsSection(t *testing.T) {
	checkBad(t, []badValue{
		{"negative concurrency", func(c *Config) { c.Limits.GlobalConcurrency = -1 }, "limits.globalConcurrency: must not be negative"},
	})
}

func TestMetricsSection(t *testing.T) {
	checkBad(t, []badValue{
		{"no port", func(c *Config) { c.Metrics.Listen = "127.0.0.1" }, "metrics.listen: want host:port or off"},
	})
	c, err := parseMutated(t, func(c *Config) { c.Metrics.Listen = "off" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Enabled() {
		t.Fatal(`listen: "off" left the listener on`)
	}
}

func TestLoggingSection(t *testing.T) {
	checkBad(t, []badValue{
		{"bad level", func(c *Config) { c.Logging.Level = "loud" }, "logging.level: want debug, info, warn or error"},
		{"bad format", func(c *Config) { c.Logging.Format = "xml" }, "logging.format: want json or console"},
	})
}

// TestEveryProblemReported: one run names every bad value, not just the
// first.
func TestEveryProblemReported(t *testing.T) {
	_, err := parseMutated(t, func(c *Config) {
		c.Logging.Level, c.Limits.GlobalConcurrency, c.Keys[0].Status = "loud", -1, "maybe"
	})
	for _, key := range []string{"logging.level:", "limits.globalConcurrency:", "keys[0].status:"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s not reported in %v", key, err)
		}
	}
}

// TestSectionDefaults: what each section's applyDefaults fills in.
func TestSectionDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "/etc/sa", "/etc/sa/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		got, want any
	}{
		{"stateDir", c.StateDir, DefaultStateDir},
		{"listen.api.path", c.Listen.API.Path, proto.DefaultSocket},
		{"listen.api.mode", c.Listen.API.Mode, "0660"},
		{"listen.admin.path", c.Listen.Admin.Path, proto.DefaultAdminSocket},
		{"listen.admin.mode", c.Listen.Admin.Mode, "0600"},
		{"transport.maxBodyBytes", c.Transport.MaxBodyBytes, int64(DefaultMaxBodyBytes)},
		{"transport.maxHeaderBytes", c.Transport.MaxHeaderBytes, DefaultMaxHeaderBytes},
		{"transport.readHeaderTimeout", c.Transport.ReadHeaderTimeout, DefaultReadHeaderTimeout},
		{"transport.readTimeout", c.Transport.ReadTimeout, DefaultReadTimeout},
		{"transport.writeTimeout", c.Transport.WriteTimeout, DefaultWriteTimeout},
		{"transport.idleTimeout", c.Transport.IdleTimeout, DefaultIdleTimeout},
		{"transport.drainTimeout", c.Transport.DrainTimeout, DefaultDrainTimeout},
		{"authority.audience", c.Authority.Audience, "signer"},
		{"authority.requiredScope", c.Authority.RequiredScope, "signer.sign"},
		{"authority.jwksFile", c.Authority.JWKSFile, "/etc/sa/trust/authority/jwks.json"},
		{"authority.skew", c.Authority.Skew, 30 * time.Second},
		{"authority.maxLifetime", c.Authority.MaxLifetime, 10 * time.Minute},
		{"authority.refetchMinInterval", c.Authority.RefetchMinInterval, 30 * time.Second},
		{"dpop.htuBase", c.DPoP.HTUBase, "http://signer-agent"},
		{"dpop.nonceWindow", c.DPoP.NonceWindow, 5 * time.Minute},
		{"dpop.nonceRequired", c.DPoP.NonceIsRequired(), true},
		{"entitlement.licensingKeysFile", c.Entitlement.LicensingKeysFile, "/etc/sa/trust/licensing/public.pem"},
		{"entitlement.timeout", c.Entitlement.Timeout, 3 * time.Second},
		{"entitlement.retries", c.Entitlement.Retries, 2},
		{"entitlement.cacheTTL", c.Entitlement.CacheTTL, 5 * time.Minute},
		{"entitlement.grace", c.Entitlement.Grace, time.Hour},
		{"release.allowlistFile", c.Release.AllowlistFile, "/etc/sa/trust/release/allowlist.yaml"},
		{"release.cacheTTL", c.Release.CacheTTL, 10 * time.Minute},
		{"keys[0].uri", c.Keys[0].URI, "file:/etc/sa/keys/k.pem"},
		{"keys[0].status", c.Keys[0].Status, proto.KeyStatusActive},
		{"audit.dir", c.Audit.Dir, DefaultStateDir + "/audit"},
		{"revocationList", c.RevocationList, DefaultStateDir + "/revoked-keys.yaml"},
		{"metrics.listen", c.Metrics.Listen, DefaultMetricsListen},
		{"logging.level", c.Logging.Level, "info"},
		{"logging.format", c.Logging.Format, "json"},
	}
	for _, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	// A relative stateDir resolves first; the paths under it follow.
	c, err = parseMutated(t, func(c *Config) { c.StateDir = "state" })
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/etc/sa/state" || c.Audit.Dir != "/etc/sa/state/audit" || c.RevocationList != "/etc/sa/state/revoked-keys.yaml" {
		t.Fatalf("stateDir %s audit %s revocations %s", c.StateDir, c.Audit.Dir, c.RevocationList)
	}
}
