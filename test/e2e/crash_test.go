package e2e

import (
	"context"
	"crypto"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// process is the real binary binding its own sockets on a state dir.
type process struct {
	cmd  *exec.Cmd
	done chan error
}

func startProcess(t *testing.T, bin, cfg, api string) *process {
	t.Helper()
	cmd := exec.Command(bin, "--config", cfg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done })
	c := &client.Client{Socket: api}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := c.Health(context.Background()); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatal("agent did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *process) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
	p.done <- nil // for the cleanup
}

func devClient(t *testing.T, dir, api string) *client.Client {
	t.Helper()
	c, err := devauth.Mint(dir, devauth.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &client.Client{Socket: api, Token: client.StaticToken(c.OpTok), DPoPKey: c.DPoPKey.Key.(crypto.Signer),
		PoE: &proto.PoE{Format: "jwt", Value: c.PoE}, ScannerImageDigest: c.ScannerImageDigest}
}

// TestDailyCapSurvivesSIGKILL: the daily count comes back from the durable
// audit log; killing the agent does not reset a tenant's day.
func TestDailyCapSurvivesSIGKILL(t *testing.T) {
	bin := harness.Binary(t, "cmd/signer-agent")
	dir := harness.ShortTempDir(t)
	cfg, err := agent.SetupDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	harness.EditConfig(t, cfg, func(c *config.Config) { harness.DevPlan(c).ArtifactsPerDay = 3 })
	api := filepath.Join(dir, "api.sock")
	p := startProcess(t, bin, cfg, api)
	c := devClient(t, dir, api)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.SignDSSE(ctx, signReq("stella.ops/sbom@v1")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.SignDSSE(ctx, signReq("stella.ops/sbom@v1")); !errors.Is(err, client.ErrQuotaExhausted) {
		t.Fatalf("4th: %v", err)
	}
	p.kill(t)
	startProcess(t, bin, cfg, api)
	c = devClient(t, dir, api)
	if _, err := c.SignDSSE(ctx, signReq("stella.ops/sbom@v1")); !errors.Is(err, client.ErrQuotaExhausted) {
		t.Fatalf("after SIGKILL and restart: %v", err)
	}
}

// TestCrashKeepsAcknowledgedRecords: under concurrent signing the agent is
// SIGKILLed; after a restart every response a client received has its
// audit record, and the chain verifies.
func TestCrashKeepsAcknowledgedRecords(t *testing.T) {
	bin := harness.Binary(t, "cmd/signer-agent")
	dir := harness.ShortTempDir(t)
	cfg, err := agent.SetupDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	api := filepath.Join(dir, "api.sock")
	p := startProcess(t, bin, cfg, api)
	c := devClient(t, dir, api)
	var mu sync.Mutex
	acked := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := c.SignDSSE(context.Background(), signReq("stella.ops/sbom@v1"))
				if err != nil {
					continue // refused or cut off by the kill: no promise made
				}
				mu.Lock()
				acked[res.AuditID] = true
				mu.Unlock()
			}
		}()
	}
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.kill(t) // mid-load
	close(stop)
	wg.Wait()

	startProcess(t, bin, cfg, api) // recovery happens at Open
	found := map[string]bool{}
	if err := audit.Query(filepath.Join(dir, "audit"), audit.Filter{}, func(r audit.Record) error {
		found[r.AuditID] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for id := range acked {
		if !found[id] {
			t.Fatalf("acknowledged record %s lost (%d acknowledged)", id, len(acked))
		}
	}
	rep, err := audit.Verify(filepath.Join(dir, "audit"))
	if err != nil || !rep.OK {
		t.Fatalf("verify after crash: %+v %v", rep, err)
	}
	t.Logf("%d acknowledged records survived; chain of %d records verifies", len(acked), rep.Records)
}
