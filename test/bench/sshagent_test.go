package bench

import (
	"bytes"
	"crypto/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/stellaops/signer-agent/test/harness"
)

// sshAgent is an OpenSSH ssh-agent started by a benchmark, holding one
// ECDSA P-256 key, the baseline of issue #13: a per-host signing daemon
// with no tokens, proofs, policy or audit.
type sshAgent struct {
	sock string
	pub  ssh.PublicKey
}

// startSSHAgent runs `ssh-agent -D -a SOCK` (Debian: openssh-client) in a
// temporary directory, makes a P-256 key with ssh-keygen and adds it with
// ssh-add. A missing tool fails the benchmark, naming the package.
func startSSHAgent(b *testing.B) *sshAgent {
	b.Helper()
	for _, tool := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s not found: install the Debian package openssh-client (make deps does): %v", tool, err)
		}
	}
	dir := harness.ShortTempDir(b)
	sock := filepath.Join(dir, "agent.sock")
	cmd := exec.Command("ssh-agent", "-D", "-a", sock)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		b.Fatalf("start ssh-agent: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	for i := 0; ; i++ {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-done:
			b.Fatalf("ssh-agent exited: %v\n%s", err, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if i > 500 {
			b.Fatalf("ssh-agent did not open %s\n%s", sock, stderr.String())
		}
	}
	key := filepath.Join(dir, "id_ecdsa")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ecdsa", "-b", "256", "-N", "", "-C", "bench", "-f", key).CombinedOutput(); err != nil {
		b.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	add := exec.Command("ssh-add", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		b.Fatalf("ssh-add: %v\n%s", err, out)
	}
	pubLine, err := os.ReadFile(key + ".pub")
	if err != nil {
		b.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		b.Fatal(err)
	}
	if pub.Type() != ssh.KeyAlgoECDSA256 {
		b.Fatalf("key type %s, want %s", pub.Type(), ssh.KeyAlgoECDSA256)
	}
	return &sshAgent{sock: sock, pub: pub}
}

// BenchmarkSSHAgentSign: OpenSSH ssh-agent signing 1 KiB blobs with its
// ECDSA P-256 key, 16 concurrent callers, each on its own connection
// through golang.org/x/crypto/ssh/agent (the agent protocol answers one
// request at a time per connection). Each signature is checked once,
// outside the loop, so the figure is of real signatures.
func BenchmarkSSHAgentSign(b *testing.B) {
	a := startSSHAgent(b)
	blob := make([]byte, 1024)
	if _, err := rand.Read(blob); err != nil {
		b.Fatal(err)
	}
	check, err := net.Dial("unix", a.sock)
	if err != nil {
		b.Fatal(err)
	}
	sig, err := agent.NewClient(check).Sign(a.pub, blob)
	check.Close()
	if err != nil {
		b.Fatalf("ssh-agent sign: %v", err)
	}
	if err := a.pub.Verify(blob, sig); err != nil {
		b.Fatalf("ssh-agent signature does not verify: %v", err)
	}
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.ResetTimer()
	parallel16(b, func(pb *testing.PB) {
		conn, err := net.Dial("unix", a.sock)
		if err != nil {
			b.Error(err)
			return
		}
		defer conn.Close()
		ag := agent.NewClient(conn)
		var d []time.Duration
		for pb.Next() {
			t := time.Now()
			if _, err := ag.Sign(a.pub, blob); err != nil {
				b.Error(err)
				return
			}
			d = append(d, time.Since(t))
		}
		mu.Lock()
		all = append(all, d...)
		mu.Unlock()
	})
	b.StopTimer()
	reportLatency(b, all)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sig/s")
}
