package quota

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// aclCommands is the command list of the ACL user in docs/fleet.md: what
// the Store sends (PING is not needed but harmless for health checks) and
// what its scripts call.
const aclCommands = "-@all +ping +script|load +evalsha +eval +time +get +set +hmget +hget +hset +hincrby +pexpire +pexpireat +zadd +zrem +zremrangebyscore +zcard"

// TestACLUser: the Store works as an ACL user limited to the key prefix,
// authenticated from a password file; a wrong password, or a prefix the
// user may not touch, counts as the store being down (fail closed).
func TestACLUser(t *testing.T) {
	srv := startRedis(t)
	const prefix = "signer:quota:"
	const password = "s3cret-for-this-test-only"
	// The exact line of docs/fleet.md, password filled in.
	line := "ACL SETUSER signer-agent reset on >" + password + " ~" + prefix + "* resetchannels " + aclCommands
	srv.do(toArgs(line)...)
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "fleet.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), strings.Replace(line, password, "PASSWORD", 1)) {
		t.Fatalf("docs/fleet.md does not carry the ACL line this test runs:\n%s", strings.Replace(line, password, "PASSWORD", 1))
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "password")
	if err := os.WriteFile(good, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "wrong")
	if err := os.WriteFile(bad, []byte("not-it\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := Plan{Name: "p", QPS: 100, Burst: 10, Concurrency: 4, ArtifactsPerDay: 10}
	open := func(prefix, file string) *Store {
		cfg := storeOpts(srv, prefix)
		cfg.Redis.Username, cfg.Redis.PasswordFile = "signer-agent", file
		return openStore(t, cfg)
	}

	s := open(prefix, good)
	if s.Mode() != ModeShared {
		t.Fatalf("ACL user: mode %s (%s)", s.Mode(), s.Status().Err)
	}
	tk, err := s.AdmitN(context.Background(), "tenant", p, 1, 2)
	if err != nil || tk.Granted != 2 {
		t.Fatalf("as the ACL user: %v", err)
	}
	tk.Settle(1)
	waitSettled(t, s)
	if s.Mode() != ModeShared || srv.dayCount(prefix, "tenant") != 1 || srv.leases(prefix, "tenant") != 0 {
		t.Fatalf("settle as the ACL user: mode %s, count %d, leases %d", s.Mode(), srv.dayCount(prefix, "tenant"), srv.leases(prefix, "tenant"))
	}

	for name, c := range map[string]struct{ prefix, file string }{
		"wrong password":      {prefix, bad},
		"prefix outside ACL":  {"elsewhere:", good},
		"prefix of a sibling": {"signer:quotas:", good},
	} {
		t.Run(name, func(t *testing.T) {
			s := open(c.prefix, c.file)
			if _, err := s.AdmitN(context.Background(), "tenant", p, 1, 1); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
			if s.Status().Err == "" {
				t.Fatal("no cause in the status")
			}
		})
	}

	t.Run("missing password file", func(t *testing.T) {
		cfg := storeOpts(srv, prefix)
		cfg.Redis.Username, cfg.Redis.PasswordFile = "signer-agent", filepath.Join(dir, "none")
		if _, err := OpenRedis(context.Background(), cfg); err == nil {
			t.Fatal("opened without its password file")
		}
	})
}

// toArgs splits a redis-cli line on spaces (the ACL line has no quoting).
func toArgs(line string) []any {
	var out []any
	for _, f := range strings.Fields(line) {
		out = append(out, f)
	}
	return out
}

// TestTLS: the Store talks TLS with a client certificate to Debian's
// redis-server (built with OpenSSL); a client that does not trust the
// server's CA, or has no certificate, gets no connection.
func TestTLS(t *testing.T) {
	srv := startRedisTLS(t)
	f := srv.tls
	addr := "127.0.0.1:" + strconv.Itoa(srv.port)
	open := func(files *TLSFiles) *Store {
		cfg := storeOpts(srv, uniquePrefix(t))
		cfg.Redis.Addr, cfg.Redis.TLS = addr, files
		return openStore(t, cfg)
	}
	s := open(&TLSFiles{CAFile: f.caFile, CertFile: f.clientCert, KeyFile: f.clientKey})
	tk, err := s.AdmitN(context.Background(), "tenant", Plan{Name: "p", ArtifactsPerDay: 3}, 1, 1)
	if err != nil || tk.Mode != ModeShared {
		t.Fatalf("over TLS: %v (%s)", err, s.Status().Err)
	}
	tk.Commit()

	for name, files := range map[string]*TLSFiles{
		"untrusted server":      {CAFile: f.otherCA, CertFile: f.clientCert, KeyFile: f.clientKey},
		"no client certificate": {CAFile: f.caFile},
		"wrong server name":     {CAFile: f.caFile, CertFile: f.clientCert, KeyFile: f.clientKey, ServerName: "redis.example"},
	} {
		t.Run(name, func(t *testing.T) {
			s := open(files)
			if _, err := s.AdmitN(context.Background(), "tenant", Plan{Name: "p", ArtifactsPerDay: 3}, 1, 1); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("got %v, want ErrUnavailable", err)
			}
		})
	}
	t.Run("plain text to a TLS port", func(t *testing.T) {
		s := open(nil)
		if _, err := s.AdmitN(context.Background(), "tenant", Plan{Name: "p", ArtifactsPerDay: 3}, 1, 1); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("got %v, want ErrUnavailable", err)
		}
	})
}

