package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/stellaops/signer-agent/internal/quota"
)

func TestQuotaDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "/etc/sa", "")
	if err != nil {
		t.Fatal(err)
	}
	q := c.Quota
	if q.Store != QuotaStoreLocal || q.OnStoreDown != quota.OnDownDeny || q.LocalShare != 0 ||
		q.LeaseTTL != DefaultWriteTimeout+30*time.Second {
		t.Fatalf("defaults %+v", q)
	}
	r := q.Redis
	if r.KeyPrefix != quota.DefaultKeyPrefix || r.DialTimeout != quota.DefaultDialTimeout || r.Timeout != quota.DefaultTimeout {
		t.Fatalf("redis defaults %+v", r)
	}
	// A longer write timeout moves the lease TTL with it.
	c, err = Parse([]byte(minimal+"transport: {writeTimeout: 10m}\n"), "/etc/sa", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Quota.LeaseTTL != 10*time.Minute+30*time.Second {
		t.Fatalf("lease TTL %v", c.Quota.LeaseTTL)
	}
}

func TestQuotaRedisAccepted(t *testing.T) {
	cases := map[string]struct {
		yaml  string
		check func(t *testing.T, sc quota.StoreConfig)
	}{
		"standalone tcp": {`{store: redis, redis: {addr: "redis.internal:6379"}}`, func(t *testing.T, sc quota.StoreConfig) {
			if sc.Redis.Addr != "redis.internal:6379" || sc.Redis.TLS != nil || sc.OnStoreDown != quota.OnDownDeny {
				t.Fatalf("%+v", sc)
			}
		}},
		"unix socket, relative files resolved": {`{store: redis, redis: {addr: "unix:///run/redis/redis.sock", username: agent, passwordFile: secrets/redis, tls: {enabled: true, caFile: trust/ca.pem, certFile: c.pem, keyFile: k.pem, serverName: redis}}}`, func(t *testing.T, sc quota.StoreConfig) {
			r := sc.Redis
			if r.PasswordFile != "/etc/sa/secrets/redis" || r.Username != "agent" || r.TLS == nil ||
				r.TLS.CAFile != "/etc/sa/trust/ca.pem" || r.TLS.CertFile != "/etc/sa/c.pem" || r.TLS.KeyFile != "/etc/sa/k.pem" || r.TLS.ServerName != "redis" {
				t.Fatalf("%+v %+v", r, r.TLS)
			}
		}},
		"sentinel, local share as a fraction": {`{store: redis, onStoreDown: local, localShare: 0.25, redis: {sentinel: {masterName: quotas, addrs: ["s1:26379", "s2:26379"]}}}`, func(t *testing.T, sc quota.StoreConfig) {
			if sc.Redis.SentinelMaster != "quotas" || len(sc.Redis.SentinelAddrs) != 2 || sc.OnStoreDown != quota.OnDownLocal || sc.LocalShare != 0.25 {
				t.Fatalf("%+v", sc)
			}
		}},
		"cluster, local share as a node count": {`{store: redis, onStoreDown: local, localShare: 8, leaseTTL: 5m, redis: {cluster: {addrs: ["c1:6379"]}, keyPrefix: "prod:quota:", timeout: 50ms}}`, func(t *testing.T, sc quota.StoreConfig) {
			if len(sc.Redis.ClusterAddrs) != 1 || sc.LocalShare != 0.125 || sc.LeaseTTL != 5*time.Minute ||
				sc.Redis.KeyPrefix != "prod:quota:" || sc.Redis.Timeout != 50*time.Millisecond {
				t.Fatalf("%+v", sc)
			}
		}},
		"local store with redis staged": {`{store: local, redis: {addr: "bad"}}`, func(t *testing.T, sc quota.StoreConfig) {}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse([]byte(minimal+"quota: "+c.yaml+"\n"), "/etc/sa", "")
			if err != nil {
				t.Fatal(err)
			}
			c.check(t, cfg.Quota.StoreConfig())
		})
	}
}

