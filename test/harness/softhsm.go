package harness

import (
	"context"
	"crypto/elliptic"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
)

// SoftHSMModule is Debian's SoftHSM2 PKCS#11 module.
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// SoftHSMPIN is the user PIN of the tokens SoftHSMKey initialises.
const SoftHSMPIN = "1234-test-pin"

// SoftHSMKey initialises a SoftHSM2 token in a temporary directory
// (SOFTHSM2_CONF is set for the test), generates a P-256 key on it and
// returns its pkcs11: URI (PIN from a file). A missing SoftHSM2 fails the
// test (apt-get install softhsm2).
func SoftHSMKey(t testing.TB, label string) string {
	t.Helper()
	if _, err := os.Stat(SoftHSMModule); err != nil {
		t.Fatalf("SoftHSM2 module missing (apt-get install softhsm2): %v", err)
	}
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.MkdirAll(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	os.WriteFile(conf, []byte("directories.tokendir = "+tokens+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600)
	t.Setenv("SOFTHSM2_CONF", conf)
	const pin = SoftHSMPIN
	if out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", "so-"+pin).CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	pinFile := filepath.Join(dir, "pin")
	os.WriteFile(pinFile, []byte(pin+"\n"), 0o600)
	module := "pkcs11:token=" + label + "?module-path=" + SoftHSMModule + "&pin-source=file:" + pinFile
	uri, _, err := pkcs11.GenerateKey(context.Background(), module, label, "signer", elliptic.P256())
	if err != nil {
		t.Fatal(err)
	}
	return uri
}
