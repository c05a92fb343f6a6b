package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/fido2"
)

// readPIN reads a PIN file (one trailing newline dropped); "" when none.
func readPIN(path string) (string, error) {
	if path == "" {
		return "", nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("PIN file: %w", err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r"), nil
}

// cmdKeysEnrollFIDO2 is `signerctl keys enroll fido2`: wrap a new P-256 key (or,
// with --add, the key of an existing file) under a FIDO2 authenticator's
// hmac-secret. Needs a binary built with -tags fido2.
func (a *app) cmdKeysEnrollFIDO2(ctx context.Context, args []string) error {
	fs := a.flagSet("keys enroll fido2", "keys enroll fido2 --file PATH [--rp-id ID] [--device PATH] [--pin-file F] [--add --existing-device PATH]", enrollHelp)
	file := fs.String("file", "", "wrapped key file to create (or extend with --add)")
	rpID := fs.String("rp-id", "signer-agent", "relying party id")
	device := fs.String("device", "", "authenticator device (default $"+fido2.DeviceEnv+" or the first found)")
	pinFile := fs.String("pin-file", "", "file holding the authenticator PIN")
	add := fs.Bool("add", false, "add this authenticator to an existing file (unwraps with --existing-device)")
	existing := fs.String("existing-device", "", "an authenticator already in the file (with --add)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *file == "" {
		return usagef("--file is required")
	}
	pin, err := readPIN(*pinFile)
	if err != nil {
		return err
	}
	dev, err := fido2.OpenDevice(*device)
	if err != nil {
		return err
	}
	if *add {
		old, err := fido2.OpenDevice(*existing)
		if err != nil {
			return err
		}
		if err := fido2.AddAuthenticator(*file, old, dev, pin); err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, "authenticator added to", *file)
		return nil
	}
	pub, err := fido2.Enroll(dev, *file, *rpID, fido2.DefaultPolicy, pin)
	if err != nil {
		return err
	}
	p, err := keys.MarshalPublicKeyPEM(pub)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "uri: fido2:%s\n%s", *file, p)
	return nil
}

// cmdKeysUnlock is `signerctl keys unlock --key ID [--pin-file F]` over
// the admin socket.
func (a *app) cmdKeysUnlock(ctx context.Context, args []string) error {
	fs := a.flagSet("keys unlock", "keys unlock --key ID [--pin-file F]", "Unlock a FIDO2-wrapped key in the running agent (one touch on its authenticator).")
	id := fs.String("key", "", "key id")
	pinFile := fs.String("pin-file", "", "file holding the authenticator PIN")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *id == "" {
		return usagef("--key is required")
	}
	pin, err := readPIN(*pinFile)
	if err != nil {
		return err
	}
	pinBytes := []byte(pin)
	defer clear(pinBytes)
	if _, err := a.admin().UnlockKey(ctx, *id, pinBytes); err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "key %s unlocked\n", *id)
	return nil
}

const enrollHelp = `Create a software P-256 key and store it wrapped (AES-256-GCM under
HKDF-SHA-256 of the authenticator's hmac-secret output) in --file, with the
credential id, salt, RP id and UP/UV/PIN policy; print its fido2: URI. The
agent keeps the key locked until 'signerctl keys unlock'. See docs/fido2.md.`
