package keys_test

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"

	"github.com/stellaops/signer-agent/internal/keys"
)

func TestOpenErrors(t *testing.T) {
	const (
		password = "s3cret-password-e41f"
		wrong    = "wrong-password-77aa"
	)
	dir := t.TempDir()
	p256 := generate(t, keys.AlgECDSAP256)
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	plainPEM := pkcs8PEM(t, p256)
	files := map[string][]byte{
		"plain.pem":    plainPEM,
		"enc.pem":      encryptedPKCS8PEM(t, p256, password, nil),
		"sigstore.pem": sigstorePEM(t, p256, password, "ENCRYPTED SIGSTORE PRIVATE KEY", encrypted.Legacy),
		"rsa.pem":      pkcs8PEM(t, generate(t, "rsa")),
		"p224.pem":     pkcs8PEM(t, generate(t, "p224")),
		"x25519.pem":   pkcs8PEM(t, x25519),
		"two.pem":      append(append([]byte{}, plainPEM...), pkcs8PEM(t, generate(t, keys.AlgEd25519))...),
		"legacy.pem":   legacyEncryptedPEM(t),
		"garbage.pem":  []byte("this is not a key\x00\xff"),
		"pub.pem":      pemEncode("PUBLIC KEY", []byte{0x30, 0x00}),
		"openssh.pem":  pemEncode("OPENSSH PRIVATE KEY", []byte("openssh-key-v1\x00")),
		"password":     []byte(password + "\n"),
		"wrong":        []byte(wrong + "\n"),
	}
	for name, data := range files {
		writeFile(t, dir, name, data)
	}
	env := map[string]string{"PW": password, "WRONG_PW": wrong}

	for _, c := range []struct {
		name   string
		uri    string
		wantIs error  // errors.Is target, if any
		wantIn string // substring of the message, if any
	}{
		{"relative path", "file:keys/plain.pem", nil, "relative path"},
		{"dot-relative path", "file:./plain.pem", nil, "relative path"},
		{"host", "file://example.com" + dir + "/plain.pem", nil, "host"},
		{"no path", "file:", nil, "no path"},
		{"fragment", "file:" + dir + "/plain.pem#frag", nil, "fragment"},
		{"missing file", "file:" + dir + "/nope.pem", fs.ErrNotExist, "nope.pem"},
		{"both password sources", "file:" + dir + "/enc.pem?password-file=" + dir + "/password&password-env=PW", nil, "not both"},
		{"unknown query parameter", "file:" + dir + "/enc.pem?password=" + password, nil, "unknown query parameter"},
		{"repeated query parameter", "file:" + dir + "/enc.pem?password-env=PW&password-env=PW", nil, "2 times"},
		{"relative password file", "file:" + dir + "/enc.pem?password-file=password", nil, "absolute"},
		{"missing password file", "file:" + dir + "/enc.pem?password-file=" + dir + "/nope", fs.ErrNotExist, "password file"},
		{"empty password-env name", "file:" + dir + "/enc.pem?password-env=", nil, "variable name"},
		{"password env unset", "file:" + dir + "/enc.pem?password-env=UNSET", nil, "UNSET is unset or empty"},
		{"missing password pkcs8", "file:" + dir + "/enc.pem", keys.ErrPasswordRequired, "password-file"},
		{"missing password sigstore", "file:" + dir + "/sigstore.pem", keys.ErrPasswordRequired, "password-env"},
		{"wrong password pkcs8 file", "file:" + dir + "/enc.pem?password-file=" + dir + "/wrong", keys.ErrWrongPassword, ""},
		{"wrong password pkcs8 env", "file:" + dir + "/enc.pem?password-env=WRONG_PW", keys.ErrWrongPassword, ""},
		{"wrong password sigstore", "file:" + dir + "/sigstore.pem?password-env=WRONG_PW", keys.ErrWrongPassword, ""},
		{"RSA key", "file:" + dir + "/rsa.pem", keys.ErrUnsupportedKey, "rsa"},
		{"P-224 key", "file:" + dir + "/p224.pem", keys.ErrUnsupportedKey, "P-224"},
		{"X25519 key", "file:" + dir + "/x25519.pem", keys.ErrUnsupportedKey, "ecdh"},
		{"OpenSSH key", "file:" + dir + "/openssh.pem", keys.ErrUnsupportedKey, "OPENSSH PRIVATE KEY"},
		{"two key blocks", "file:" + dir + "/two.pem", nil, "2 PEM private key blocks"},
		{"legacy encrypted PEM", "file:" + dir + "/legacy.pem?password-env=PW", keys.ErrUnsupportedKey, "Proc-Type: 4,ENCRYPTED"},
		{"garbage", "file:" + dir + "/garbage.pem", nil, "no PEM private key block"},
		{"public key only", "file:" + dir + "/pub.pem", nil, "no PEM private key block"},
		{"unknown scheme", "pkcs11:token=agent;object=signing", keys.ErrUnsupportedScheme, `"pkcs11"`},
		{"unknown scheme upper case", "TPM:handle=0x81000001", keys.ErrUnsupportedScheme, `"tpm"`},
		{"no scheme", dir + "/plain.pem", keys.ErrUnsupportedScheme, "no scheme"},
		{"memory unknown algorithm", "memory:dev?alg=rsa-2048", keys.ErrUnsupportedKey, "rsa-2048"},
		{"memory no name", "memory:", nil, "memory:NAME"},
		{"memory unknown query parameter", "memory:dev?curve=p256", nil, "unknown query parameter"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := envOpener(env).Open(context.Background(), c.uri)
			if err == nil {
				_ = k.Close()
				t.Fatalf("Open(%s) succeeded, want an error", c.uri)
			}
			if c.wantIs != nil && !errors.Is(err, c.wantIs) {
				t.Errorf("error %q does not wrap %q", err, c.wantIs)
			}
			if !strings.Contains(err.Error(), c.wantIn) {
				t.Errorf("error %q does not mention %q", err, c.wantIn)
			}
			checkNoSecrets(t, err, password, wrong)
			for _, name := range []string{"plain.pem", "enc.pem", "sigstore.pem"} {
				checkNoKeyBytes(t, err, files[name])
			}
		})
	}
}

