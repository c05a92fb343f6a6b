package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestEndToEnd signs through a real in-process agent with signerctl sign,
// then verifies the written bundle and envelope offline with the dev key.
func TestEndToEnd(t *testing.T) {
	dir := startDevAgent(t, nil)
	sock := filepath.Join(dir, "api.sock")
	devPub := filepath.Join(dir, "keys", "dev.pub")
	work := t.TempDir()
	art := writeFile(t, work, "app.tar", "artifact bytes\n")
	pred := writeFile(t, work, "pred.json", `{"format":"cyclonedx-1.6","componentCount":412}`)
	bundle := filepath.Join(work, "att.json")
	env := filepath.Join(work, "env.json")

	r := runCtl(t, "--socket", "unix://"+sock, "sign",
		"--predicate", pred, "--type", "stella.ops/sbom@v1",
		"--artifact", art, "--artifact-name", "registry.example/app@sha256:"+hex256,
		"--subject", "name=extra,sha256="+hex256,
		"--out-bundle", bundle, "--out-envelope", env, "--json")
	r.wantCode(t, exitOK)
	var resp proto.SignResponse
	if err := json.Unmarshal([]byte(r.stdout), &resp); err != nil {
		t.Fatalf("sign --json output: %v\n%s", err, r.stdout)
	}
	if len(resp.Bundles) != 1 || len(resp.SigningIdentity) != 1 || resp.SigningIdentity[0].KeyID != "dev" {
		t.Fatalf("unexpected response: %d bundles, identities %+v", len(resp.Bundles), resp.SigningIdentity)
	}
	b, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	if got := attest.Digest(b); got != resp.SigningIdentity[0].BundleHash {
		t.Errorf("bundle file hash %s, want the signature's bundleHash %s", got, resp.SigningIdentity[0].BundleHash)
	}

	for _, args := range [][]string{
		{"verify", "--bundle", bundle, "--key", devPub, "--artifact", art, "--type", "stella.ops/sbom@v1"},
		{"verify", "--bundle", bundle, "--trust-dir", filepath.Join(dir, "keys"), "--digest", "sha256:" + hex256},
		{"verify", "--envelope", env, "--key", devPub, "--artifact", art},
	} {
		r := runCtl(t, args...)
		r.wantCode(t, exitOK)
		want := "Verified OK: predicateType=stella.ops/sbom@v1 subjects=2 payloadDigest=" + resp.PayloadDigest + "\n"
		if r.stdout != want {
			t.Errorf("%v: stdout %q, want %q", args, r.stdout, want)
		}
	}
	// The statement names the artifact under --artifact-name.
	r = runCtl(t, "verify", "--bundle", bundle, "--key", devPub, "--artifact", pred)
	r.wantCode(t, exitFailure)

	// Summary output (no --json), socket given after the command.
	r = runCtl(t, "sign", "--socket", sock, "--predicate", pred, "--type", "stella.ops/sbom@v1", "--artifact", art, "--out-bundle", bundle)
	r.wantCode(t, exitOK)
	for _, want := range []string{"payloadDigest: sha256:", "bundleHash:    sha256:", "signature:     key dev (keyful, file, ecdsa-p256-sha256)", "bundle:        " + bundle + " (key dev)"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
}

// TestSignMultiKey checks the one-file-per-signature bundle naming against
// an agent with two keys for the dev tenant.
func TestSignMultiKey(t *testing.T) {
	dir := startDevAgent(t, harness.WithKey("second", "memory:second"))
	sock := filepath.Join(dir, "api.sock")
	work := t.TempDir()
	art := writeFile(t, work, "a.bin", "x")
	pred := writeFile(t, work, "pred.json", `{"k":"v"}`)

	r := runCtl(t, "--socket", sock, "keys", "list", "--json")
	r.wantCode(t, exitOK)
	var kr proto.KeysResponse
	if err := json.Unmarshal([]byte(r.stdout), &kr); err != nil {
		t.Fatal(err)
	}
	keyDir := filepath.Join(work, "trust")
	if err := os.Mkdir(keyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, k := range kr.Keys {
		writeFile(t, keyDir, k.ID+".pub", k.PublicKey)
	}

	r = runCtl(t, "--socket", sock, "sign", "--predicate", pred, "--type", "stella.ops/vex@v1", "--artifact", art,
		"--key", "dev", "--key", "second", "--out-bundle", filepath.Join(work, "att.json"), "--out-envelope", filepath.Join(work, "env.json"))
	r.wantCode(t, exitOK)
	for _, id := range []string{"dev", "second"} {
		p := filepath.Join(work, "att-"+id+".json")
		v := runCtl(t, "verify", "--bundle", p, "--key", filepath.Join(keyDir, id+".pub"), "--artifact", art, "--type", "stella.ops/vex@v1")
		v.wantCode(t, exitOK)
	}
	if _, err := os.Stat(filepath.Join(work, "att.json")); err == nil {
		t.Error("att.json written although there were two bundles")
	}
	// The envelope carries both signatures: it verifies with both keys and
	// not with one.
	runCtl(t, "verify", "--envelope", filepath.Join(work, "env.json"), "--trust-dir", keyDir, "--any-artifact").wantCode(t, exitOK)
	runCtl(t, "verify", "--envelope", filepath.Join(work, "env.json"), "--key", filepath.Join(keyDir, "dev.pub"), "--any-artifact").wantCode(t, exitFailure)
}

func TestAgentCommands(t *testing.T) {
	dir := startDevAgent(t, nil)
	sock := filepath.Join(dir, "api.sock")
	work := t.TempDir()
	art := writeFile(t, work, "a.bin", "x")
	pred := writeFile(t, work, "pred.json", `{"k":"v"}`)

	t.Run("keys list", func(t *testing.T) {
		r := runCtl(t, "--socket", sock, "keys", "list")
		r.wantCode(t, exitOK)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 2 || !regexp.MustCompile(`^ID\s+ALGORITHM\s+SOURCE\s+STATUS\s+TENANTS\s+DEFAULT\s+HINT$`).MatchString(lines[0]) ||
			!regexp.MustCompile(`^dev\s+ecdsa-p256-sha256\s+file\s+active\s+dev\s+\*\s+\S+=$`).MatchString(lines[1]) {
			t.Errorf("table:\n%s", r.stdout)
		}
	})
	t.Run("health", func(t *testing.T) {
		r := runCtl(t, "--socket", sock, "health")
		r.wantCode(t, exitOK)
		if !strings.HasPrefix(r.stdout, "ok (agent ") {
			t.Errorf("health: %q", r.stdout)
		}
		r = runCtl(t, "--socket", sock, "health", "--ready", "--json")
		r.wantCode(t, exitOK)
		var h proto.Health
		if err := json.Unmarshal([]byte(r.stdout), &h); err != nil || h.Status != "ok" || h.Checks["keys"] != "ok" {
			t.Errorf("ready: %v %+v", err, h)
		}
		r = runCtl(t, "--admin-socket", filepath.Join(dir, "admin.sock"), "health", "--admin", "--ready")
		r.wantCode(t, exitOK)
	})
	t.Run("agent error is one line with code and request id", func(t *testing.T) {
		r := runCtl(t, "--socket", sock, "sign", "--predicate", pred, "--type", "stella.ops/sbom@v1", "--artifact", art, "--key", "nope")
		r.wantCode(t, exitFailure)
		if !regexp.MustCompile(`^signerctl: not_found: unknown key id \(request [0-9a-f]+\)\n$`).MatchString(r.stderr) {
			t.Errorf("stderr %q", r.stderr)
		}
		r = runCtl(t, "--socket", sock, "sign", "--predicate", pred, "--type", "example.com/unlisted@v1", "--artifact", art)
		r.wantCode(t, exitFailure)
		if !strings.HasPrefix(r.stderr, "signerctl: predicate_not_allowed: ") {
			t.Errorf("stderr %q", r.stderr)
		}
	})
	t.Run("agent unreachable", func(t *testing.T) {
		r := runCtl(t, "--socket", filepath.Join(work, "none.sock"), "health")
		r.wantCode(t, exitFailure)
		if strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "none.sock") {
			t.Errorf("stderr %q", r.stderr)
		}
	})
	t.Run("credentials", func(t *testing.T) {
		creds := ctlEnv[EnvCredentials]
		b, _ := os.ReadFile(creds)
		var raw struct {
			OpTok   string `json:"opTok"`
			DPoPKey struct {
				D string `json:"d"`
			} `json:"dpopKey"`
		}
		if err := json.Unmarshal(b, &raw); err != nil || raw.OpTok == "" || raw.DPoPKey.D == "" {
			t.Fatalf("dev credentials: %v", err)
		}
		for _, extra := range [][]string{{"--json"}, nil} {
			args := append([]string{"--socket", sock, "sign", "--predicate", pred, "--type", "stella.ops/sbom@v1", "--artifact", art, "--credentials", creds}, extra...)
			r := runCtl(t, args...)
			r.wantCode(t, exitOK)
			mustNotContain(t, "stdout", r.stdout, raw.OpTok, raw.DPoPKey.D)
			mustNotContain(t, "stderr", r.stderr, raw.OpTok, raw.DPoPKey.D)
		}
		// A token with a broken signature: the agent refuses it, and the
		// error line does not echo it.
		broken := strings.Replace(string(b), raw.OpTok, raw.OpTok[:len(raw.OpTok)-6]+"AAAAAA", 1)
		bad := writeFile(t, work, "bad-creds.json", broken)
		r := runCtl(t, "--socket", sock, "sign", "--predicate", pred, "--type", "stella.ops/sbom@v1", "--artifact", art, "--credentials", bad)
		r.wantCode(t, exitFailure)
		if !strings.HasPrefix(r.stderr, "signerctl: invalid_token: ") {
			t.Errorf("stderr %q", r.stderr)
		}
		mustNotContain(t, "stderr", r.stderr, raw.OpTok[:40])
		malformed := writeFile(t, work, "malformed-creds.json", `{"opTok": `+raw.OpTok+`}`)
		r = runCtl(t, "--socket", sock, "sign", "--predicate", pred, "--type", "stella.ops/sbom@v1", "--artifact", art, "--credentials", malformed)
		r.wantCode(t, exitFailure)
		mustNotContain(t, "stderr", r.stderr, raw.OpTok[:40])
	})
}

// TestBenchAgainstAgent runs short benches in every mode; it checks counts,
// never timings.
func TestBenchAgainstAgent(t *testing.T) {
	dir := startDevAgent(t, nil)
	sock := filepath.Join(dir, "api.sock")
	tests := map[string]struct {
		args      []string
		mode      benchMode
		predBytes bool
	}{
		"sign":      {args: []string{"--requests", "50", "--concurrency", "4", "--predicate-bytes", "2048", "--pid", strconv.Itoa(os.Getpid())}, mode: benchSign, predBytes: true},
		"noop":      {args: []string{"--requests", "50", "--noop"}, mode: benchNoop},
		"inprocess": {args: []string{"--requests", "50", "--inprocess", "--key-file", filepath.Join(dir, "keys", "dev.pem")}, mode: benchInProcess, predBytes: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, append([]string{"--socket", sock, "bench", "--json"}, tc.args...)...)
			r.wantCode(t, exitOK)
			var res benchResult
			if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
				t.Fatalf("bench --json: %v\n%s", err, r.stdout)
			}
			if res.Mode != tc.mode || res.Requests != 50 || res.Succeeded != 50 || res.Failed != 0 || len(res.Errors) != 0 {
				t.Errorf("result %+v, want 50 successes in mode %s", res, tc.mode)
			}
			if tc.predBytes && res.StatementBytes != 2048 && res.StatementBytes != 1024 {
				t.Errorf("statement bytes %d", res.StatementBytes)
			}
			if res.Self == nil || res.Self.HWMKiB <= 0 {
				t.Errorf("own memory not measured: %+v", res.Self)
			}
			if tc.mode == benchSign && (res.Agent == nil || res.Agent.PID != os.Getpid()) {
				t.Errorf("agent memory not measured with --pid: %+v", res.Agent)
			}
		})
	}
	t.Run("text output and failures", func(t *testing.T) {
		r := runCtl(t, "--socket", sock, "bench", "--requests", "5", "--key", "nope")
		r.wantCode(t, exitFailure)
		if !strings.Contains(r.stdout, "errors:      not_found=5") {
			t.Errorf("stdout:\n%s", r.stdout)
		}
		r = runCtl(t, "--socket", sock, "bench", "--requests", "5")
		r.wantCode(t, exitOK)
		if !strings.Contains(r.stdout, "requests:    5 (5 ok, 0 failed)") || !strings.Contains(r.stdout, "latency:") {
			t.Errorf("stdout:\n%s", r.stdout)
		}
	})
}

