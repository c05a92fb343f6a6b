package quota

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// Defaults of the store's connection settings.
const (
	DefaultDialTimeout = time.Second
	DefaultTimeout     = 250 * time.Millisecond
)

// RedisConfig says how to reach the shared store: exactly one of Addr
// (standalone), SentinelMaster with SentinelAddrs, or ClusterAddrs.
type RedisConfig struct {
	// Addr is host:port or unix:///absolute/path of a standalone server.
	Addr string
	// SentinelMaster and SentinelAddrs (host:port each) find the master
	// of a Sentinel-managed group.
	SentinelMaster string
	SentinelAddrs  []string
	// ClusterAddrs are seed nodes (host:port) of a Redis Cluster.
	ClusterAddrs []string
	// Username is the ACL user; PasswordFile holds its password (one
	// line). The file is read at Open and again for every new
	// connection, so a rotated password needs no restart.
	Username     string
	PasswordFile string
	// TLS, when set, makes every connection TLS 1.2+.
	TLS *TLSFiles
	// KeyPrefix starts every key (default DefaultKeyPrefix); it must not
	// hold '{' or '}'.
	KeyPrefix string
	// DialTimeout bounds one connection attempt (default 1 s); Timeout
	// bounds one reservation, dialling included (default 250 ms): past it
	// the store counts as down.
	DialTimeout time.Duration
	Timeout     time.Duration
	// PoolSize is the connection pool per server (0: go-redis's
	// default, 10 per CPU).
	PoolSize int
}

// TLSFiles are PEM files for TLS to the store.
type TLSFiles struct {
	// CAFile holds the roots the server certificate must chain to
	// (empty: the system roots).
	CAFile string
	// CertFile and KeyFile are the client certificate and key, for
	// servers that require one (tls-auth-clients yes).
	CertFile, KeyFile string
	// ServerName overrides the name checked in the server certificate
	// (default: the host of the address dialled).
	ServerName string
}

// SetClientLogger sends the messages go-redis writes on its own (failed
// dials, pool events; never credentials) to printf instead of stderr. It
// is process-wide; nil discards them. The agent calls it once at start.
func SetClientLogger(printf func(format string, args ...any)) {
	redis.SetLogger(clientLogger(printf))
}

type clientLogger func(format string, args ...any)

func (l clientLogger) Printf(_ context.Context, format string, args ...any) {
	if l != nil {
		l(format, args...)
	}
}

// ParseAddr splits a standalone address: unix:///path gives ("unix",
// "/path"); host:port gives ("tcp", "host:port").
func ParseAddr(addr string) (network, address string, err error) {
	if rest, ok := strings.CutPrefix(addr, "unix://"); ok {
		if !strings.HasPrefix(rest, "/") || strings.ContainsAny(rest, "?#\x00") || len(rest) < 2 {
			return "", "", fmt.Errorf("quota store address %q: want unix:///absolute/path", addr)
		}
		return "unix", rest, nil
	}
	if err := checkHostPort(addr); err != nil {
		return "", "", err
	}
	return "tcp", addr, nil
}

func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("quota store address %q: want host:port or unix:///path", addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if host == "" || err != nil || n == 0 || strings.ContainsAny(host, " /\x00") {
		return fmt.Errorf("quota store address %q: want host:port with a port from 1 to 65535", addr)
	}
	return nil
}

