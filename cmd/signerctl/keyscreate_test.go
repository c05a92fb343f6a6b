package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/test/harness"
)

func TestKeysCreateTPM(t *testing.T) {
	sim := harness.StartSWTPM(t)
	blob := filepath.Join(t.TempDir(), "k.tpmkey")
	r := runCtl(t, "keys", "create", "tpm", "--sim", sim.Addr(), "--blob", blob)
	r.wantCode(t, exitOK)
	if !strings.HasPrefix(r.stdout, "uri: tpm:") || !strings.Contains(r.stdout, "BEGIN PUBLIC KEY") {
		t.Fatalf("stdout %q", r.stdout)
	}
	if _, err := os.Stat(blob); err != nil {
		t.Fatal(err)
	}
	// An existing blob is never overwritten.
	runCtl(t, "keys", "create", "tpm", "--sim", sim.Addr(), "--blob", blob).wantCode(t, exitFailure)
	runCtl(t, "keys", "create", "tpm", "--sim", sim.Addr(), "--handle", "nope").wantCode(t, exitUsage)
}

func TestKeysCreatePKCS11(t *testing.T) {
	harness.SoftHSMKey(t, "ctl") // sets SOFTHSM2_CONF and initialises token "ctl"
	dir := t.TempDir()
	pin := filepath.Join(dir, "pin")
	os.WriteFile(pin, []byte("1234-test-pin\n"), 0o600)
	r := runCtl(t, "keys", "create", "pkcs11", "--module", harness.SoftHSMModule, "--token", "ctl", "--object", "second", "--pin-file", pin, "--curve", "p384")
	r.wantCode(t, exitOK)
	if !strings.HasPrefix(r.stdout, "uri: pkcs11:") || strings.Contains(r.stdout, "1234-test-pin") {
		t.Fatalf("stdout %q", r.stdout)
	}
	r = runCtl(t, "keys", "list-tokens", "--module", harness.SoftHSMModule)
	r.wantCode(t, exitOK)
	if !strings.Contains(r.stdout, "ctl") {
		t.Fatalf("tokens %q", r.stdout)
	}
	os.WriteFile(pin, []byte("wrong\n"), 0o600)
	r = runCtl(t, "keys", "create", "pkcs11", "--module", harness.SoftHSMModule, "--token", "ctl", "--object", "third", "--pin-file", pin)
	r.wantCode(t, exitFailure)
}
