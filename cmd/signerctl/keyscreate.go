package main

import (
	"context"
	"crypto"
	"crypto/elliptic"
	"fmt"
	"path/filepath"
	"strconv"
	"text/tabwriter"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
	"github.com/stellaops/signer-agent/internal/keys/tpm"
)

// cmdKeysCreatePKCS11 is `signerctl keys create pkcs11`: make a key in a
// token and print its URI (for the config's keys[].uri) and public key. It
// talks to the token directly, not to the agent.
func (a *app) cmdKeysCreatePKCS11(ctx context.Context, args []string) error {
	fs := a.flagSet("keys create pkcs11", "keys create pkcs11 --module PATH --token LABEL --object LABEL --pin-file FILE [--curve p256|p384]", createPKCS11Help)
	module := fs.String("module", "", "PKCS#11 module `PATH` (absolute)")
	token := fs.String("token", "", "token label")
	object := fs.String("object", "", "label of the new key")
	pinFile := fs.String("pin-file", "", "file holding the user PIN")
	curve := fs.String("curve", "p256", "p256 or p384")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *module == "" || *token == "" || *object == "" || *pinFile == "" {
		return usagef("--module, --token, --object and --pin-file are required")
	}
	c := elliptic.P256()
	switch *curve {
	case "p256":
	case "p384":
		c = elliptic.P384()
	default:
		return usagef("--curve: p256 or p384")
	}
	pf, err := filepath.Abs(*pinFile)
	if err != nil {
		return err
	}
	base := "pkcs11:token=" + pkcs11Escape(*token) + "?module-path=" + *module + "&pin-source=file:" + pf
	uri, pub, err := pkcs11.GenerateKey(ctx, base, *token, *object, c)
	if err != nil {
		return err
	}
	return a.printCreated(uri, pub)
}

// cmdKeysCreateTPM is `signerctl keys create tpm`: make a key under the
// TPM's storage root key and print its URI and public key.
func (a *app) cmdKeysCreateTPM(ctx context.Context, args []string) error {
	fs := a.flagSet("keys create tpm", "keys create tpm (--blob FILE | --handle 0x81…) [--device PATH | --sim HOST:PORT] [--auth-file FILE]", createTPMHelp)
	blob := fs.String("blob", "", "write the key as a TSS2 PEM key file at `FILE`")
	handle := fs.String("handle", "", "make the key persistent at this handle (0x81000000–0x81ffffff)")
	device := fs.String("device", "", "TPM device (default /dev/tpmrm0)")
	sim := fs.String("sim", "", "swtpm simulator command address")
	authFile := fs.String("auth-file", "", "key auth value file (enables dictionary-attack protection)")
	if err := fs.parse(args); err != nil {
		return err
	}
	o := tpm.CreateOptions{Device: *device, Sim: *sim}
	var err error
	if *blob != "" {
		if o.BlobPath, err = filepath.Abs(*blob); err != nil {
			return err
		}
	}
	if *handle != "" {
		h, err := strconv.ParseUint(*handle, 0, 32)
		if err != nil {
			return usagef("--handle: want a number such as 0x81000010")
		}
		o.PersistentHandle = uint32(h)
	}
	if *authFile != "" {
		if o.AuthFile, err = filepath.Abs(*authFile); err != nil {
			return err
		}
	}
	uri, pub, err := tpm.CreateKey(ctx, o)
	if err != nil {
		return err
	}
	return a.printCreated(uri, pub)
}

func (a *app) printCreated(uri string, pub crypto.PublicKey) error {
	p, err := keys.MarshalPublicKeyPEM(pub)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "uri: %s\n%s", uri, p)
	return nil
}

// pkcs11Escape percent-encodes what RFC 7512 does not allow in a value.
func pkcs11Escape(s string) string {
	const ok = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:[]@!$'()*+,="
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if indexByte(ok, c) >= 0 {
			out = append(out, c)
		} else {
			out = append(out, fmt.Sprintf("%%%02X", c)...)
		}
	}
	return string(out)
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

// cmdKeysListTokens is `signerctl keys list-tokens --module PATH`.
func (a *app) cmdKeysListTokens(ctx context.Context, args []string) error {
	fs := a.flagSet("keys list-tokens", "keys list-tokens --module PATH", "List the tokens a PKCS#11 module offers.")
	module := fs.String("module", "", "PKCS#11 module `PATH` (absolute)")
	if err := fs.parse(args); err != nil {
		return err
	}
	if *module == "" {
		return usagef("--module is required")
	}
	ts, err := pkcs11.ListTokens(*module)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SLOT\tLABEL\tMANUFACTURER\tMODEL\tSERIAL\tINITIALIZED")
	for _, t := range ts {
		fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%v\n", t.SlotID, t.Label, t.Manufacturer, t.Model, t.Serial, t.Initialized)
	}
	return w.Flush()
}

const createPKCS11Help = `Generate an ECDSA key on a PKCS#11 token (login with the PIN from
--pin-file) and print its pkcs11: URI and public key. Put the URI in the
config's keys[].uri.`

const createTPMHelp = `Create an ECC P-256 signing key under the TPM's storage root key, stored as
a TSS2 PEM key file (--blob) or at a persistent handle (--handle), and print
its tpm: URI and public key.`