// Check validates the settings without connecting (files are not read).
func (c *RedisConfig) Check() error {
	var errs []error
	modes := 0
	if c.Addr != "" {
		modes++
		if _, _, err := ParseAddr(c.Addr); err != nil {
			errs = append(errs, err)
		}
	}
	if c.SentinelMaster != "" || len(c.SentinelAddrs) > 0 {
		modes++
		if c.SentinelMaster == "" || len(c.SentinelAddrs) == 0 {
			errs = append(errs, errors.New("sentinel: masterName and addrs are both required"))
		}
		for _, a := range c.SentinelAddrs {
			if err := checkHostPort(a); err != nil {
				errs = append(errs, fmt.Errorf("sentinel: %w", err))
			}
		}
	}
	if len(c.ClusterAddrs) > 0 {
		modes++
		for _, a := range c.ClusterAddrs {
			if err := checkHostPort(a); err != nil {
				errs = append(errs, fmt.Errorf("cluster: %w", err))
			}
		}
	}
	if modes != 1 {
		errs = append(errs, errors.New("set exactly one of addr, sentinel and cluster"))
	}
	if strings.ContainsAny(c.KeyPrefix, "{} \x00\r\n") {
		errs = append(errs, fmt.Errorf("keyPrefix %q: must not hold braces, spaces or control characters", c.KeyPrefix))
	}
	if c.Username != "" && c.PasswordFile == "" {
		errs = append(errs, errors.New("username needs a passwordFile"))
	}
	if t := c.TLS; t != nil && (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, errors.New("tls: certFile and keyFile go together"))
	}
	if c.DialTimeout < 0 || c.Timeout < 0 || c.PoolSize < 0 {
		errs = append(errs, errors.New("dialTimeout, timeout and poolSize must not be negative"))
	}
	return errors.Join(errs...)
}

func (c RedisConfig) withDefaults() RedisConfig {
	if c.KeyPrefix == "" {
		c.KeyPrefix = DefaultKeyPrefix
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// readPassword reads the first line of a password file.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("quota store password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.TrimSuffix(line, "\r")
	if line == "" {
		return "", fmt.Errorf("quota store password file %s: empty", path)
	}
	return line, nil
}

func (c *RedisConfig) tlsConfig() (*tls.Config, error) {
	if c.TLS == nil {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TLS.ServerName}
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("quota store tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("quota store tls: no certificate in %s", c.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("quota store tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// newClient builds the go-redis client for c (with defaults applied). No
// connection is made. Commands are never retried by the client: a
// reservation is not idempotent, and the Store's own probe backs off.
func newClient(c RedisConfig) (redis.UniversalClient, error) {
	if err := c.Check(); err != nil {
		return nil, fmt.Errorf("quota store: %w", err)
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	var creds func(context.Context) (string, string, error)
	if c.PasswordFile != "" {
		if _, err := readPassword(c.PasswordFile); err != nil {
			return nil, err
		}
		user, file := c.Username, c.PasswordFile
		creds = func(context.Context) (string, string, error) {
			pw, err := readPassword(file)
			return user, pw, err
		}
	}
	noMaint := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	switch {
	case c.Addr != "":
		network, addr, _ := ParseAddr(c.Addr)
		return redis.NewClient(&redis.Options{
			Network: network, Addr: addr, Protocol: 2,
			CredentialsProviderContext: creds, TLSConfig: tc,
			DialTimeout: c.DialTimeout, DialerRetries: 1,
			ReadTimeout: c.Timeout, WriteTimeout: c.Timeout, ContextTimeoutEnabled: true,
			PoolTimeout: c.Timeout, PoolSize: c.PoolSize, MaxRetries: -1,
			DisableIdentity: true, MaintNotificationsConfig: noMaint,
		}), nil
	case c.SentinelMaster != "":
		return redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: c.SentinelMaster, SentinelAddrs: c.SentinelAddrs, Protocol: 2,
			CredentialsProviderContext: creds, TLSConfig: tc,
			DialTimeout: c.DialTimeout, DialerRetries: 1,
			ReadTimeout: c.Timeout, WriteTimeout: c.Timeout, ContextTimeoutEnabled: true,
			PoolTimeout: c.Timeout, PoolSize: c.PoolSize, MaxRetries: -1,
			DisableIdentity: true,
		}), nil
	default:
		return redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: c.ClusterAddrs, Protocol: 2,
			CredentialsProviderContext: creds, TLSConfig: tc,
			DialTimeout: c.DialTimeout, DialerRetries: 1,
			ReadTimeout: c.Timeout, WriteTimeout: c.Timeout, ContextTimeoutEnabled: true,
			PoolTimeout: c.Timeout, PoolSize: c.PoolSize, MaxRetries: -1,
			DisableIdentity: true, MaintNotificationsConfig: noMaint,
		}), nil
	}
}
