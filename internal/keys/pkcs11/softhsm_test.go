//go:build cgo

package pkcs11_test

import (
	"context"
	"crypto/elliptic"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
)

// SoftHSM2, the PKCS#11 module the tests run against (TESTING.md).
const (
	softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"
	userPIN       = "8231-user-pin"
	soPIN         = "4417-so-pin"
)

// softHSM is a SoftHSM2 whose configuration and token directory live in
// a test's temporary directory; SOFTHSM2_CONF points at it for the test.
type softHSM struct {
	dir    string
	tokens string // directories.tokendir
}

// newSoftHSM sets SoftHSM2 up for tb. A machine without SoftHSM2 fails the
// test (TESTING.md: fail, never skip).
func newSoftHSM(tb testing.TB) *softHSM {
	tb.Helper()
	if _, err := os.Stat(softhsmModule); err != nil {
		tb.Fatalf("SoftHSM2 module missing (%v): run `apt-get install softhsm2` (or `make deps`)", err)
	}
	if _, err := exec.LookPath("softhsm2-util"); err != nil {
		tb.Fatalf("softhsm2-util missing (%v): run `apt-get install softhsm2` (or `make deps`)", err)
	}
	h := &softHSM{dir: tb.TempDir()}
	h.tokens = filepath.Join(h.dir, "tokens")
	if err := os.Mkdir(h.tokens, 0o700); err != nil {
		tb.Fatal(err)
	}
	conf := filepath.Join(h.dir, "softhsm2.conf")
	writeFile(tb, conf, fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n", h.tokens))
	tb.Setenv("SOFTHSM2_CONF", conf)
	return h
}

// initToken initialises a token labelled label in the next free slot, with
// userPIN and soPIN.
func (h *softHSM) initToken(tb testing.TB, label string) {
	tb.Helper()
	out, err := exec.Command("softhsm2-util", "--init-token", "--free",
		"--label", label, "--pin", userPIN, "--so-pin", soPIN).CombinedOutput()
	if err != nil {
		tb.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
}

// pinFile writes pin (with a trailing newline, as editors leave it) to a
// file and returns its path.
func (h *softHSM) pinFile(tb testing.TB, name, pin string) string {
	tb.Helper()
	path := filepath.Join(h.dir, name)
	writeFile(tb, path, pin+"\n")
	return path
}

// moduleURI is the URI GenerateKey takes: module and PIN file.
func (h *softHSM) moduleURI(tb testing.TB) string {
	return "pkcs11:?module-path=" + softhsmModule + "&pin-source=file:" + h.pinFile(tb, "user.pin", userPIN)
}

// generate makes a key on token with the package's own GenerateKey and
// returns its URI.
func (h *softHSM) generate(tb testing.TB, token, object string, curve elliptic.Curve) string {
	tb.Helper()
	uri, pub, err := pkcs11.GenerateKey(context.Background(), h.moduleURI(tb), token, object, curve)
	if err != nil {
		tb.Fatalf("GenerateKey: %v", err)
	}
	if _, _, err := keys.Algorithm(pub); err != nil {
		tb.Fatalf("GenerateKey returned an unusable public key: %v", err)
	}
	return uri
}

// openKey opens uri with o and closes the key when tb ends.
func openKey(tb testing.TB, o *pkcs11.Opener, uri string) *pkcs11.Key {
	tb.Helper()
	k, err := o.OpenKey(context.Background(), uri)
	if err != nil {
		tb.Fatalf("OpenKey: %v", err)
	}
	tb.Cleanup(func() { _ = k.Close() })
	return k
}

// finalizeBehindBack calls C_Finalize on the module through a handle of
// its own, as another library in the process (or a module crash) might:
// every session of the process is gone.
func finalizeBehindBack(tb testing.TB) {
	tb.Helper()
	ctx := p11.New(softhsmModule)
	if ctx == nil {
		tb.Fatal("cannot load the SoftHSM2 module")
	}
	defer ctx.Destroy()
	if err := ctx.Initialize(); err != nil && !strings.Contains(err.Error(), "CKR_CRYPTOKI_ALREADY_INITIALIZED") {
		tb.Fatalf("C_Initialize: %v", err)
	}
	if err := ctx.Finalize(); err != nil {
		tb.Fatalf("C_Finalize: %v", err)
	}
}

// generateRSA makes an RSA-2048 key pair labelled object on token through
// the module directly (GenerateKey makes EC keys only), as another tool
// would have provisioned it.
func generateRSA(tb testing.TB, token, object string) {
	tb.Helper()
	ctx := p11.New(softhsmModule)
	if ctx == nil {
		tb.Fatal("cannot load the SoftHSM2 module")
	}
	defer ctx.Destroy()
	if err := ctx.Initialize(); err != nil {
		tb.Fatalf("C_Initialize: %v", err)
	}
	defer ctx.Finalize()
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		tb.Fatal(err)
	}
	for _, slot := range slots {
		info, err := ctx.GetTokenInfo(slot)
		if err != nil || info.Label != token {
			continue
		}
		s, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			tb.Fatal(err)
		}
		defer ctx.CloseSession(s)
		if err := ctx.Login(s, p11.CKU_USER, userPIN); err != nil {
			tb.Fatal(err)
		}
		_, _, err = ctx.GenerateKeyPair(s, []*p11.Mechanism{p11.NewMechanism(p11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)},
			[]*p11.Attribute{
				p11.NewAttribute(p11.CKA_TOKEN, true),
				p11.NewAttribute(p11.CKA_VERIFY, true),
				p11.NewAttribute(p11.CKA_MODULUS_BITS, 2048),
				p11.NewAttribute(p11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1}),
				p11.NewAttribute(p11.CKA_LABEL, object),
			},
			[]*p11.Attribute{
				p11.NewAttribute(p11.CKA_TOKEN, true),
				p11.NewAttribute(p11.CKA_PRIVATE, true),
				p11.NewAttribute(p11.CKA_SENSITIVE, true),
				p11.NewAttribute(p11.CKA_SIGN, true),
				p11.NewAttribute(p11.CKA_LABEL, object),
			})
		if err != nil {
			tb.Fatalf("C_GenerateKeyPair (RSA): %v", err)
		}
		return
	}
	tb.Fatalf("no token %q", token)
}

// moduleInitialized reports whether the module is initialised in this
// process (by probing with C_Initialize, and undoing it).
func moduleInitialized(tb testing.TB) bool {
	tb.Helper()
	ctx := p11.New(softhsmModule)
	if ctx == nil {
		tb.Fatal("cannot load the SoftHSM2 module")
	}
	defer ctx.Destroy()
	err := ctx.Initialize()
	if err == nil {
		if err := ctx.Finalize(); err != nil {
			tb.Fatal(err)
		}
		return false
	}
	if !strings.Contains(err.Error(), "CKR_CRYPTOKI_ALREADY_INITIALIZED") {
		tb.Fatalf("C_Initialize: %v", err)
	}
	return true
}

func writeFile(tb testing.TB, path, data string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		tb.Fatal(err)
	}
}
