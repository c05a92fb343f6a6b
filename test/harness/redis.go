package harness

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Redis is a real redis-server (Debian's package) on a temporary Unix
// socket with persistence off, killed when the test ends. Stop and Start
// stage an outage.
type Redis struct {
	t    testing.TB
	Dir  string
	Sock string
	cmd  *exec.Cmd
}

// StartRedis starts redis-server, or fails the test naming the package.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is not installed (Debian: apt-get install redis-server; make deps installs it)")
	}
	dir := ShortTempDir(t)
	r := &Redis{t: t, Dir: dir, Sock: filepath.Join(dir, "r.sock")}
	t.Cleanup(r.Stop)
	r.Start()
	return r
}

// Addr is the server's address in quota.redis.addr form.
func (r *Redis) Addr() string { return "unix://" + r.Sock }

// Start starts the server and waits until it accepts connections.
func (r *Redis) Start() {
	r.t.Helper()
	cmd := exec.Command("redis-server", "--port", "0", "--unixsocket", r.Sock, "--unixsocketperm", "700",
		"--save", "", "--appendonly", "no", "--dir", r.Dir, "--logfile", filepath.Join(r.Dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	r.cmd = cmd
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("unix", r.Sock)
		if err == nil {
			_ = c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server did not start: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Stop kills the server (an outage, not a shutdown).
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	_ = r.cmd.Wait()
	r.cmd = nil
	_ = os.Remove(r.Sock)
}
