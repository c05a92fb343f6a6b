// Package harness starts signer-agents for tests: in process (New + Run on
// self-bound sockets in a short temporary directory) or as the real binary,
// and finds the pinned tools (cosign) that `make tools` builds.
package harness

import (
	"context"
	"crypto"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/internal/fsutil"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/fido2"
	"github.com/stellaops/signer-agent/internal/testtools"
	"github.com/stellaops/signer-agent/proto"
)

// Agent is an in-process agent serving on Unix sockets in Dir.
type Agent struct {
	*agent.Agent
	Dir       string
	Config    string
	APISock   string
	AdminSock string
	// TCPAddr is the mTLS listener's address when the config enables it.
	TCPAddr string
	Audit   *audit.Memory
	Client  *client.Client
	Admin   *client.Client
	KeyPEM  string // path of the dev key (file: key)
	PubPEM  string
	// Creds are dev credentials (tenant dev) that Client uses.
	Creds Credentials

	cancel context.CancelFunc
	done   chan error
}

// Options adjust StartAgent.
type Options struct {
	// Dir reuses a state directory (for two agents sharing a key); empty
	// makes a new one.
	Dir string
	// Edit changes the dev config before the agent starts (see
	// EditConfig; the dev tenant is devauth.Tenant, its plan devauth.Plan,
	// its file key "dev").
	Edit func(c *config.Config)
	// FileAudit uses the agent's own JSON-lines audit log in the state
	// directory instead of the in-memory one (Audit is then nil).
	FileAudit bool
	// Auditor, when set, is the agent's auditor (Audit is then nil).
	Auditor agent.AuditLog
	// FIDO2 supplies the authenticator that unlocks fido2: keys.
	FIDO2 func() (fido2.Authenticator, error)
	// KeyRetryInterval is the agent's pending-key retry interval (0: its
	// default).
	KeyRetryInterval time.Duration
	// Opener opens the agent's keys (nil: the agent's default).
	Opener *keys.Opener
}

// ShortTempDir makes a temporary directory with a path short enough for
// Unix sockets (t.TempDir paths can exceed the 108-byte limit).
func ShortTempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp("", "sa")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// StartAgent writes a dev state directory and runs an agent on it until the
// test ends.
func StartAgent(t testing.TB, o Options) *Agent {
	t.Helper()
	dir := o.Dir
	if dir == "" {
		dir = ShortTempDir(t)
	}
	cfgPath, err := agent.SetupDev(dir)
	if err != nil {
		t.Fatal(err)
	}
	EditConfig(t, cfgPath, func(c *config.Config) {
		// Tests send bursts of bad requests from one uid and count their
		// audit records: lift the per-peer denial-record rate (a test's
		// Edit may set it back).
		c.Limits.DenialAuditRate, c.Limits.DenialAuditBurst = 1e6, 1e6
		if o.Edit != nil {
			o.Edit(c)
		}
	})
	var aud *audit.Memory
	var auditor agent.AuditLog
	switch {
	case o.Auditor != nil:
		auditor = o.Auditor
	case !o.FileAudit:
		aud = &audit.Memory{}
		auditor = aud
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var readyOnce sync.Once
	notify := func(state string) {
		if strings.HasPrefix(state, "READY=1") {
			readyOnce.Do(func() { close(ready) })
		}
	}
	a, err := agent.New(ctx, agent.Options{ConfigPath: cfgPath, Auditor: auditor, Notify: notify, FIDO2: o.FIDO2, KeyRetryInterval: o.KeyRetryInterval, Opener: o.Opener})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ls, _, err := agent.OpenListeners(a.Config())
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h := &Agent{
		Agent: a, Dir: dir, Config: cfgPath,
		APISock: a.Config().Listen.API.Path, AdminSock: a.Config().Listen.Admin.Path,
		Audit: aud, cancel: cancel, done: make(chan error, 1),
		KeyPEM: filepath.Join(dir, "keys", "dev.pem"), PubPEM: filepath.Join(dir, "keys", "dev.pub"),
	}
	if ls.TCP != nil {
		h.TCPAddr = ls.TCP.Addr().String()
	}
	h.Client = &client.Client{Socket: h.APISock}
	h.Admin = &client.Client{Socket: h.AdminSock}
	go func() { h.done <- a.Run(ctx, ls) }()
	t.Cleanup(h.Stop)
	// Wait for READY=1, as systemd would: watchers are set up by then.
	select {
	case <-ready:
	case err := <-h.done:
		t.Fatalf("agent stopped before ready: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("agent not ready")
	}
	h.Creds = h.Mint(t, devauth.Options{})
	h.Client = h.ClientWith(h.Creds)
	return h
}

// Stop ends the agent and waits for it to drain.
func (h *Agent) Stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case <-h.done:
	case <-time.After(30 * time.Second):
		panic("agent did not stop")
	}
}

