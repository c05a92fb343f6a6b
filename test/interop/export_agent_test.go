package interop

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestExportEndToEndOffline: the built signer-agent --dev and signerctl,
// every process in its own empty network namespace (unshare -n, as root),
// sign and verify an export: signerctl sign export through the agent's
// POST /sign/export, signerctl verify export on the tree (with the public
// key, and with the trusted root and keys signerctl trust export writes),
// the pinned cosign on one file and on export.json; the agent's durable
// audit log
// holds the export's record. After a file is modified, one removed and
// one added, verify export exits 1 naming each path, and cosign refuses
// the modified file.
func TestExportEndToEndOffline(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Log("not root: no network namespace; commands run with proxies pointing nowhere")
	}
	agentBin := harness.Binary(t, "cmd/signer-agent")
	ctl := harness.Binary(t, "cmd/signerctl")
	state := harness.ShortTempDir(t)
	work := t.TempDir()

	agentLog, err := os.Create(filepath.Join(work, "agent.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer agentLog.Close()
	agent := offline(agentBin, "--dev", "--state-dir", state)
	agent.Stdout, agent.Stderr = agentLog, agentLog
	agent.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- agent.Wait() }()
	t.Cleanup(func() {
		_ = agent.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = agent.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(agentLog.Name())
			t.Logf("agent log:\n%s", b)
		}
	})
	apiSock, adminSock := filepath.Join(state, "api.sock"), filepath.Join(state, "admin.sock")
	run := func(name string, args ...string) (string, int) {
		t.Helper()
		cmd := offline(name, args...)
		if cmd.Env == nil {
			cmd.Env = os.Environ()
		}
		cmd.Env = append(cmd.Env, "HOME="+work, "TUF_ROOT="+filepath.Join(work, "tuf"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			code := cmd.ProcessState.ExitCode()
			if code <= 0 {
				t.Fatalf("%s: %v\n%s", filepath.Base(name), err, out)
			}
			return string(out), code
		}
		return string(out), 0
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if out, code := run(ctl, "--socket", apiSock, "health"); code == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("agent not healthy: %s", out)
		}
		select {
		case err := <-exited:
			t.Fatalf("agent exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	creds := filepath.Join(work, "creds.json")
	if out, code := run(ctl, "dev", "token", "--state-dir", state, "--out", creds); code != 0 {
		t.Fatalf("dev token: %s", out)
	}

	tree := filepath.Join(work, "exp-e2e")
	files := map[string]string{
		"README.txt":           "an offline export\n",
		"sbom/app.cdx.json":    `{"bomFormat":"CycloneDX","specVersion":"1.6"}`,
		"vex/app.openvex.json": `{"@context":"https://openvex.dev/ns/v0.2.0"}`,
		"feeds/données-é.json": `{"feed":true}`,
		"feeds/deep/x.tar.gz":  strings.Repeat("x", 300000),
		"empty":                "",
	}
	for name, content := range files {
		p := filepath.Join(tree, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(work, "out")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest, envelope, bundle := filepath.Join(out, "export.json"), filepath.Join(out, "provenance.dsse.json"), filepath.Join(out, "provenance.bundle.json")
	pub := filepath.Join(state, "keys", "dev.pub")
	signOut, code := run(ctl, "--socket", apiSock, "sign", "export", "--credentials", creds, "--dir", tree,
		"--profile", "offline-kit", "--created-at", "2026-12-03T10:00:00Z",
		"--out-manifest", manifest, "--out-envelope", envelope, "--out-bundle", bundle)
	if code != 0 {
		t.Fatalf("sign export: exit %d\n%s", code, signOut)
	}
	if !strings.Contains(signOut, "files:          6") {
		t.Errorf("sign export summary:\n%s", signOut)
	}
	mb, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := export.ParseManifest(mb)
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "exp-e2e" || len(m.Files) != len(files) {
		t.Fatalf("manifest %s", mb)
	}
	bb, _ := os.ReadFile(bundle)
	if !bytes.Contains(bb, []byte("application/vnd.dev.sigstore.bundle")) {
		t.Fatalf("bundle %s", bb)
	}

	verifyArgs := []string{"verify", "export", "--dir", tree, "--manifest", manifest, "--bundle", bundle, "--envelope", envelope, "--key", pub}
	if vo, code := run(ctl, verifyArgs...); code != 0 || !strings.Contains(vo, "Verified OK: export exp-e2e (profile offline-kit") ||
		!strings.Contains(vo, "builder="+export.BuilderIDPrefix+devauth.Installation) {
		t.Fatalf("verify export: exit %d\n%s", code, vo)
	}
	// The same with trust material exported from the agent (trusted_root.json
	// and trusted_keys.json: statuses and validity windows).
	trustedRoot := filepath.Join(work, "trust", "trusted_root.json")
	if err := os.Mkdir(filepath.Dir(trustedRoot), 0o755); err != nil {
		t.Fatal(err)
	}
	if to, code := run(ctl, "--socket", apiSock, "trust", "export", "--keys-from-agent", "--out", trustedRoot); code != 0 {
		t.Fatalf("trust export: %s", to)
	}
	if vo, code := run(ctl, "verify", "export", "--dir", tree, "--manifest", manifest, "--bundle", bundle, "--envelope", envelope,
		"--trusted-root", trustedRoot); code != 0 || !strings.Contains(vo, "Verified OK: export exp-e2e") {
		t.Fatalf("verify export --trusted-root: exit %d\n%s", code, vo)
	}
	cosign := func(artifact string) (string, int) {
		return run(harness.Cosign(t), "verify-blob-attestation", "--key", pub, "--bundle", bundle,
			"--insecure-ignore-tlog", "--type", proto.PredicateSLSAProvenanceV1, artifact)
	}
	for _, artifact := range []string{manifest, filepath.Join(tree, "sbom", "app.cdx.json"), filepath.Join(tree, "feeds", "données-é.json")} {
		if co, code := cosign(artifact); code != 0 {
			t.Fatalf("cosign rejected %s: exit %d\n%s", artifact, code, co)
		}
	}

	// The durable audit log holds the export's allow record.
	aq, code := run(ctl, "--admin-socket", adminSock, "audit", "query", "--decision", "allow")
	if code != 0 {
		t.Fatalf("audit query: %s", aq)
	}
	found := false
	for _, line := range strings.Split(strings.TrimSpace(aq), "\n") {
		var r proto.AuditRecord
		if json.Unmarshal([]byte(line), &r) != nil || r.Route != proto.PathSignExport {
			continue
		}
		found = true
		if r.ExportID != "exp-e2e" || r.ManifestDigest != attest.Digest(mb) || r.ExportFiles != len(files) || r.Gate != "sign" {
			t.Fatalf("audit record %s", line)
		}
	}
	if !found {
		t.Fatalf("no allow record for the export:\n%s", aq)
	}

	// Change the tree: a modified, a missing and an extra file.
	if err := os.WriteFile(filepath.Join(tree, "sbom", "app.cdx.json"), []byte(`{"bomFormat":"CycloneDX","specVersion":"1.7"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(tree, "README.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tree, "vex", "injected.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	vo, code := run(ctl, verifyArgs...)
	if code != 1 {
		t.Fatalf("verify export after changes: exit %d\n%s", code, vo)
	}
	for _, want := range []string{"modified: sbom/app.cdx.json (sha256 differs)", "missing:  README.txt", "extra:    vex/injected.json",
		"1 modified, 1 missing, 1 extra"} {
		if !strings.Contains(vo, want) {
			t.Errorf("verify export output lacks %q:\n%s", want, vo)
		}
	}
	if co, code := cosign(filepath.Join(tree, "sbom", "app.cdx.json")); code == 0 {
		t.Fatalf("cosign accepted the modified file:\n%s", co)
	}
}
