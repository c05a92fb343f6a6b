package main

import (
	"bufio"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/test/harness"
)

func TestApplyMemoryLimit(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	cases := []struct {
		name       string
		env        string
		cfg        int64
		want       int64
		wantSource string
	}{
		{"configured", "", 512 << 20, 512 << 20, "limits.memoryLimit (512 MiB)"},
		{"none", "", -1, math.MaxInt64, "none"},
		{"GOMEMLIMIT wins", "300MiB", 512 << 20, 777 << 20, "GOMEMLIMIT=300MiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			debug.SetMemoryLimit(math.MaxInt64)
			if c.env != "" {
				t.Setenv(memoryLimitEnv, c.env)
				// What the runtime read from GOMEMLIMIT at start.
				debug.SetMemoryLimit(777 << 20)
			}
			got, source := applyMemoryLimit(config.Resources{MemoryLimit: c.cfg})
			if got != c.want || !strings.HasPrefix(source, c.wantSource) {
				t.Fatalf("got %d %q, want %d %q", got, source, c.want, c.wantSource)
			}
			if now := debug.SetMemoryLimit(-1); now != c.want {
				t.Fatalf("runtime limit %d, want %d", now, c.want)
			}
		})
	}
}

// TestLimitsAtStart: the real binary, started with a soft open-file limit
// below its hard one, runs with soft = hard and logs both, and logs the
// memory limit in force.
func TestLimitsAtStart(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Fatalf("prlimit not found (%v): install util-linux (make deps)", err)
	}
	bin := harness.Binary(t, "cmd/signer-agent")
	dir := harness.ShortTempDir(t)
	cmd := exec.Command(prlimit, "--nofile=256:4096", "--", bin, "--dev", "--state-dir", dir)
	cmd.Env = append(os.Environ(), "GOMEMLIMIT=700MiB")
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var nofile, mem string
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(60 * time.Second)
	for nofile == "" || mem == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("the agent exited before logging its limits")
			}
			switch {
			case strings.Contains(l, "open file limit"):
				nofile = l
			case strings.Contains(l, "memory limit"):
				mem = l
			}
		case <-deadline:
			t.Fatal("no limits logged within 60s")
		}
	}
	go func() {
		for range lines {
		}
	}()
	if !strings.Contains(nofile, `"soft": 4096`) || !strings.Contains(nofile, `"hard": 4096`) {
		t.Fatalf("open file limit line: %s", nofile)
	}
	if !strings.Contains(mem, `"source": "GOMEMLIMIT=700MiB"`) || !strings.Contains(mem, `"bytes": 734003200`) {
		t.Fatalf("memory limit line: %s", mem)
	}
	limits, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "limits"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(limits), "\n") {
		if strings.HasPrefix(l, "Max open files") {
			if f := strings.Fields(l); len(f) < 5 || f[3] != "4096" || f[4] != "4096" {
				t.Fatalf("/proc/PID/limits: %q", l)
			}
			return
		}
	}
	t.Fatal("no Max open files in /proc/PID/limits")
}