// HTTPClient returns a plain HTTP client dialing sock, for raw requests the
// typed client would not send (wrong Host, Origin, malformed bodies).
func HTTPClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// Do sends req on sock with HTTPClient and returns the response with its
// body read and closed; a transport or read failure fails the test.
func Do(t testing.TB, sock string, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	resp, err := HTTPClient(sock).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// Signed returns the allow records of sign requests: what was signed.
func (h *Agent) Signed() []audit.Record {
	var out []audit.Record
	for _, r := range h.Audit.Records() {
		if r.Decision == audit.Allow && r.Gate == "sign" {
			out = append(out, r)
		}
	}
	return out
}

// PublishedKey returns key id as the agent's GET /keys publishes it; a
// key it does not publish fails the test.
func (h *Agent) PublishedKey(t testing.TB, id string) proto.KeyInfo {
	t.Helper()
	ks, err := h.Client.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks.Keys {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("GET /keys does not publish key %q", id)
	return proto.KeyInfo{}
}

// PublicKey loads the dev key's public half.
func (h *Agent) PublicKey(t testing.TB) any { return PublicKeyOf(t, h.KeyPEM) }

// PublicKeyOf loads the public half of the PEM private key at path (an
// agent's file key, such as the dev key).
func PublicKeyOf(t testing.TB, path string) crypto.PublicKey {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, err := keys.ParsePrivateKeyPEM(b, nil)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// RepoRoot is the repository's top directory (testtools.RepoRoot).
func RepoRoot() string { return testtools.RepoRoot() }

// Cosign returns the pinned cosign binary: $SIGNER_AGENT_COSIGN, else
// <repo>/bin/cosign (testtools.Cosign). It fails (never skips) when the
// binary is missing: run `make tools`.
func Cosign(t testing.TB) string {
	t.Helper()
	return testtools.Cosign(t)
}

var (
	buildOnce sync.Map // pkg -> *buildResult
)

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// Binary builds a main package of this module once per test process and
// returns the binary's path.
func Binary(t testing.TB, pkg string) string {
	t.Helper()
	v, _ := buildOnce.LoadOrStore(pkg, &buildResult{})
	br := v.(*buildResult)
	br.once.Do(func() {
		dir, err := os.MkdirTemp("", "sabin")
		if err != nil {
			br.err = err
			return
		}
		br.path = filepath.Join(dir, filepath.Base(pkg))
		cmd := exec.Command("go", "build", "-o", br.path, "./"+strings.TrimPrefix(pkg, "./"))
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			br.err = fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	})
	if br.err != nil {
		t.Fatal(br.err)
	}
	return br.path
}

// WriteAtomic replaces path with content through a rename, as editors and
// configuration tools do (the agent's file watch sees one change). It is
// fsutil.WriteFileAtomic with mode 0600.
func WriteAtomic(t testing.TB, path, content string) {
	t.Helper()
	if err := fsutil.WriteFileAtomic(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
