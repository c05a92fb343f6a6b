package tpm

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
)

// simulator is an swtpm process serving a TPM 2.0 on two TCP ports of
// 127.0.0.1: commands on port, the control channel on port+1. Its state
// directory outlives restarts within a test.
type simulator struct {
	t    testing.TB
	bin  string
	dir  string
	port int

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    *bytes.Buffer
}

// startSimulator starts swtpm on free ports with a fresh state directory
// and kills it when the test ends. A missing swtpm fails the test.
func startSimulator(t testing.TB) *simulator {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		t.Fatalf("swtpm is needed for the TPM backend tests (%v); install it with: apt-get install swtpm swtpm-tools", err)
	}
	s := &simulator{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.kill)
	var last error
	for range 5 {
		s.port = freePortPair(t)
		if last = s.start(); last == nil {
			return s
		}
	}
	t.Fatalf("start swtpm: %v", last)
	return nil
}

// addr is the simulator's command address, as sim= takes it.
func (s *simulator) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

func (s *simulator) start() error {
	cmd := exec.Command(s.bin, "socket", "--tpm2",
		"--server", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", s.port),
		"--ctrl", fmt.Sprintf("type=tcp,port=%d,bindaddr=127.0.0.1", s.port+1),
		"--tpmstate", "dir="+s.dir,
		"--flags", "not-need-init,startup-clear")
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.cmd, s.exited, s.out = cmd, exited, out
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("swtpm exited: %s", out.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.addr(), time.Second); err == nil {
			_ = c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("swtpm does not listen on %s: %s", s.addr(), out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the simulator with SIGKILL (no orderly shutdown) and waits
// for it to exit. It is idempotent.
func (s *simulator) kill() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// restart starts the simulator again on the same ports and state.
func (s *simulator) restart() {
	s.t.Helper()
	s.kill()
	var err error
	for range 50 {
		if err = s.start(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("restart swtpm: %v", err)
}

// freePortPair returns a port p such that p and p+1 were free on
// 127.0.0.1 a moment ago.
func freePortPair(t testing.TB) int {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		if p >= 65535 {
			_ = l.Close()
			continue
		}
		l2, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
		_ = l.Close()
		if err != nil {
			continue
		}
		_ = l2.Close()
		return p
	}
	t.Fatal("no free pair of TCP ports")
	return 0
}

// withTPM runs op on the simulator's device, sharing the connection of the
// keys open on it.
func (s *simulator) withTPM(op func(d *device) error) error {
	d := acquire(keyURI{sim: s.addr()})
	defer d.release()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.run(ctx, once, func() error { return op(d) })
}

// setDictionaryAttack sets the TPM's dictionary-attack parameters through
// the lockout hierarchy (empty auth on a fresh simulator). go-tpm has no
// TPM2_DictionaryAttackParameters, so the command is built here.
func (s *simulator) setDictionaryAttack(maxTries, recoveryTime, lockoutRecovery uint32) {
	s.t.Helper()
	var cmd []byte
	cmd = binary.BigEndian.AppendUint16(cmd, uint16(tpm2.TPMSTSessions))
	cmd = binary.BigEndian.AppendUint32(cmd, 0) // size, below
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(tpm2.TPMCCDictionaryAttackParameters))
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(tpm2.TPMRHLockout))
	cmd = binary.BigEndian.AppendUint32(cmd, 9) // authorization area size
	cmd = binary.BigEndian.AppendUint32(cmd, uint32(tpm2.TPMRSPW))
	cmd = append(cmd, 0, 0, 0, 0, 0) // empty nonce, attributes, empty password
	cmd = binary.BigEndian.AppendUint32(cmd, maxTries)
	cmd = binary.BigEndian.AppendUint32(cmd, recoveryTime)
	cmd = binary.BigEndian.AppendUint32(cmd, lockoutRecovery)
	binary.BigEndian.PutUint32(cmd[2:], uint32(len(cmd)))
	err := s.withTPM(func(d *device) error {
		rsp, err := d.tpm.Send(cmd)
		if err != nil {
			return err
		}
		if rc := binary.BigEndian.Uint32(rsp[6:10]); rc != 0 {
			return tpm2.TPMRC(rc)
		}
		return nil
	})
	if err != nil {
		s.t.Fatalf("TPM2_DictionaryAttackParameters: %v", err)
	}
}

// lockoutCounter reads TPM_PT_LOCKOUT_COUNTER, the count of failed
// authorizations the dictionary-attack protection holds.
func (s *simulator) lockoutCounter() uint32 {
	s.t.Helper()
	var n uint32
	err := s.withTPM(func(d *device) error {
		rsp, err := tpm2.GetCapability{
			Capability:    tpm2.TPMCapTPMProperties,
			Property:      uint32(tpm2.TPMPTLockoutCounter),
			PropertyCount: 1,
		}.Execute(d.tpm)
		if err != nil {
			return err
		}
		props, err := rsp.CapabilityData.Data.TPMProperties()
		if err != nil {
			return err
		}
		if len(props.TPMProperty) == 0 || props.TPMProperty[0].Property != tpm2.TPMPTLockoutCounter {
			return fmt.Errorf("no TPM_PT_LOCKOUT_COUNTER in %+v", props)
		}
		n = props.TPMProperty[0].Value
		return nil
	})
	if err != nil {
		s.t.Fatalf("read the lockout counter: %v", err)
	}
	return n
}
