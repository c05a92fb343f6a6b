package config

import (
	"fmt"
	"math"
	"time"

	"github.com/stellaops/signer-agent/internal/quota"
)

// Quota store kinds (quota.store).
const (
	QuotaStoreLocal = "local" // each node counts alone; daily counts rebuilt from the audit log
	QuotaStoreRedis = "redis" // one shared count per tenant in Redis or Valkey (SPEC §16)
)

// Quota says where plan quotas are counted (SPEC §16). Read at start: a
// change of store needs a restart.
type Quota struct {
	// Store is local (default) or redis.
	Store string `yaml:"store,omitempty"`
	// OnStoreDown is what a node does while the shared store is
	// unreachable: deny (default; 503 quota_unavailable) or local (serve
	// the node's share of each plan).
	OnStoreDown string `yaml:"onStoreDown,omitempty"`
	// LocalShare is the node's share with onStoreDown: local: a fraction
	// 0 < f ≤ 1, or a node count n ≥ 2 (an integer), meaning 1/n.
	LocalShare float64 `yaml:"localShare,omitempty"`
	// LeaseTTL is how long a concurrency slot of a crashed agent stays
	// taken; longer than any request (default transport.writeTimeout +
	// 30s).
	LeaseTTL time.Duration `yaml:"leaseTTL,omitempty"`
	Redis    QuotaRedis    `yaml:"redis,omitempty"`
}

// QuotaRedis says how to reach the store: exactly one of addr, sentinel
// and cluster.
type QuotaRedis struct {
	Addr     string        `yaml:"addr,omitempty"` // host:port or unix:///path
	Sentinel QuotaSentinel `yaml:"sentinel,omitempty"`
	Cluster  QuotaCluster  `yaml:"cluster,omitempty"`
	Username string        `yaml:"username,omitempty"`
	// PasswordFile holds the password (first line); re-read for every new
	// connection.
	PasswordFile string   `yaml:"passwordFile,omitempty"`
	TLS          QuotaTLS `yaml:"tls,omitempty"`
	// KeyPrefix starts every key (default "signer:quota:"); one per fleet
	// sharing a server.
	KeyPrefix   string        `yaml:"keyPrefix,omitempty"`
	DialTimeout time.Duration `yaml:"dialTimeout,omitempty"` // default 1s
	// Timeout bounds one reservation; a slower store counts as down
	// (default 250ms).
	Timeout  time.Duration `yaml:"timeout,omitempty"`
	PoolSize int           `yaml:"poolSize,omitempty"` // connections per server; 0: 10 per CPU
}

// QuotaSentinel names a Sentinel-managed master.
type QuotaSentinel struct {
	MasterName string   `yaml:"masterName,omitempty"`
	Addrs      []string `yaml:"addrs,omitempty"`
}

// QuotaCluster lists Redis Cluster seed nodes.
type QuotaCluster struct {
	Addrs []string `yaml:"addrs,omitempty"`
}

// QuotaTLS turns on TLS to the store.
type QuotaTLS struct {
	Enabled    bool   `yaml:"enabled,omitempty"`
	CAFile     string `yaml:"caFile,omitempty"`     // default: system roots
	CertFile   string `yaml:"certFile,omitempty"`   // client certificate, with keyFile
	KeyFile    string `yaml:"keyFile,omitempty"`    //
	ServerName string `yaml:"serverName,omitempty"` // default: the host dialled
}

// Share is LocalShare as a fraction.
func (q *Quota) Share() float64 {
	if q.LocalShare > 1 {
		return 1 / q.LocalShare
	}
	return q.LocalShare
}

// StoreConfig is the quota.StoreConfig for quota.OpenRedis (the caller
// adds GlobalConcurrency, Now, OnModeChange and Observer).
func (q *Quota) StoreConfig() quota.StoreConfig {
	r := q.Redis
	rc := quota.RedisConfig{
		Addr: r.Addr, SentinelMaster: r.Sentinel.MasterName, SentinelAddrs: r.Sentinel.Addrs,
		ClusterAddrs: r.Cluster.Addrs, Username: r.Username, PasswordFile: r.PasswordFile,
		KeyPrefix: r.KeyPrefix, DialTimeout: r.DialTimeout, Timeout: r.Timeout, PoolSize: r.PoolSize,
	}
	if r.TLS.Enabled {
		rc.TLS = &quota.TLSFiles{CAFile: r.TLS.CAFile, CertFile: r.TLS.CertFile, KeyFile: r.TLS.KeyFile, ServerName: r.TLS.ServerName}
	}
	return quota.StoreConfig{Redis: rc, OnStoreDown: q.OnStoreDown, LocalShare: q.Share(), LeaseTTL: q.LeaseTTL}
}

func (c *Config) applyQuotaDefaults(base string) {
	q := &c.Quota
	if q.Store == "" {
		q.Store = QuotaStoreLocal
	}
	if q.OnStoreDown == "" {
		q.OnStoreDown = quota.OnDownDeny
	}
	if q.LeaseTTL == 0 {
		q.LeaseTTL = c.Transport.WriteTimeout + 30*time.Second
	}
	r := &q.Redis
	if r.KeyPrefix == "" {
		r.KeyPrefix = quota.DefaultKeyPrefix
	}
	if r.DialTimeout == 0 {
		r.DialTimeout = quota.DefaultDialTimeout
	}
	if r.Timeout == 0 {
		r.Timeout = quota.DefaultTimeout
	}
	r.PasswordFile = resolve(base, r.PasswordFile)
	r.TLS.CAFile = resolve(base, r.TLS.CAFile)
	r.TLS.CertFile = resolve(base, r.TLS.CertFile)
	r.TLS.KeyFile = resolve(base, r.TLS.KeyFile)
}

func (c *Config) validateQuota() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	q := &c.Quota
	switch q.Store {
	case QuotaStoreLocal, QuotaStoreRedis:
	default:
		add("quota.store: want local or redis")
	}
	switch q.OnStoreDown {
	case quota.OnDownDeny:
		if q.LocalShare != 0 {
			add("quota.localShare: only with onStoreDown: local")
		}
	case quota.OnDownLocal:
		switch s := q.LocalShare; {
		case s <= 0 || math.IsNaN(s) || math.IsInf(s, 0):
			add("quota.localShare: required with onStoreDown: local (a fraction 0 < f <= 1, or a node count)")
		case s > 1 && (s != math.Trunc(s) || s > 1e6):
			add("quota.localShare: above 1 it is a node count and must be a whole number")
		}
	default:
		add("quota.onStoreDown: want deny or local")
	}
	if q.LeaseTTL <= c.Transport.WriteTimeout {
		add("quota.leaseTTL: must exceed transport.writeTimeout (%s), the longest a request can take", c.Transport.WriteTimeout)
	}
	if q.LeaseTTL > 24*time.Hour {
		add("quota.leaseTTL: at most 24h")
	}
	r := &q.Redis
	if q.Store == QuotaStoreRedis {
		rc := q.StoreConfig().Redis
		if err := rc.Check(); err != nil {
			for _, e := range unjoin(err) {
				add("quota.redis: %v", e)
			}
		}
		if r.Timeout > 10*time.Second || r.DialTimeout > time.Minute {
			add("quota.redis: timeout at most 10s, dialTimeout at most 1m (the sign path waits on them)")
		}
		if !r.TLS.Enabled && (r.TLS.CAFile != "" || r.TLS.CertFile != "" || r.TLS.KeyFile != "" || r.TLS.ServerName != "") {
			add("quota.redis.tls: files given but enabled is false")
		}
	}
	return errs
}

// unjoin splits an errors.Join.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
