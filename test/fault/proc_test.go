package fault

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// agentProc is the real signer-agent binary on a dev state directory,
// binding its own sockets; it can be killed and started again on the
// same directory.
type agentProc struct {
	t        testing.TB
	bin      string
	dir      string
	cfg      string
	api      string
	admin    string
	auditDir string
	nofile   uint64
	env      []string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	runs    int
	logs    []string
}

// procOptions shape newAgent.
type procOptions struct {
	// edit changes the dev config before the first start.
	edit func(c *config.Config)
	// nofile, when set, runs the agent under prlimit --nofile=N:N.
	nofile uint64
	// env is added to the agent's environment.
	env []string
	// noStart leaves the agent stopped.
	noStart bool
}

// newAgent writes a dev state directory and starts the agent on it; the
// test's cleanup kills it. Denial records are not rate-limited (every
// refusal the ledger sees must have its record) unless edit sets the
// rate back.
func newAgent(t testing.TB, o procOptions) *agentProc {
	t.Helper()
	bin := harness.Binary(t, "cmd/signer-agent")
	dir := harness.ShortTempDir(t)
	cfgPath, err := agent.SetupDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	harness.EditConfig(t, cfgPath, func(c *config.Config) {
		c.Limits.DenialAuditRate, c.Limits.DenialAuditBurst = 1e6, 1e6
		if o.edit != nil {
			o.edit(c)
		}
	})
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	p := &agentProc{t: t, bin: bin, dir: dir, cfg: cfgPath, api: cfg.Listen.API.Path, admin: cfg.Listen.Admin.Path,
		auditDir: cfg.Audit.Dir, nofile: o.nofile, env: o.env}
	t.Cleanup(func() {
		p.kill9()
		if t.Failed() {
			t.Logf("agent log (last 40 lines):\n%s", tail(p.log(), 40))
		}
	})
	if !o.noStart {
		p.start()
	}
	return p
}

// start starts the agent and waits until it answers on the api socket.
func (p *agentProc) start() {
	p.t.Helper()
	if err := p.tryStart(); err != nil {
		p.t.Fatalf("%v\nagent log:\n%s", err, tail(p.log(), 40))
	}
}

// tryStart starts the agent and returns nil once it answers, or an error
// when it exits first (a configuration or audit log it refuses).
func (p *agentProc) tryStart() error {
	p.mu.Lock()
	if p.cmd != nil {
		p.mu.Unlock()
		return errors.New("agent already running")
	}
	args := []string{p.bin, "--config", p.cfg}
	if p.nofile > 0 {
		prlimit, err := exec.LookPath("prlimit")
		if err != nil {
			p.mu.Unlock()
			p.t.Fatalf("prlimit not found (%v): install util-linux (make deps)", err)
		}
		args = append([]string{prlimit, fmt.Sprintf("--nofile=%d:%d", p.nofile, p.nofile), "--"}, args...)
	}
	p.runs++
	logPath := filepath.Join(p.dir, fmt.Sprintf("agent-%d.log", p.runs))
	lf, err := os.Create(logPath)
	if err != nil {
		p.mu.Unlock()
		return err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.Env = append(os.Environ(), p.env...)
	if err := cmd.Start(); err != nil {
		lf.Close()
		p.mu.Unlock()
		return err
	}
	done := make(chan struct{})
	p.cmd, p.done, p.logs = cmd, done, append(p.logs, logPath)
	go func() {
		err := cmd.Wait()
		lf.Close()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		close(done)
	}()
	p.mu.Unlock()

	c := &client.Client{Socket: p.api, Timeout: time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := c.Health(context.Background()); err == nil {
			c.CloseIdleConnections()
			return nil
		}
		select {
		case <-done:
			p.mu.Lock()
			p.cmd = nil
			err := p.waitErr
			p.mu.Unlock()
			return fmt.Errorf("agent exited before it answered: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return errors.New("agent did not answer on its api socket within 60s")
		}
	}
}

// pid is the running agent's process id.
func (p *agentProc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		p.t.Fatal("agent not running")
	}
	return p.cmd.Process.Pid
}

// signal sends sig to the running agent.
func (p *agentProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := syscall.Kill(p.pid(), sig); err != nil {
		p.t.Fatal(err)
	}
}

// release takes the running agent's process and its exit channel off p
// (nil when none runs), for the one caller that ends it.
func (p *agentProc) release() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd, done := p.cmd, p.done
	p.cmd = nil
	return cmd, done
}

