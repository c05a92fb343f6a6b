package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/proto"
)

const minimal = `version: 1
authority: {issuer: "https://authority.example", jwksFile: trust/authority/jwks.json}
entitlement: {licensingKeysFile: trust/licensing/public.pem}
release: {allowlistFile: trust/release/allowlist.yaml}
tenants:
  - id: t
    predicateTypes: [stella.ops/sbom@v1]
    defaultKey: k
keys:
  - id: k
    uri: file:keys/k.pem
    tenants: [t]
`

func TestExampleConfigLoads(t *testing.T) {
	c, err := Load(filepath.Join("..", "..", "packaging", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Transport.MaxBodyBytes != DefaultMaxBodyBytes || c.Transport.DrainTimeout != DefaultDrainTimeout {
		t.Fatalf("example defaults drifted: %+v", c.Transport)
	}
	if c.Listen.API.Path != proto.DefaultSocket || c.Listen.Admin.Path != proto.DefaultAdminSocket {
		t.Fatal("example socket paths drifted from the defaults")
	}
}

func TestDefaultsAndResolution(t *testing.T) {
	c, err := Parse([]byte(minimal), "/etc/sa", "/etc/sa/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Keys[0].URI != "file:/etc/sa/keys/k.pem" {
		t.Fatalf("relative key path not resolved: %s", c.Keys[0].URI)
	}
	if c.Keys[0].Status != proto.KeyStatusActive || c.Listen.API.FileMode() != 0o660 || c.Listen.Admin.FileMode() != 0o600 {
		t.Fatalf("defaults: %+v %+v", c.Keys[0], c.Listen)
	}
	if c.Audit.Dir != DefaultStateDir+"/audit" || c.Transport.ReadHeaderTimeout != 5*time.Second {
		t.Fatal("defaults not applied")
	}
	files := c.WatchedFiles()
	if c.Authority.JWKSFile != "/etc/sa/trust/authority/jwks.json" || !c.DPoP.NonceIsRequired() || c.DPoP.HTUBase != "http://signer-agent" || c.Authority.Skew != 30*time.Second {
		t.Fatalf("authority defaults: %+v %+v", c.Authority, c.DPoP)
	}
	if len(files) != 5 || files[0] != "/etc/sa/config.yaml" || files[1] != "/etc/sa/keys/k.pem" || files[2] != "/etc/sa/trust/release/allowlist.yaml" || files[3] != "/var/lib/signer-agent/revoked-keys.yaml" {
		t.Fatalf("watched files %v", files)
	}
}

func TestRejects(t *testing.T) {
	cases := map[string]struct{ old, new string }{
		"unknown key":           {"version: 1", "version: 1\nbogus: true"},
		"unknown nested key":    {"jwksFile: trust/authority/jwks.json}", "jwksFile: trust/authority/jwks.json, other: 1}"},
		"wrong version":         {"version: 1", "version: 2"},
		"no authority":          {"authority: {issuer: \"https://authority.example\", jwksFile: trust/authority/jwks.json}", ""},
		"no issuer":             {"issuer: \"https://authority.example\", ", ""},
		"no JWKS source":        {", jwksFile: trust/authority/jwks.json}", "}"},
		"two JWKS sources":      {"jwksFile: trust/authority/jwks.json}", "jwksFile: trust/authority/jwks.json, discovery: true}"},
		"wrong audience":        {"jwksFile: trust/authority/jwks.json}", "jwksFile: trust/authority/jwks.json, audience: other}"},
		"huge skew":             {"jwksFile: trust/authority/jwks.json}", "jwksFile: trust/authority/jwks.json, skew: 1h}"},
		"no release source":     {"release: {allowlistFile: trust/release/allowlist.yaml}", "release: {}"},
		"registry without keys": {"release: {allowlistFile: trust/release/allowlist.yaml}", "release: {repository: registry.example/scanner}"},
		"no entitlement source": {"entitlement: {licensingKeysFile: trust/licensing/public.pem}", "entitlement: {}"},
		"plain http licensing":  {"entitlement: {licensingKeysFile: trust/licensing/public.pem}", "entitlement: {introspectionURL: \"http://licensing.example\"}"},
		"htu with path":         {"version: 1", "version: 1\ndpop: {htuBase: \"http://signer-agent/x\"}"},
		"tiny nonce window":     {"version: 1", "version: 1\ndpop: {nonceWindow: 1s}"},
		"no predicate types":    {"predicateTypes: [stella.ops/sbom@v1]", "predicateTypes: []"},
		"duplicate key id":      {"keys:\n", "keys:\n  - {id: k, uri: 'memory:x', tenants: [t]}\n"},
		"key without scheme":    {"uri: file:keys/k.pem", "uri: keys/k.pem"},
		"key bad status":        {"tenants: [t]\n", "tenants: [t]\n    status: maybe\n"},
		"key unknown tenant":    {"tenants: [t]\n", "tenants: [t, u]\n"},
		"default key unknown":   {"defaultKey: k", "defaultKey: nope"},
		"world-usable socket":   {"version: 1", "version: 1\nlisten: {api: {path: /run/a.sock, mode: '0666'}}"},
		"bad mode":              {"version: 1", "version: 1\nlisten: {api: {path: /run/a.sock, mode: 'rw'}}"},
		"same sockets":          {"version: 1", "version: 1\nlisten: {api: {path: /run/a.sock}, admin: {path: /run/a.sock}}"},
		"bad duration":          {"version: 1", "version: 1\ntransport: {idleTimeout: soon}"},
		"tiny body cap":         {"version: 1", "version: 1\ntransport: {maxBodyBytes: 10}"},
		"validity inverted":     {"tenants: [t]\n", "tenants: [t]\n    notBefore: 2027-01-01T00:00:00Z\n    notAfter: 2026-01-01T00:00:00Z\n"},
		"bad log level":         {"version: 1", "version: 1\nlogging: {level: loud}"},
		"two documents":         {"version: 1", "version: 1\n---\nversion: 1"},
		"negative segment size": {"version: 1", "version: 1\naudit: {segmentBytes: -1}"},
		"bad preallocation":     {"version: 1", "version: 1\naudit: {preallocateBytes: -2}"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(minimal, c.old) {
				t.Fatalf("fixture lacks %q", c.old)
			}
			y := strings.Replace(minimal, c.old, c.new, 1)
			if _, err := Parse([]byte(y), "/", ""); err == nil {
				t.Fatalf("accepted:\n%s", y)
			}
		})
	}
	if _, err := Parse(nil, "/", ""); err == nil {
		t.Fatal("empty config accepted")
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Fatalf("got %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// FuzzParse: the config parser never panics, and whatever it accepts
// validates again.
func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	if b, err := os.ReadFile(filepath.Join("..", "..", "packaging", "config.example.yaml")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("version: 1\nkeys: [{id: a}]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b, "/base", "")
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted config fails validation: %v", err)
		}
	})
}