// commandCounter counts the commands and pipelines a client sends.
type commandCounter struct {
	mu    chan struct{}
	cmds  []string
	trips int
}

func newCounter() *commandCounter { return &commandCounter{mu: make(chan struct{}, 1)} }

func (c *commandCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *commandCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.mu <- struct{}{}
		c.trips++
		c.cmds = append(c.cmds, cmd.Name())
		<-c.mu
		return next(ctx, cmd)
	}
}

func (c *commandCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.mu <- struct{}{}
		c.trips++
		for _, cmd := range cmds {
			c.cmds = append(c.cmds, cmd.Name())
		}
		<-c.mu
		return next(ctx, cmds)
	}
}

func (c *commandCounter) take() (int, []string) {
	c.mu <- struct{}{}
	defer func() { <-c.mu }()
	n, cmds := c.trips, c.cmds
	c.trips, c.cmds = 0, nil
	return n, cmds
}

// TestOneRoundTrip: a reservation, single or batch, is exactly one round
// trip (one EVALSHA); a success without a concurrency lease sends nothing
// more, and a release is one pipelined round trip off the request path.
// INFO commandstats on the server agrees with the client's count.
func TestOneRoundTrip(t *testing.T) {
	srv := startRedis(t)
	s := openStore(t, storeOpts(srv, uniquePrefix(t)))
	cc := newCounter()
	s.client.AddHook(cc)
	ctx := context.Background()
	calls := func() int64 { return evalshaCalls(t, srv) }
	before := calls()

	daily := Plan{Name: "p", QPS: 1000, Burst: 100, ArtifactsPerDay: 100}
	tk, err := s.AdmitN(ctx, "tenant", daily, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n, cmds := cc.take(); n != 1 || len(cmds) != 1 || cmds[0] != "evalsha" {
		t.Fatalf("single reservation: %d round trips %v", n, cmds)
	}
	tk.Commit()
	waitSettled(t, s)
	if n, cmds := cc.take(); n != 0 {
		t.Fatalf("commit without a lease: %d round trips %v", n, cmds)
	}

	tk, err = s.AdmitN(ctx, "tenant", daily, 1, 16)
	if err != nil || tk.Granted != 16 {
		t.Fatal(err)
	}
	if n, cmds := cc.take(); n != 1 || len(cmds) != 1 {
		t.Fatalf("batch of 16: %d round trips %v", n, cmds)
	}
	tk.Settle(10) // 6 failed: one refund
	waitSettled(t, s)
	if n, cmds := cc.take(); n != 1 || len(cmds) != 1 {
		t.Fatalf("partial refund: %d round trips %v", n, cmds)
	}

	conc := Plan{Name: "c", Concurrency: 8}
	tk, err = s.AdmitN(ctx, "tenant", conc, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := cc.take(); n != 1 {
		t.Fatalf("reservation with a lease: %d round trips", n)
	}
	tk.Commit()
	waitSettled(t, s)
	if n, cmds := cc.take(); n != 1 || len(cmds) != 1 {
		t.Fatalf("lease release: %d round trips %v", n, cmds)
	}
	// A plan without shared limits (none, or only a size limit) costs
	// no round trip at all.
	tk, err = s.AdmitN(ctx, "tenant", Plan{Name: "open", MaxArtifactBytes: 1 << 20}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	tk.Commit()
	waitSettled(t, s)
	if n, cmds := cc.take(); n != 0 {
		t.Fatalf("plan without shared limits: %d round trips %v", n, cmds)
	}
	// 3 reservations and 2 settlements, each one EVALSHA on the server.
	if got := calls() - before; got != 5 {
		t.Fatalf("server saw %d EVALSHA, want 5", got)
	}

	// A server that lost its scripts (restart, SCRIPT FLUSH) costs one
	// extra round trip once: EVALSHA answers NOSCRIPT, EVAL runs it.
	srv.do("SCRIPT", "FLUSH")
	if tk, err := s.AdmitN(ctx, "tenant", daily, 1, 1); err != nil || s.Mode() != ModeShared {
		t.Fatalf("after SCRIPT FLUSH: %v", err)
	} else {
		tk.Commit()
	}
	if n, cmds := cc.take(); n != 2 || cmds[0] != "evalsha" || cmds[1] != "eval" {
		t.Fatalf("after SCRIPT FLUSH: %d round trips %v", n, cmds)
	}
}

// evalshaCalls reads the server's EVALSHA count from INFO commandstats.
func evalshaCalls(t *testing.T, srv *redisServer) int64 {
	t.Helper()
	info := srv.do("INFO", "commandstats").(string)
	for _, l := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "cmdstat_evalsha:calls="); ok {
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			return n
		}
	}
	return 0
}
