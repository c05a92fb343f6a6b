package harness

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/keys/tpm"
)

// SWTPM is a software TPM 2.0 (swtpm) on 127.0.0.1: commands on Port,
// control on Port+1.
type SWTPM struct {
	Port int
	cmd  *exec.Cmd
}

// Addr is the command address for a tpm: URI's sim= parameter.
func (s *SWTPM) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// StartSWTPM starts swtpm with a fresh state directory and kills it when
// the test ends. A missing swtpm fails the test (apt-get install swtpm
// swtpm-tools).
func StartSWTPM(t testing.TB) *SWTPM {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		t.Fatalf("swtpm not found (apt-get install swtpm swtpm-tools): %v", err)
	}
	dir := t.TempDir()
	for attempt := 0; attempt < 5; attempt++ {
		port := freePortPair(t)
		cmd := exec.Command(bin, "socket", "--tpm2",
			"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port),
			"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", port+1),
			"--tpmstate", "dir="+dir, "--flags", "not-need-init,startup-clear")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 100*time.Millisecond); err == nil {
				c.Close()
				s := &SWTPM{Port: port, cmd: cmd}
				t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
				return s
			}
			time.Sleep(20 * time.Millisecond)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
	t.Fatal("swtpm did not start")
	return nil
}

// CreateKey creates a signing key on the simulator, stored as the key
// file dir/k.tpmkey, and returns its tpm: URI.
func (s *SWTPM) CreateKey(t testing.TB, dir string) string {
	t.Helper()
	uri, _, err := tpm.CreateKey(context.Background(), tpm.CreateOptions{Sim: s.Addr(), BlobPath: filepath.Join(dir, "k.tpmkey")})
	if err != nil {
		t.Fatalf("create a key on swtpm: %v", err)
	}
	return uri
}

// freePortPair finds two consecutive free TCP ports on 127.0.0.1.
func freePortPair(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1))); err == nil {
			l2.Close()
			return p
		}
	}
	t.Fatal("no free port pair")
	return 0
}

// Pause stops the simulator (SIGSTOP): TPM commands hang until Resume, as
// on a slow or wedged TPM.
func (s *SWTPM) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused simulator.
func (s *SWTPM) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Kill stops the simulator for good (the TPM disappears).
func (s *SWTPM) Kill() { _ = s.cmd.Process.Kill(); _ = s.cmd.Wait() }
