package e2e

import (
	"context"
	"crypto"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// startWithFault runs the faultinject build of the agent on cfg with
// SIGNER_AGENT_FAULT=fault and waits until it answers; done receives its
// exit once it is gone.
func startWithFault(t *testing.T, bin, cfg, api, fault string) (cmd *exec.Cmd, done chan error) {
	t.Helper()
	cmd = exec.Command(bin, "--config", cfg)
	cmd.Env = append(os.Environ(), "SIGNER_AGENT_FAULT="+fault)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done = make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	c := &client.Client{Socket: api}
	for deadline := time.Now().Add(20 * time.Second); ; {
		if _, err := c.Health(context.Background()); err == nil {
			return cmd, done
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			t.Fatal("agent did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestKilledBetweenCommitAndResponse is the crash test of SPEC §4.6: the
// real agent is SIGKILLed after its audit commit and before it writes the
// response (the faultinject build's hook). The client, retrying the
// transport failure with the same Idempotency-Key, reaches the restarted
// agent and gets the original answer: the signature whose allow record was
// committed before the kill, replayed and counted once.
func TestKilledBetweenCommitAndResponse(t *testing.T) {
	bin := harness.FaultBinary(t)
	plain := harness.Binary(t, "cmd/signer-agent") // built before any clock runs
	for _, route := range []string{proto.PathSignDSSE, proto.PathSignBatch} {
		t.Run(route, func(t *testing.T) {
			dir := harness.ShortTempDir(t)
			cfg, err := agent.SetupDev(dir)
			if err != nil {
				t.Fatal(err)
			}
			// Two artifacts a day more than the request signs.
			n := 1
			if route == proto.PathSignBatch {
				n = 3
			}
			harness.EditConfig(t, cfg, func(c *config.Config) { harness.DevPlan(c).ArtifactsPerDay = int64(n + 2) })
			api := filepath.Join(dir, "api.sock")
			cmd, done := startWithFault(t, bin, cfg, api, "kill-after-commit:"+route)

			c := devClient(t, dir, api)
			c.MaxAttempts = 12 // backoff grows to 5 s: room for a restart
			type result struct {
				sign  *proto.SignResponse
				batch *proto.BatchResponse
				err   error
			}
			got := make(chan result, 1)
			go func() {
				ctx := context.Background()
				if route == proto.PathSignDSSE {
					r, err := c.SignDSSE(ctx, signReq("stella.ops/sbom@v1"))
					got <- result{sign: r, err: err}
					return
				}
				reqs := []proto.SignRequest{*signReq("stella.ops/sbom@v1"), *signReq("stella.ops/sbom@v1"), *signReq("stella.ops/sbom@v1")}
				for i := range reqs {
					reqs[i].Subject[0].Name += "-" + string(rune('a'+i))
				}
				r, err := c.SignBatch(ctx, &proto.BatchRequest{Requests: reqs})
				got <- result{batch: r, err: err}
			}()

			// The agent dies at the hook, before answering.
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Fatalf("agent exited with %v, want SIGKILL from its fault hook", err)
				}
			case r := <-got:
				t.Fatalf("the client got an answer before the kill: %+v", r)
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatal("the agent was not killed at its commit")
			}
			// What the killed agent committed: one allow record per item.
			committed := allowRecords(t, dir)
			if len(committed) != n {
				t.Fatalf("%d allow records committed before the kill, want %d", len(committed), n)
			}

			p := startProcess(t, plain, cfg, api) // no fault
			var r result
			select {
			case r = <-got:
			case <-time.After(90 * time.Second):
				t.Fatal("the client's retries did not end")
			}
			if r.err != nil {
				t.Fatalf("retry: %v", r.err)
			}
			var answers []*proto.SignResponse
			if r.sign != nil {
				if !r.sign.Replayed {
					t.Fatal("the retry was not a replay")
				}
				answers = append(answers, r.sign)
			} else {
				if !r.batch.Replayed {
					t.Fatal("the retry was not a replay")
				}
				for i := range r.batch.Results {
					if err := client.BatchItemError(&r.batch.Results[i]); err != nil {
						t.Fatalf("item %d: %v", i, err)
					}
					answers = append(answers, r.batch.Results[i].SignResponse)
				}
			}
			pub := harness.PublicKeyOf(t, filepath.Join(dir, "keys", "dev.pem"))
			for i, a := range answers {
				// The original: the signature whose record the killed
				// agent committed (ECDSA signatures differ each time, and
				// so does the bundle hash).
				if a.AuditID != committed[i].AuditID || a.BundleHash != committed[i].BundleHash {
					t.Fatalf("answer %d is not the committed signature: audit %s/%s bundle %s/%s",
						i, a.AuditID, committed[i].AuditID, a.BundleHash, committed[i].BundleHash)
				}
				if _, err := attest.VerifyBundle(a.Bundles[0], []crypto.PublicKey{pub}, attest.Expect{PredicateType: "stella.ops/sbom@v1", ArtifactSHA256: digestA}); err != nil {
					t.Fatalf("answer %d: %v", i, err)
				}
			}
			if got := allowRecords(t, dir); len(got) != n {
				t.Fatalf("%d allow records after the retry, want %d: signed again", len(got), n)
			}
			replay := replayRecord(t, dir)
			for _, rec := range committed {
				if !strings.Contains(replay.Reason, rec.AuditID) {
					t.Fatalf("the replay record does not name %s: %s", rec.AuditID, replay.Reason)
				}
			}
			// Counted once: two more today, then the cap.
			c2 := devClient(t, dir, api)
			for i := range 3 {
				res, err := c2.SignDSSE(context.Background(), signReq("stella.ops/sbom@v1"))
				switch {
				case i < 2 && (err != nil || res.Quota.RemainingToday != int64(1-i)):
					t.Fatalf("sign %d after the retry: %v %+v", i, err, res)
				case i == 2 && !errors.Is(err, client.ErrQuotaExhausted):
					t.Fatalf("over the cap: %v", err)
				}
			}
			p.kill(t)
			if rep, err := audit.Verify(filepath.Join(dir, "audit")); err != nil || !rep.OK {
				t.Fatalf("audit chain: %+v %v", rep, err)
			}
		})
	}
}

// allowRecords are the allow records of signatures in dir's audit log.
func allowRecords(t *testing.T, dir string) []audit.Record {
	t.Helper()
	var out []audit.Record
	if err := audit.Query(filepath.Join(dir, "audit"), audit.Filter{Decision: audit.Allow}, func(r audit.Record) error {
		if r.Gate == "sign" {
			out = append(out, r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// replayRecord is the one replay record in dir's audit log.
func replayRecord(t *testing.T, dir string) audit.Record {
	t.Helper()
	var out []audit.Record
	if err := audit.Query(filepath.Join(dir, "audit"), audit.Filter{Decision: audit.Allow}, func(r audit.Record) error {
		if r.Gate == "idempotency" {
			out = append(out, r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("%d replay records, want 1", len(out))
	}
	return out[0]
}