// kill9 kills the agent with SIGKILL (if it runs) and waits for it.
func (p *agentProc) kill9() {
	cmd, done := p.release()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop ends the agent with SIGTERM (a clean drain) and waits for it.
func (p *agentProc) stop() {
	p.t.Helper()
	cmd, done := p.release()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(90 * time.Second):
		_ = cmd.Process.Signal(syscall.SIGKILL)
		<-done
		p.t.Fatal("agent did not stop within 90s of SIGTERM")
	}
	p.mu.Lock()
	err := p.waitErr
	p.mu.Unlock()
	if err != nil {
		p.t.Fatalf("agent exited with %v after SIGTERM\n%s", err, tail(p.log(), 40))
	}
}

// log is everything the agent wrote on stdout and stderr, all runs.
func (p *agentProc) log() string {
	p.mu.Lock()
	paths := append([]string(nil), p.logs...)
	p.mu.Unlock()
	var b strings.Builder
	for _, path := range paths {
		data, _ := os.ReadFile(path)
		b.Write(data)
	}
	return b.String()
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// status reads a /proc/PID/status field in kB (VmRSS, VmHWM) as bytes.
func (p *agentProc) status(field string) int64 {
	p.t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.pid()) + "/status")
	if err != nil {
		p.t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				p.t.Fatalf("%s: %q", field, l)
			}
			return kb << 10
		}
	}
	p.t.Fatalf("no %s in /proc/PID/status", field)
	return 0
}

// openFDs counts the agent's open file descriptors.
func (p *agentProc) openFDs() int {
	ents, _ := os.ReadDir("/proc/" + strconv.Itoa(p.pid()) + "/fd")
	return len(ents)
}

// creds are one caller's dev credentials: a DPoP key and tokens bound to
// it, minted again before they expire (soak runs outlive one token).
type creds struct {
	issuer  jose.JSONWebKey
	key     *ecdsa.PrivateKey
	poe     string
	scanner string

	mu     sync.Mutex
	tok    string
	minted time.Time
}

// Token implements client.TokenSource.
func (c *creds) Token(context.Context) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tok == "" || time.Since(c.minted) > 2*time.Minute {
		tok, err := devauth.MintToken(c.issuer, c.key.Public(), devauth.Options{})
		if err != nil {
			return "", err
		}
		c.tok, c.minted = tok, time.Now()
	}
	return c.tok, nil
}

// newCreds mints dev credentials from the agent's dev Authority.
func (p *agentProc) newCreds() *creds {
	p.t.Helper()
	dc, err := devauth.Mint(p.dir, devauth.Options{})
	if err != nil {
		p.t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(p.dir, devauth.IssuerKeyFile))
	if err != nil {
		p.t.Fatal(err)
	}
	c := &creds{key: dc.DPoPKey.Key.(*ecdsa.PrivateKey), poe: dc.PoE, scanner: dc.ScannerImageDigest, tok: dc.OpTok, minted: time.Now()}
	if err := c.issuer.UnmarshalJSON(b); err != nil {
		p.t.Fatal(err)
	}
	return c
}

// client is a sign client with fresh credentials that sends each call
// once (no idempotency key, no retry), so every call is one request the
// ledger can account for.
func (p *agentProc) client() *client.Client {
	p.t.Helper()
	c := p.newCreds()
	return &client.Client{
		Socket: p.api, Token: c, DPoPKey: crypto.Signer(c.key),
		PoE: &proto.PoE{Format: "jwt", Value: c.poe}, ScannerImageDigest: c.scanner,
		DisableIdempotencyKeys: true, MaxAttempts: 1, Timeout: 2 * time.Minute,
	}
}

// adminClient talks to the admin socket.
func (p *agentProc) adminClient() *client.Admin {
	return &client.Admin{Socket: p.admin, Timeout: 30 * time.Second}
}

// rawAuth returns the Authorization and DPoP headers of one raw request
// (a fresh proof with the agent's current nonce).
func (p *agentProc) rawAuth(c *creds, method, path string) string {
	p.t.Helper()
	tok, err := c.Token(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	proof := harness.Proof(p.t, c.key, method, path, tok, harness.NonceAt(p.t, p.api), nil)
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s: DPoP %s\r\n%s: %s\r\n", proto.HeaderAuthorization, tok, proto.HeaderDPoP, proof)
	return b.String()
}

// waitFor polls cond until it holds, failing after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
