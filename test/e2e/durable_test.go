package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestAdminWritesAreDurable traces the real agent's syscalls (strace)
// while an admin rotates and revokes keys, and checks that each state file
// is written the durable way: the new contents fsynced, renamed over the
// file, then the directory fsynced. Without the directory fsync a power
// loss can undo a revocation the audit log says was made.
func TestAdminWritesAreDurable(t *testing.T) {
	strace, err := exec.LookPath("strace")
	if err != nil {
		t.Fatal("strace is not installed (Debian: apt-get install strace; make deps installs it)")
	}
	bin := harness.Binary(t, "cmd/signer-agent")
	dir := harness.ShortTempDir(t)
	cfg, err := agent.SetupDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	trace := filepath.Join(dir, "strace.out")
	cmd := exec.Command(strace, "-f", "-qq", "-y", "-o", trace,
		"-e", "trace=fsync,fdatasync,rename,renameat,renameat2", bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-done })
	api, admin := filepath.Join(dir, "api.sock"), &client.Admin{Socket: filepath.Join(dir, "admin.sock")}
	waitHealthy(t, &client.Client{Socket: api})

	ctx := context.Background()
	if _, err := admin.RotateKey(ctx, "dev", proto.RotateRequest{NewID: "dev-2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.RevokeKey(ctx, "dev", "retired after rotation"); err != nil {
		t.Fatal(err)
	}
	// Stop the agent (strace's child); strace exits with it.
	kids, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
	if err != nil || len(strings.Fields(string(kids))) != 1 {
		t.Fatalf("agent pid under strace: %q %v", kids, err)
	}
	pid, _ := strconv.Atoi(strings.Fields(string(kids))[0])
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
		done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop")
	}

	ops := readTrace(t, trace)
	for _, target := range []string{
		filepath.Join(dir, "key-rotations.yaml"),
		filepath.Join(dir, "revoked-keys.yaml"),
	} {
		t.Run(filepath.Base(target), func(t *testing.T) { checkDurable(t, ops, target) })
	}
}

// traceOp is one traced syscall: fsync of a path, or a rename.
type traceOp struct {
	call     string // "fsync" or "rename"
	path     string // fsync: the file or directory; rename: the source
	renameTo string
}

var (
	fsyncLine  = regexp.MustCompile(`^\d+\s+f(?:data)?sync\(\d+<([^>]*)>\)\s+= 0`)
	renameLine = regexp.MustCompile(`^\d+\s+rename(?:at2?)?\((?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]+)", (?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]+)"(?:, \d+)?\)\s+= 0`)
)

func readTrace(t *testing.T, path string) []traceOp {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var ops []traceOp
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := fsyncLine.FindStringSubmatch(line); m != nil {
			ops = append(ops, traceOp{call: "fsync", path: m[1]})
		} else if m := renameLine.FindStringSubmatch(line); m != nil {
			ops = append(ops, traceOp{call: "rename", path: m[1], renameTo: m[2]})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ops
}

// checkDurable finds each rename onto target and requires an fsync of the
// renamed file before it and an fsync of target's directory after it.
func checkDurable(t *testing.T, ops []traceOp, target string) {
	t.Helper()
	renames := 0
	for i, op := range ops {
		if op.call != "rename" || op.renameTo != target {
			continue
		}
		renames++
		synced := false
		for _, before := range ops[:i] {
			if before.call == "fsync" && before.path == op.path {
				synced = true
			}
		}
		if !synced {
			t.Errorf("%s renamed over %s without an fsync of the new contents", op.path, target)
		}
		dirSynced := false
		for _, after := range ops[i+1:] {
			if after.call == "fsync" && after.path == filepath.Dir(target) {
				dirSynced = true
				break
			}
		}
		if !dirSynced {
			t.Errorf("rename onto %s not followed by an fsync of %s", target, filepath.Dir(target))
		}
	}
	if renames == 0 {
		t.Errorf("no rename onto %s traced (wrote in place?); traced: %+v", target, ops)
	}
}

func waitHealthy(t *testing.T, c *client.Client) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := c.Health(context.Background()); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("agent did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
