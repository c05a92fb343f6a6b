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
	bin  string
	dir  string // TPM state, kept across Kill and Restart
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
	s := &SWTPM{bin: bin, dir: t.TempDir()}
	t.Cleanup(s.Kill)
	for attempt := 0; attempt < 5; attempt++ {
		s.Port = freePortPair(t)
		if s.start() == nil {
			return s
		}
	}
	t.Fatal("swtpm did not start")
	return nil
}

// Restart starts the simulator again after Kill, on the same ports and
// with the same TPM state (a node whose TPM comes back).
func (s *SWTPM) Restart(t testing.TB) {
	t.Helper()
	if err := s.start(); err != nil {
		t.Fatalf("restart swtpm: %v", err)
	}
}

// start runs swtpm on s.Port and waits until it accepts connections.
func (s *SWTPM) start() error {
	cmd := exec.Command(s.bin, "socket", "--tpm2",
		"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", s.Port),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", s.Port+1),
		"--tpmstate", "dir="+s.dir, "--flags", "not-need-init,startup-clear")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond); err == nil {
			c.Close()
			s.cmd = cmd
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	return fmt.Errorf("swtpm on port %d did not accept connections", s.Port)
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

// Kill stops the simulator (the TPM disappears) until Restart.
func (s *SWTPM) Kill() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}
