package fido2

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keystest"
)

// TestRealDevice enrols, unlocks and signs with a real authenticator. It
// runs only when SIGNER_AGENT_FIDO2_DEVICE names the device (and needs a
// binary built with -tags fido2); SIGNER_AGENT_FIDO2_PIN gives its PIN, if
// it has one. Expect to touch the device three times.
func TestRealDevice(t *testing.T) {
	path := os.Getenv(DeviceEnv)
	if path == "" {
		t.Skip("SKIPPING the real FIDO2 device test: " + DeviceEnv + " is not set. " +
			"Set it to the authenticator's hidraw path (and SIGNER_AGENT_FIDO2_PIN if it has a PIN), " +
			"then run: go test -tags fido2 -run TestRealDevice ./internal/keys/fido2/")
	}
	if !Available() {
		t.Fatal(DeviceEnv + " is set but this test binary was built without the fido2 tag: run go test -tags fido2 (cgo and libfido2-dev needed)")
	}
	dev, err := OpenDevice(path)
	if err != nil {
		t.Fatalf("OpenDevice(%s): %v", path, err)
	}
	pin := os.Getenv("SIGNER_AGENT_FIDO2_PIN")
	policy := Policy{UP: true, UV: pin != "", PINRequired: pin != ""}
	file := filepath.Join(t.TempDir(), "key.fido2.json")
	t.Log("touch the authenticator twice to enrol")
	pub, err := Enroll(dev, file, "signer-agent.test", policy, pin)
	if err != nil {
		t.Fatalf("Enroll: %v", err)
	}
	k, err := OpenFile(file, Options{MaxSignatures: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	t.Log("touch the authenticator once to unlock")
	if err := k.Unlock(dev, pin); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	msg := []byte("real device")
	sig, err := keys.SignMessage(context.Background(), k, msg)
	if err != nil {
		t.Fatal(err)
	}
	if err := keystest.Verify(pub, msg, sig); err != nil {
		t.Fatal(err)
	}
}
