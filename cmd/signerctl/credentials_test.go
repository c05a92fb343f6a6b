package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stellaops/signer-agent/agent"
	"github.com/stellaops/signer-agent/proto"
)

func TestDevTokenAndCredentials(t *testing.T) {
	dir := t.TempDir()
	if _, err := agent.SetupDev(dir); err != nil {
		t.Fatal(err)
	}
	r := runCtl(t, "dev", "token", "--state-dir", dir, "--tenant", "t2", "--ttl", "2m")
	r.wantCode(t, exitOK)
	var raw map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || raw["opTok"] == "" || raw["dpopKey"] == nil {
		t.Fatalf("dev token output: %v\n%s", err, r.stdout)
	}
	p := filepath.Join(dir, "c.json")
	runCtl(t, "dev", "token", "--state-dir", dir, "--out", p).wantCode(t, exitOK)
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode: %v %v", fi.Mode(), err)
	}
	a := &app{getenv: func(string) string { return "" }}
	c, err := a.loadCredentials(p)
	if err != nil || c == nil || c.OpTok == "" || c.DPoPKey == nil {
		t.Fatalf("load: %v", err)
	}
	// poe and scannerImageDigest fill the request unless flags set them.
	c.PoE, c.ScannerImageDigest = "poe-value", "sha256:"+hex256
	req := &proto.SignRequest{}
	applyCredentials(c, req)
	if req.PoE == nil || req.PoE.Format != "jwt" || req.PoE.Value != "poe-value" || req.ScannerImageDigest != "sha256:"+hex256 {
		t.Errorf("applied: %+v", req)
	}
	flagged := &proto.SignRequest{ScannerImageDigest: "sha256:" + hex256[:63] + "0"}
	applyCredentials(c, flagged)
	if flagged.ScannerImageDigest != "sha256:"+hex256[:63]+"0" {
		t.Error("credentials overrode --scanner-digest")
	}
	applyCredentials(nil, req) // no credentials: no-op
	// The environment names a default file.
	a.getenv = func(k string) string {
		if k == EnvCredentials {
			return p
		}
		return ""
	}
	if c, err := a.loadCredentials(""); err != nil || c == nil {
		t.Fatalf("env credentials: %v", err)
	}
	// No agent state: a clear error.
	r = runCtl(t, "dev", "token", "--state-dir", filepath.Join(dir, "none"))
	r.wantCode(t, exitFailure)
}