func TestEntitlementBypassCommand(t *testing.T) {
	dir := startDevAgent(t, nil)
	admin := filepath.Join(dir, "admin.sock")
	r := runCtl(t, "--admin-socket", admin, "entitlement", "bypass", "--for", "10m")
	r.wantCode(t, exitUsage)
	r = runCtl(t, "--admin-socket", admin, "entitlement", "bypass", "--reason", "licensing outage", "--for", "10m")
	r.wantCode(t, exitOK)
	if !strings.Contains(r.stdout, "on until") {
		t.Fatalf("stdout %q", r.stdout)
	}
	r = runCtl(t, "--admin-socket", admin, "entitlement", "bypass", "--reason", "x", "--for", "72h")
	r.wantCode(t, exitFailure)
	if !strings.HasPrefix(r.stderr, "signerctl: invalid_request: ") {
		t.Fatalf("stderr %q", r.stderr)
	}
	runCtl(t, "--admin-socket", admin, "entitlement", "bypass", "--off").wantCode(t, exitOK)
}

func TestAuditCommands(t *testing.T) {
	dir := startDevAgent(t, nil)
	sock := filepath.Join(dir, "api.sock")
	work := t.TempDir()
	art := writeFile(t, work, "a", "x")
	pred := writeFile(t, work, "p.json", `{"a":1}`)
	runCtl(t, "--socket", sock, "sign", "--predicate", pred, "--type", "stella.ops/sbom@v1", "--artifact", art).wantCode(t, exitOK)
	runCtl(t, "--socket", sock, "sign", "--predicate", pred, "--type", "example.com/no@v1", "--artifact", art).wantCode(t, exitFailure)
	adir := filepath.Join(dir, "audit")
	r := runCtl(t, "audit", "verify", "--dir", adir)
	r.wantCode(t, exitOK)
	if !strings.HasPrefix(r.stdout, "audit chain OK") {
		t.Fatalf("verify: %q", r.stdout)
	}
	r = runCtl(t, "--admin-socket", filepath.Join(dir, "admin.sock"), "audit", "query", "--decision", "deny", "--code", "predicate_not_allowed")
	r.wantCode(t, exitOK)
	if strings.Count(r.stdout, "\n") != 1 || !strings.Contains(r.stdout, `"code":"predicate_not_allowed"`) {
		t.Fatalf("query: %q", r.stdout)
	}
	r = runCtl(t, "audit", "tail", "-n", "1", "--dir", adir)
	r.wantCode(t, exitOK)
	if strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("tail: %q", r.stdout)
	}
	// An edited record breaks the chain: verify names it.
	segs, _ := filepath.Glob(filepath.Join(adir, "segment-*.jsonl"))
	b, _ := os.ReadFile(segs[0])
	os.WriteFile(segs[0], []byte(strings.Replace(string(b), `"tenant":"dev"`, `"tenant":"eve"`, 1)), 0o600)
	r = runCtl(t, "audit", "verify", "--dir", adir)
	r.wantCode(t, exitFailure)
	if !strings.Contains(r.stderr, "audit chain broken") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

