// Package e2e runs the real signer-agent binary under systemd socket
// activation (systemd-socket-activate with two named sockets) and a
// test-owned NOTIFY_SOCKET, and drives it through the client.
package e2e

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

const digestA = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"

// notifySocket collects sd_notify datagrams.
type notifySocket struct {
	path string
	conn *net.UnixConn
	ch   chan string
}

func newNotifySocket(t *testing.T, dir string) *notifySocket {
	t.Helper()
	p := filepath.Join(dir, "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: p, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	n := &notifySocket{path: p, conn: c, ch: make(chan string, 64)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := c.Read(buf)
			if err != nil {
				close(n.ch)
				return
			}
			n.ch <- string(buf[:k])
		}
	}()
	t.Cleanup(func() { c.Close() })
	return n
}

// waitFor returns once a datagram containing line arrives, and every
// datagram seen until then.
func (n *notifySocket) waitFor(t *testing.T, line string) []string {
	t.Helper()
	var seen []string
	timeout := time.After(20 * time.Second)
	for {
		select {
		case m, ok := <-n.ch:
			if !ok {
				t.Fatalf("notify socket closed before %q (seen %q)", line, seen)
			}
			seen = append(seen, m)
			for _, l := range strings.Split(m, "\n") {
				if l == line {
					return seen
				}
			}
		case <-timeout:
			t.Fatalf("no %q from the agent (seen %q)", line, seen)
		}
	}
}

type activated struct {
	dir    string
	cmd    *exec.Cmd
	notify *notifySocket
	client *client.Client
	creds  *devauth.Credentials
	exited chan error
}