// checkNoSecrets fails if err's message contains any of the secrets.
func checkNoSecrets(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error message contains a password: %q", err)
		}
	}
}

// checkNoKeyBytes fails if err's message contains a piece of a PEM file's
// body (base64 or raw).
func checkNoKeyBytes(t *testing.T, err error, pemData []byte) {
	t.Helper()
	block, _ := pem.Decode(pemData)
	if block == nil {
		return
	}
	b64 := string(bytes.Split(pem.EncodeToMemory(&pem.Block{Type: "X", Bytes: block.Bytes}), []byte("\n"))[1])
	msg := err.Error()
	if strings.Contains(msg, b64[16:40]) || (len(block.Bytes) > 40 && strings.Contains(msg, string(block.Bytes[20:36]))) {
		t.Errorf("error message contains key file bytes: %q", msg)
	}
}

func TestOpenCanceledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := new(keys.Opener).Open(ctx, "memory:dev"); !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestOpenReadFileOverride(t *testing.T) {
	priv := generate(t, keys.AlgEd25519)
	files := map[string][]byte{"/keys/k.pem": pkcs8PEM(t, priv)}
	o := &keys.Opener{ReadFile: func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return append([]byte{}, b...), nil
		}
		return nil, fs.ErrNotExist
	}}
	for _, uri := range []string{"file:/keys/k.pem", "file:///keys/k.pem", "FILE:/keys/../keys/k.pem"} {
		k, err := o.Open(context.Background(), uri)
		if err != nil {
			t.Fatalf("Open(%s): %v", uri, err)
		}
		samePublicKey(t, k.Public(), priv.Public())
		_ = k.Close()
	}
}
