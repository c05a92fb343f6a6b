package bench

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/test/harness"
)

// BenchmarkColdStart measures socket activation to first response: each
// iteration starts systemd-socket-activate on fresh sockets, sends GET
// /healthz (which makes it exec the agent), and times until the answer.
// Target ≤ 150 ms per op.
func BenchmarkColdStart(b *testing.B) {
	if _, err := exec.LookPath("systemd-socket-activate"); err != nil {
		b.Fatalf("systemd-socket-activate not found: %v", err)
	}
	bin := harness.Binary(b, "cmd/signer-agent")
	dir := harness.ShortTempDir(b)
	cfg, err := agent.SetupDev(dir)
	if err != nil {
		b.Fatal(err)
	}
	api, admin := filepath.Join(dir, "api.sock"), filepath.Join(dir, "admin.sock")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		os.Remove(api)
		os.Remove(admin)
		cmd := exec.Command("systemd-socket-activate", "-l", api, "-l", admin, "--fdname=api:admin", bin, "--config", cfg)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := os.Stat(admin); err == nil {
				break
			}
			time.Sleep(time.Millisecond)
		}
		c := &client.Client{Socket: api}
		b.StartTimer()
		if _, err := c.Health(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		c.CloseIdleConnections()
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		b.StartTimer()
	}
}
