package keys_test

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keystest"
)

// fileURL is file:///path?query (the other accepted spelling, file:/path,
// is built by hand).
func fileURL(path string, query url.Values) string {
	return (&url.URL{Scheme: "file", Path: path, RawQuery: query.Encode()}).String()
}

func TestFileKeyConformance(t *testing.T) {
	const password = "file-key-password-3b9e"
	for _, alg := range algorithms {
		priv := generate(t, alg)
		dir := t.TempDir()
		pwFile := writeFile(t, dir, "password", []byte(password+"\n"))
		env := map[string]string{"KEY_PASSWORD": password}

		type tc struct {
			name  string
			pem   []byte
			query url.Values
		}
		cases := []tc{
			{"pkcs8", pkcs8PEM(t, priv), nil},
			{"encrypted-pkcs8/password-file", encryptedPKCS8PEM(t, priv, password, fastPBES2), url.Values{"password-file": {pwFile}}},
			{"encrypted-pkcs8/password-env", encryptedPKCS8PEM(t, priv, password, fastPBES2), url.Values{"password-env": {"KEY_PASSWORD"}}},
			{"sigstore/password-file", sigstorePEM(t, priv, password, "ENCRYPTED SIGSTORE PRIVATE KEY", encrypted.Legacy), url.Values{"password-file": {pwFile}}},
		}
		if alg == keys.AlgECDSAP256 {
			// scrypt is slow (under -race especially): the older block type
			// with password-env once; TestParsePrivateKeyPEM covers it for
			// every algorithm.
			cases = append(cases, tc{"cosign/password-env", sigstorePEM(t, priv, password, "ENCRYPTED COSIGN PRIVATE KEY", encrypted.Legacy), url.Values{"password-env": {"KEY_PASSWORD"}}})
		}
		if ec, ok := priv.(*ecdsa.PrivateKey); ok {
			cases = append(cases, tc{"sec1", sec1PEM(t, ec), nil})
		}
		for i, c := range cases {
			path := writeFile(t, dir, filepath.Base(c.name)+".pem", c.pem)
			uri := fileURL(path, c.query)
			if i%2 == 0 {
				uri = "file:" + path
				if len(c.query) > 0 {
					uri += "?" + c.query.Encode()
				}
			}
			t.Run(alg+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				keystest.Run(t, func(t *testing.T) keys.Key {
					k, err := envOpener(env).Open(context.Background(), uri)
					if err != nil {
						t.Fatalf("Open(%s): %v", uri, err)
					}
					samePublicKey(t, k.Public(), priv.Public())
					return k
				})
			})
		}
	}
}

// TestFileKeyStandardScrypt opens a key encrypted with cosign's default
// scrypt parameters, with the zero Opener (real environment and files).
func TestFileKeyStandardScrypt(t *testing.T) {
	const password = "standard-scrypt-5d1c"
	priv := generate(t, keys.AlgECDSAP256)
	path := writeFile(t, t.TempDir(), "cosign.key", sigstorePEM(t, priv, password, "ENCRYPTED SIGSTORE PRIVATE KEY", encrypted.Standard))
	t.Setenv("SIGNER_AGENT_TEST_KEY_PASSWORD", password)
	var o keys.Opener
	k, err := o.Open(context.Background(), "file:"+path+"?password-env=SIGNER_AGENT_TEST_KEY_PASSWORD")
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	samePublicKey(t, k.Public(), priv.Public())
}

func TestPasswordFileNewlines(t *testing.T) {
	priv := generate(t, keys.AlgECDSAP256)
	for _, c := range []struct {
		name, file, password string
	}{
		{"no newline", "pw", "pw"},
		{"empty file, empty password", "", ""},
		{"lone newline, empty password", "\n", ""},
		{"LF", "pw\n", "pw"},
		{"CRLF", "pw\r\n", "pw"},
		{"only one newline trimmed", "pw\n\n", "pw\n"},
		{"leading and inner space kept", " p w\n", " p w"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			key := writeFile(t, dir, "key.pem", sigstorePEM(t, priv, c.password, "ENCRYPTED SIGSTORE PRIVATE KEY", encrypted.Legacy))
			pw := writeFile(t, dir, "pw", []byte(c.file))
			k, err := new(keys.Opener).Open(context.Background(), fileURL(key, url.Values{"password-file": {pw}}))
			if err != nil {
				t.Fatal(err)
			}
			_ = k.Close()
		})
	}
}

func TestGenerateFileKey(t *testing.T) {
	for _, alg := range append([]string{""}, algorithms...) {
		t.Run("alg="+alg, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "dev.pem")
			k, err := keys.GenerateFileKey(path, alg)
			if err != nil {
				t.Fatal(err)
			}
			defer k.Close()
			want := alg
			if want == "" {
				want = keys.AlgECDSAP256
			}
			if got, _, _ := keys.Algorithm(k.Public()); got != want {
				t.Errorf("algorithm %q, want %q", got, want)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("mode %v, want 0600", fi.Mode().Perm())
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("directory holds %d entries, want only dev.pem (no temporary files left)", len(entries))
			}
			reopened, err := new(keys.Opener).Open(context.Background(), "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer reopened.Close()
			samePublicKey(t, reopened.Public(), k.Public())
		})
	}
}

func TestGenerateFileKeyReplaces(t *testing.T) {
	dir := t.TempDir()
	path := writeFile(t, dir, "dev.pem", []byte("old content"))
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := keys.GenerateFileKey(path, keys.AlgEd25519)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	priv, err := keys.ParsePrivateKeyPEM(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	samePublicKey(t, priv.Public(), k.Public())
}

func TestGenerateFileKeyErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := keys.GenerateFileKey(filepath.Join(dir, "k.pem"), "rsa-2048"); !errors.Is(err, keys.ErrUnsupportedKey) {
		t.Errorf("unknown algorithm: got %v, want ErrUnsupportedKey", err)
	}
	if _, err := keys.GenerateFileKey(filepath.Join(dir, "missing", "k.pem"), ""); err == nil {
		t.Error("missing directory: no error")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed generations left %d files behind", len(entries))
	}
}
