package quota

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a real redis-server (Debian's package) run by a test on a
// temporary Unix socket (or a 127.0.0.1 port for TLS), with persistence
// off. It is killed in cleanup; stop/start/pause/resume stage outages.
type redisServer struct {
	t    testing.TB
	dir  string
	sock string
	port int // TLS port, 0 when on the socket only
	args []string
	cmd  *exec.Cmd
	tls  *tlsFixture
}

// redisBinary finds redis-server or fails the test naming the package.
func redisBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found (%v): the shared-quota tests need Debian's redis-server; install it with: apt-get install -y redis-server (make deps does)", err)
	}
	return p
}

// startRedis starts a server on a fresh socket; extra are more
// redis-server arguments.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	// Unix socket paths are limited to 104 bytes: keep the directory short.
	dir, err := os.MkdirTemp("", "rq")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := &redisServer{t: t, dir: dir, sock: filepath.Join(dir, "redis.sock")}
	r.args = append([]string{
		"--port", "0", "--unixsocket", r.sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
	}, extra...)
	t.Cleanup(r.stop)
	r.start()
	return r
}

// startRedisTLS starts a server that speaks only TLS on a 127.0.0.1 port
// and requires client certificates.
func startRedisTLS(t *testing.T) *redisServer {
	t.Helper()
	f := newTLSFixture(t)
	port := freePort(t)
	r := startRedis(t,
		"--tls-port", strconv.Itoa(port), "--tls-cert-file", f.serverCert, "--tls-key-file", f.serverKey,
		"--tls-ca-cert-file", f.caFile, "--tls-auth-clients", "yes", "--bind", "127.0.0.1")
	r.port, r.tls = port, f
	return r
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// addr is the server's address in quota.redis.addr form.
func (r *redisServer) addr() string { return "unix://" + r.sock }

func (r *redisServer) start() {
	r.t.Helper()
	cmd := exec.Command(redisBinary(r.t), r.args...)
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	c := r.admin()
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			r.t.Fatalf("redis-server did not answer on %s: %v\n%s", r.sock, err, log)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop kills the server (SIGKILL: an outage, not a shutdown).
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGCONT)
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
	_ = os.Remove(r.sock)
}

// pause freezes the server (SIGSTOP): connections stay open, nothing is
// answered, as with an overloaded or partitioned store.
func (r *redisServer) pause()  { _ = r.cmd.Process.Signal(syscall.SIGSTOP) }
func (r *redisServer) resume() { _ = r.cmd.Process.Signal(syscall.SIGCONT) }

// admin is a client as the default user on the socket.
func (r *redisServer) admin() *redis.Client {
	return redis.NewClient(&redis.Options{Network: "unix", Addr: r.sock, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
}

// do runs one command as the default user.
func (r *redisServer) do(args ...any) any {
	r.t.Helper()
	c := r.admin()
	defer c.Close()
	v, err := c.Do(context.Background(), args...).Result()
	if err != nil && err != redis.Nil {
		r.t.Fatalf("redis %v: %v", args, err)
	}
	return v
}

// dayCount reads a tenant's count for the server's current UTC day.
func (r *redisServer) dayCount(prefix, tenant string) int64 {
	r.t.Helper()
	k := keysFor(prefix, tenant)
	v := r.do("HMGET", k.day, "d", "n")
	a := v.([]any)
	tm := r.do("TIME").([]any)
	secs, _ := strconv.ParseInt(tm[0].(string), 10, 64)
	if a[0] == nil || a[0].(string) != strconv.FormatInt(secs/86400, 10) {
		return 0
	}
	n, _ := strconv.ParseInt(a[1].(string), 10, 64)
	return n
}

// leases counts a tenant's leases (expired ones included).
func (r *redisServer) leases(prefix, tenant string) int64 {
	r.t.Helper()
	return r.do("ZCARD", keysFor(prefix, tenant).leases).(int64)
}

// storeOpts are the settings tests use: short probes, and timeouts long
// enough for a loaded 2-core machine under -race (outages are staged by
// killing the server, which fails at once; TestSlowStore sets its own).
func storeOpts(r *redisServer, prefix string) StoreConfig {
	return StoreConfig{
		Redis:       RedisConfig{Addr: r.addr(), KeyPrefix: prefix, Timeout: 3 * time.Second, DialTimeout: 3 * time.Second},
		OnStoreDown: OnDownDeny,
		ProbeMin:    10 * time.Millisecond,
		ProbeMax:    100 * time.Millisecond,
	}
}

// openStore opens a Store closed in cleanup.
func openStore(t *testing.T, cfg StoreConfig) *Store {
	t.Helper()
	s, err := OpenRedis(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// eventually polls cond every 5 ms until it holds or 20 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitSettled waits until s has sent every queued release.
func waitSettled(t *testing.T, s *Store) {
	t.Helper()
	eventually(t, "queued releases to be sent", s.settled)
}

// uniquePrefix gives each test its own key space on a shared server.
func uniquePrefix(t *testing.T) string {
	return "t:" + strings.NewReplacer("/", ":", " ", "_").Replace(t.Name()) + ":" + fmt.Sprint(time.Now().UnixNano()) + ":"
}