func startActivated(t *testing.T) *activated {
	t.Helper()
	if _, err := exec.LookPath("systemd-socket-activate"); err != nil {
		t.Fatalf("systemd-socket-activate not found (apt-get install systemd): %v", err)
	}
	bin := harness.Binary(t, "cmd/signer-agent")
	dir := harness.ShortTempDir(t)
	cfg, err := agent.SetupDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := newNotifySocket(t, dir)
	api, admin := filepath.Join(dir, "api.sock"), filepath.Join(dir, "admin.sock")
	cmd := exec.Command("systemd-socket-activate",
		"-l", api, "-l", admin, "--fdname=api:admin",
		"-E", "NOTIFY_SOCKET="+n.path,
		"-E", "WATCHDOG_USEC=400000", // 0.4 s: pings every 0.2 s
		bin, "--config", cfg)
	logf, _ := os.Create(filepath.Join(dir, "agent.log"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	creds, err := devauth.Mint(dir, devauth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// A real DPoP-bound OpTok from the dev Authority, as a scanner has.
	cl := &client.Client{Socket: api, Token: client.StaticToken(creds.OpTok), DPoPKey: creds.DPoPKey.Key.(crypto.Signer),
		PoE: &proto.PoE{Format: "jwt", Value: creds.PoE}, ScannerImageDigest: creds.ScannerImageDigest}
	a := &activated{dir: dir, cmd: cmd, notify: n, client: cl, creds: creds, exited: make(chan error, 1)}
	go func() { a.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "agent.log"))
			t.Logf("agent log:\n%s", b)
		}
	})
	// systemd-socket-activate execs the agent on the first connection.
	for i := 0; ; i++ {
		if _, err := os.Stat(api); err == nil {
			break
		}
		if i > 200 {
			t.Fatal("activation socket never appeared")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return a
}

func signReq(predicateType string) *proto.SignRequest {
	return &proto.SignRequest{
		Subject:       []proto.Subject{{Name: "app", Digest: map[string]string{"sha256": digestA}}},
		PredicateType: predicateType,
		Predicate:     json.RawMessage(`{"componentCount":1}`),
	}
}

func TestSocketActivation(t *testing.T) {
	a := startActivated(t)
	ctx := context.Background()

	// Connect first: that starts the agent; the request waits in the backlog.
	if _, err := a.client.Health(ctx); err != nil {
		t.Fatal(err)
	}
	ready := a.notify.waitFor(t, "READY=1")
	if !strings.Contains(strings.Join(ready, "\n"), "STATUS=") {
		t.Errorf("READY without STATUS: %q", ready)
	}
	a.notify.waitFor(t, "WATCHDOG=1")
	if _, err := a.client.SignDSSE(ctx, signReq("stella.ops/sbom@v1")); err != nil {
		t.Fatal(err)
	}
	// The admin socket came from activation too.
	admin := &client.Client{Socket: filepath.Join(a.dir, "admin.sock")}
	if _, err := admin.Health(ctx); err != nil {
		t.Fatal(err)
	}

	// SIGHUP with a changed config: RELOADING=1 then READY=1, change in force.
	newType := "https://example.com/reloaded@v1"
	if _, err := a.client.SignDSSE(ctx, signReq(newType)); !errors.Is(err, client.ErrPredicateNotAllowed) {
		t.Fatalf("before reload: %v", err)
	}
	cfgPath := filepath.Join(a.dir, "config.yaml")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	tn := harness.DevTenant(c)
	tn.PredicateTypes = append(tn.PredicateTypes, newType)
	edited, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Written in place (not renamed, unlike harness.EditConfig) and
	// signalled at once: SIGHUP is what this test exercises; the file
	// watcher may also fire, harmlessly.
	if err := os.WriteFile(cfgPath, edited, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	seen := a.notify.waitFor(t, "RELOADING=1")
	if !strings.Contains(strings.Join(seen, "\n"), "MONOTONIC_USEC=") {
		t.Errorf("RELOADING=1 without MONOTONIC_USEC: %q", seen)
	}
	a.notify.waitFor(t, "READY=1")
	if _, err := a.client.SignDSSE(ctx, signReq(newType)); err != nil {
		t.Fatalf("after reload: %v", err)
	}

	// SIGTERM while requests are in flight: they complete, exit status 0.
	const inflight = 4
	var wg sync.WaitGroup
	errs := make(chan error, inflight)
	started := make(chan struct{}, inflight)
	nonce := harness.NonceAt(t, filepath.Join(a.dir, "api.sock"))
	for i := 0; i < inflight; i++ {
		proof := harness.Proof(t, a.creds.DPoPKey.Key.(crypto.Signer), http.MethodPost, proto.PathSignDSSE, a.creds.OpTok, nonce, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- slowSign(ctx, a, proof, started)
		}()
	}
	for i := 0; i < inflight; i++ {
		<-started
	}
	time.Sleep(100 * time.Millisecond) // let the agent read the headers
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("in-flight request failed during drain: %v", err)
		}
	}
	a.notify.waitFor(t, "STOPPING=1")
	select {
	case err := <-a.exited:
		if err != nil {
			t.Fatalf("agent exit: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not exit after SIGTERM")
	}
}

// slowSign sends a sign request whose body arrives in two parts, 700 ms
// apart, so the request is in flight when SIGTERM lands. The first part
// (512 KiB) is larger than the Unix socket's send buffer, so its write only
// returns once the agent has accepted the connection and is reading the
// body: the request is active, not a connection waiting in the backlog.
func slowSign(ctx context.Context, a *activated, proof string, started chan<- struct{}) error {
	req0 := signReq("stella.ops/sbom@v1")
	req0.Predicate = json.RawMessage(`{"filler":"` + strings.Repeat("f", 1<<20) + `"}`)
	req0.PoE = &proto.PoE{Format: "jwt", Value: a.creds.PoE}
	req0.ScannerImageDigest = a.creds.ScannerImageDigest
	body, _ := json.Marshal(req0)
	pr, pw := io.Pipe()
	go func() {
		half := len(body) / 2
		pw.Write(body[:half])
		started <- struct{}{}
		time.Sleep(700 * time.Millisecond)
		pw.Write(body[half:])
		pw.Close()
	}()
	c := harness.HTTPClient(filepath.Join(a.dir, "api.sock"))
	req, _ := newRequest(ctx, pr)
	req.Header.Set(proto.HeaderAuthorization, "DPoP "+a.creds.OpTok)
	req.Header.Set(proto.HeaderDPoP, proof)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return errors.New(resp.Status + ": " + string(b))
	}
	var sr proto.SignResponse
	if err := json.Unmarshal(b, &sr); err != nil || len(sr.Bundles) != 1 {
		return errors.New("bad sign response")
	}
	return nil
}