func TestKeysRotateRevokeCommands(t *testing.T) {
	dir := startDevAgent(t, nil)
	admin := filepath.Join(dir, "admin.sock")
	r := runCtl(t, "--admin-socket", admin, "keys", "rotate", "--key", "dev", "--new-id", "dev-2")
	r.wantCode(t, exitOK)
	if !strings.Contains(r.stdout, `"oldStatus":"verify-only"`) {
		t.Fatalf("rotate: %q", r.stdout)
	}
	r = runCtl(t, "--admin-socket", admin, "keys", "revoke", "--key", "dev-2", "--reason", "test revocation")
	r.wantCode(t, exitOK)
	r = runCtl(t, "--socket", filepath.Join(dir, "api.sock"), "keys", "list", "--json")
	r.wantCode(t, exitOK)
	if !strings.Contains(r.stdout, `"revoked"`) || !strings.Contains(r.stdout, `"verify-only"`) {
		t.Fatalf("keys: %s", r.stdout)
	}
	runCtl(t, "--admin-socket", admin, "keys", "revoke", "--key", "dev").wantCode(t, exitUsage)
}

func TestAuditExportCommand(t *testing.T) {
	dir := startDevAgent(t, nil)
	work := t.TempDir()
	art := writeFile(t, work, "a", "x")
	pred := writeFile(t, work, "p.json", `{"a":1}`)
	runCtl(t, "--socket", filepath.Join(dir, "api.sock"), "sign", "--predicate", pred, "--type", "stella.ops/sbom@v1", "--artifact", art).wantCode(t, exitOK)
	out := filepath.Join(work, "shipped")
	r := runCtl(t, "--admin-socket", filepath.Join(dir, "admin.sock"), "audit", "export", "--to", out, "--rotate")
	r.wantCode(t, exitOK)
	if !strings.Contains(r.stdout, `"segments"`) || !strings.Contains(r.stdout, `"sha256"`) {
		t.Fatalf("manifest: %s", r.stdout)
	}
	segs, _ := filepath.Glob(filepath.Join(out, "segment-*.jsonl"))
	if len(segs) == 0 {
		t.Fatal("nothing exported")
	}
	// The exported copy verifies on its own.
	runCtl(t, "audit", "verify", "--dir", out).wantCode(t, exitOK)
}
