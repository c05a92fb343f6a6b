package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/test/harness"
)

// result is one in-process signerctl run.
type result struct {
	code           int
	stdout, stderr string
}

// ctlEnv is the environment runCtl passes (tests do not run in parallel).
var ctlEnv = map[string]string{}

// runCtl runs signerctl in-process with only ctlEnv as its environment, so
// the caller's SIGNER_AGENT_SOCKET never leaks into a test.
func runCtl(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) string { return ctlEnv[k] })
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// wantCode fails the test unless the run exited with code.
func (r result) wantCode(t *testing.T, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
}

// startDevAgent runs an in-process dev agent (agent.SetupDev) in a short
// temporary directory (Unix socket paths are limited to 108 bytes) and
// returns the directory; the agent stops when the test ends. edit, when
// set, changes the dev config before the agent loads it
// (harness.EditConfig).
func startDevAgent(t *testing.T, edit func(c *config.Config)) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	cfgPath, err := agent.SetupDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		harness.EditConfig(t, cfgPath, edit)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, err := agent.New(ctx, agent.Options{ConfigPath: cfgPath, Notify: func(string) {}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	api, err := agent.BindUnix(a.Config().Listen.API)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	admin, err := agent.BindUnix(a.Config().Listen.Admin)
	if err != nil {
		cancel()
		_ = api.Close()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, agent.Listeners{API: api, Admin: admin}) }()
	// Dev credentials for this agent, found through SIGNER_AGENT_CREDENTIALS
	// as an operator's shell would.
	creds := filepath.Join(dir, "credentials.json")
	runCtl(t, "dev", "token", "--state-dir", dir, "--out", creds).wantCode(t, exitOK)
	ctlEnv[EnvCredentials] = creds
	t.Cleanup(func() { delete(ctlEnv, EnvCredentials) })
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	return dir
}

// writeFile writes content to dir/name and returns the path.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mustNotContain fails when any secret appears in s.
func mustNotContain(t *testing.T, what, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if sec != "" && strings.Contains(s, sec) {
			t.Errorf("%s contains a secret (%q…)", what, sec[:min(len(sec), 8)])
		}
	}
}
