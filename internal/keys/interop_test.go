package keys_test

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keystest"
	"github.com/stellaops/signer-agent/internal/testtools"
)

// Interoperability with the real tools that write key files: cosign
// (testtools.Cosign: the pinned binary `make tools` builds) and OpenSSL.
// A missing tool fails the test; it never skips.

func run(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
}

func readPublicKeyPEM(t *testing.T, path string) any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

// TestCosignGeneratedKey opens a key written by `cosign generate-key-pair`
// and has `cosign verify-blob` check a signature made with it.
func TestCosignGeneratedKey(t *testing.T) {
	cosign := testtools.Cosign(t)
	const password = "cosign-interop-password-6a2b"
	dir := t.TempDir()
	env := []string{"COSIGN_PASSWORD=" + password}
	run(t, env, cosign, "generate-key-pair", "--output-key-prefix", filepath.Join(dir, "cosign"))

	o := envOpener(map[string]string{"COSIGN_PASSWORD": password})
	uri := "file:" + filepath.Join(dir, "cosign.key") + "?password-env=COSIGN_PASSWORD"
	k, err := o.Open(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	samePublicKey(t, k.Public(), readPublicKeyPEM(t, filepath.Join(dir, "cosign.pub")))

	blob := writeFile(t, dir, "blob", []byte("an in-toto statement, say\n"))
	msg, _ := os.ReadFile(blob)
	sig, err := keys.SignMessage(context.Background(), k, msg)
	if err != nil {
		t.Fatal(err)
	}
	sigFile := writeFile(t, dir, "blob.sig", []byte(base64.StdEncoding.EncodeToString(sig)))
	run(t, nil, cosign, "verify-blob", "--key", filepath.Join(dir, "cosign.pub"),
		"--signature", sigFile, "--insecure-ignore-tlog=true", blob)

	keystest.Run(t, func(t *testing.T) keys.Key {
		k, err := o.Open(context.Background(), uri)
		if err != nil {
			t.Fatal(err)
		}
		return k
	})
}

// TestCosignImportedKey writes keys with GenerateFileKey, has `cosign
// import-key-pair` encrypt them, and opens the result.
func TestCosignImportedKey(t *testing.T) {
	cosign := testtools.Cosign(t)
	const password = "cosign-import-password-0f3e"
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			dir := t.TempDir()
			plain := filepath.Join(dir, "plain.pem")
			generated, err := keys.GenerateFileKey(plain, alg)
			if err != nil {
				t.Fatal(err)
			}
			defer generated.Close()
			run(t, []string{"COSIGN_PASSWORD=" + password}, cosign, "import-key-pair",
				"--key", plain, "--output-key-prefix", filepath.Join(dir, "imported"))
			pwFile := writeFile(t, dir, "password", []byte(password+"\n"))
			k, err := new(keys.Opener).Open(context.Background(),
				"file:"+filepath.Join(dir, "imported.key")+"?password-file="+pwFile)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			samePublicKey(t, k.Public(), generated.Public())
			samePublicKey(t, k.Public(), readPublicKeyPEM(t, filepath.Join(dir, "imported.pub")))
		})
	}
}

// TestOpenSSLKeys opens the key files OpenSSL writes.
func TestOpenSSLKeys(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatal("openssl not on PATH: apt-get install openssl (make deps does)")
	}
	const password = "openssl-password-88c1"
	dir := t.TempDir()
	pwFile := writeFile(t, dir, "password", []byte(password+"\n"))
	path := func(name string) string { return filepath.Join(dir, name) }

	run(t, nil, openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", path("p256.pem"))
	run(t, nil, openssl, "genpkey", "-algorithm", "ED25519", "-out", path("ed25519.pem"))
	// ecparam -genkey writes an EC PARAMETERS block before a SEC1 key.
	run(t, nil, openssl, "ecparam", "-name", "secp384r1", "-genkey", "-out", path("p384-sec1.pem"))
	run(t, nil, openssl, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", path("p256.pem"),
		"-passout", "pass:"+password, "-out", path("p256-pbkdf2.pem"))
	run(t, nil, openssl, "pkcs8", "-topk8", "-v2", "aes-128-cbc", "-scrypt", "-in", path("ed25519.pem"),
		"-passout", "pass:"+password, "-out", path("ed25519-scrypt.pem"))
	run(t, nil, openssl, "ec", "-aes256", "-in", path("p256.pem"),
		"-passout", "pass:"+password, "-out", path("p256-legacy.pem"))
	run(t, nil, openssl, "pkcs8", "-topk8", "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA512", "-in", path("p256.pem"),
		"-passout", "pass:"+password, "-out", path("p256-sha512prf.pem"))

	for _, c := range []struct {
		file   string
		query  string
		wantIs error // nil: must open
	}{
		{"p256.pem", "", nil},
		{"ed25519.pem", "", nil},
		{"p384-sec1.pem", "", nil},
		{"p256-pbkdf2.pem", "?password-file=" + pwFile, nil},
		{"ed25519-scrypt.pem", "?password-file=" + pwFile, nil},
		{"p256-legacy.pem", "?password-file=" + pwFile, keys.ErrUnsupportedKey},
		{"p256-sha512prf.pem", "?password-file=" + pwFile, keys.ErrUnsupportedKey},
	} {
		t.Run(c.file, func(t *testing.T) {
			k, err := new(keys.Opener).Open(context.Background(), "file:"+path(c.file)+c.query)
			if c.wantIs != nil {
				if !errors.Is(err, c.wantIs) {
					t.Fatalf("got %v, want %v", err, c.wantIs)
				}
				checkNoSecrets(t, err, password)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			sig, err := keys.SignMessage(context.Background(), k, []byte("m"))
			if err != nil {
				t.Fatal(err)
			}
			if err := keystest.Verify(k.Public(), []byte("m"), sig); err != nil {
				t.Fatal(err)
			}
		})
	}
}