func TestQuotaRejects(t *testing.T) {
	cases := map[string]string{
		"unknown store":              `{store: memcached}`,
		"unknown key":                `{store: redis, redis: {addr: "r:6379", db: 2}}`,
		"unknown outage mode":        `{onStoreDown: panic}`,
		"local without a share":      `{onStoreDown: local}`,
		"negative share":             `{onStoreDown: local, localShare: -0.5}`,
		"fractional node count":      `{onStoreDown: local, localShare: 2.5}`,
		"share with deny":            `{localShare: 0.5}`,
		"lease shorter than request": `{leaseTTL: 60s}`,
		"lease of days":              `{leaseTTL: 48h}`,
		"redis without address":      `{store: redis}`,
		"two topologies":             `{store: redis, redis: {addr: "r:6379", cluster: {addrs: ["c:6379"]}}}`,
		"address without port":       `{store: redis, redis: {addr: "redis.internal"}}`,
		"port out of range":          `{store: redis, redis: {addr: "r:70000"}}`,
		"relative unix socket":       `{store: redis, redis: {addr: "unix://run/redis.sock"}}`,
		"sentinel without master":    `{store: redis, redis: {sentinel: {addrs: ["s:26379"]}}}`,
		"sentinel without addrs":     `{store: redis, redis: {sentinel: {masterName: m}}}`,
		"bad cluster seed":           `{store: redis, redis: {cluster: {addrs: ["c"]}}}`,
		"prefix with hash tag":       `{store: redis, redis: {addr: "r:6379", keyPrefix: "a{b}:"}}`,
		"user without password":      `{store: redis, redis: {addr: "r:6379", username: agent}}`,
		"cert without key":           `{store: redis, redis: {addr: "r:6379", tls: {enabled: true, certFile: c.pem}}}`,
		"tls files while off":        `{store: redis, redis: {addr: "r:6379", tls: {caFile: ca.pem}}}`,
		"negative timeout":           `{store: redis, redis: {addr: "r:6379", timeout: -1s}}`,
		"huge timeout":               `{store: redis, redis: {addr: "r:6379", timeout: 1m}}`,
	}
	for name, q := range cases {
		t.Run(name, func(t *testing.T) {
			y := minimal + "quota: " + q + "\n"
			if _, err := Parse([]byte(y), "/", ""); err == nil {
				t.Fatalf("accepted:\n%s", y)
			}
		})
	}
}

// TestExampleDocumentsQuota: the example config carries every quota key
// (the test that loads it checks the values parse).
func TestExampleDocumentsQuota(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "packaging", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Quota map[string]any `yaml:"quota"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"":               {"store", "onStoreDown", "localShare", "leaseTTL", "redis"},
		"redis":          {"addr", "sentinel", "cluster", "username", "passwordFile", "tls", "keyPrefix", "dialTimeout", "timeout", "poolSize"},
		"redis.sentinel": {"masterName", "addrs"},
		"redis.cluster":  {"addrs"},
		"redis.tls":      {"enabled", "caFile", "certFile", "keyFile", "serverName"},
	}
	for path, keys := range want {
		m := doc.Quota
		if path != "" {
			for _, p := range strings.Split(path, ".") {
				m, _ = m[p].(map[string]any)
			}
		}
		for _, k := range keys {
			if _, ok := m[k]; !ok {
				t.Errorf("config.example.yaml: quota.%s lacks %s", path, k)
			}
		}
		if len(m) != len(keys) {
			t.Errorf("config.example.yaml: quota.%s has %d keys, the test knows %d", path, len(m), len(keys))
		}
	}
	c, err := Load(filepath.Join("..", "..", "packaging", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Quota.Store != QuotaStoreLocal || c.Quota.LeaseTTL != DefaultWriteTimeout+30*time.Second || c.Quota.Redis.KeyPrefix != quota.DefaultKeyPrefix {
		t.Fatalf("example quota drifted from the defaults: %+v", c.Quota)
	}
}
