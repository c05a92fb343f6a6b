package keys_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/youmark/pkcs8"

	"github.com/stellaops/signer-agent/internal/keys"
)

func TestParsePrivateKeyPEM(t *testing.T) {
	const password = "parse-password-0c77"
	for _, alg := range algorithms {
		priv := generate(t, alg)
		pubPEM, err := keys.MarshalPublicKeyPEM(priv.Public())
		if err != nil {
			t.Fatal(err)
		}
		type tc struct {
			name     string
			pem      []byte
			password []byte
		}
		cases := []tc{
			{"pkcs8", pkcs8PEM(t, priv), nil},
			{"pkcs8 with an unneeded password", pkcs8PEM(t, priv), []byte(password)},
			{"pkcs8 among other blocks and text", bytes.Join([][]byte{
				[]byte("Bag Attributes\n    friendlyName: test\n"), pubPEM, pkcs8PEM(t, priv),
				pemEncode("CERTIFICATE", []byte{0x30, 0x00}), []byte("trailing text\n"),
			}, nil), nil},
			{"encrypted pkcs8 pbkdf2", encryptedPKCS8PEM(t, priv, password, nil), []byte(password)},
			{"encrypted pkcs8 scrypt", encryptedPKCS8PEM(t, priv, password, &pkcs8.Opts{
				Cipher:  pkcs8.AES128CBC,
				KDFOpts: pkcs8.ScryptOpts{SaltSize: 16, CostParameter: 1 << 12, BlockSize: 8, ParallelizationParameter: 1},
			}), []byte(password)},
			{"sigstore", sigstorePEM(t, priv, password, "ENCRYPTED SIGSTORE PRIVATE KEY", encrypted.Legacy), []byte(password)},
			{"cosign", sigstorePEM(t, priv, password, "ENCRYPTED COSIGN PRIVATE KEY", encrypted.Legacy), []byte(password)},
			{"sigstore empty password", sigstorePEM(t, priv, "", "ENCRYPTED SIGSTORE PRIVATE KEY", encrypted.Legacy), []byte{}},
		}
		if ec, ok := priv.(*ecdsa.PrivateKey); ok {
			params, err := x509.MarshalPKCS8PrivateKey(ec) // any DER will do for an ignored block
			if err != nil {
				t.Fatal(err)
			}
			cases = append(cases,
				tc{"sec1", sec1PEM(t, ec), nil},
				tc{"sec1 after EC PARAMETERS", append(pemEncode("EC PARAMETERS", params[:8]), sec1PEM(t, ec)...), nil},
			)
		}
		for _, c := range cases {
			t.Run(alg+"/"+c.name, func(t *testing.T) {
				in := bytes.Clone(c.pem)
				got, err := keys.ParsePrivateKeyPEM(in, c.password)
				if err != nil {
					t.Fatal(err)
				}
				samePublicKey(t, got.Public(), priv.Public())
				if !bytes.Equal(in, c.pem) {
					t.Error("ParsePrivateKeyPEM modified its input")
				}
			})
		}
	}
}

func TestParsePrivateKeyPEMErrors(t *testing.T) {
	const password = "parse-errors-password-91d0"
	p256 := generate(t, keys.AlgECDSAP256)
	for _, c := range []struct {
		name     string
		pem      []byte
		password []byte
		wantIs   error
		wantIn   string
	}{
		{"empty input", nil, nil, nil, "no PEM private key block"},
		{"encrypted pkcs8 without password", encryptedPKCS8PEM(t, p256, password, nil), nil, keys.ErrPasswordRequired, ""},
		{"encrypted pkcs8 with empty password", encryptedPKCS8PEM(t, p256, password, nil), []byte{}, keys.ErrWrongPassword, ""},
		{"sigstore without password", sigstorePEM(t, p256, password, "ENCRYPTED SIGSTORE PRIVATE KEY", encrypted.Legacy), nil, keys.ErrPasswordRequired, ""},
		{"sigstore with empty password", sigstorePEM(t, p256, password, "ENCRYPTED SIGSTORE PRIVATE KEY", encrypted.Legacy), []byte{}, keys.ErrWrongPassword, ""},
		{"sigstore not JSON", pemEncode("ENCRYPTED SIGSTORE PRIVATE KEY", []byte("not json")), []byte(password), nil, "malformed"},
		{"sigstore unknown KDF", pemEncode("ENCRYPTED SIGSTORE PRIVATE KEY",
			[]byte(`{"kdf":{"name":"argon2"},"cipher":{"name":"nacl/secretbox"},"ciphertext":""}`)), []byte(password), keys.ErrUnsupportedKey, "argon2"},
		{"sigstore plaintext not PKCS#8", sigstoreOf(t, []byte("not a key"), password), []byte(password), nil, "not a PKCS#8"},
		{"pkcs8 malformed", pemEncode("ENCRYPTED PRIVATE KEY", []byte{0x30, 0x03, 0x02, 0x01, 0x01}), []byte(password), nil, "malformed"},
		{"pkcs8 3DES", craftedPBES2PEM(t, pbkdf2KDF(t, 2048), oidDESEDE3CBC, 8, 64), []byte(password), keys.ErrUnsupportedKey, "AES-CBC"},
		{"pkcs8 mislabelled GCM", craftedPBES2PEM(t, pbkdf2KDF(t, 2048), oidAES256GCM, 16, 64), []byte(password), keys.ErrUnsupportedKey, "AES-CBC"},
		{"pkcs8 short IV", craftedPBES2PEM(t, pbkdf2KDF(t, 2048), oidAES256CBC, 8, 64), []byte(password), nil, "malformed"},
		{"pkcs8 partial block", craftedPBES2PEM(t, pbkdf2KDF(t, 2048), oidAES256CBC, 16, 65), []byte(password), nil, "malformed"},
		{"pkcs8 huge PBKDF2 count", craftedPBES2PEM(t, pbkdf2KDF(t, 1<<40), oidAES256CBC, 16, 64), []byte(password), keys.ErrUnsupportedKey, "iteration count"},
		{"pkcs8 zero PBKDF2 count", craftedPBES2PEM(t, pbkdf2KDF(t, 0), oidAES256CBC, 16, 64), []byte(password), keys.ErrUnsupportedKey, "iteration count"},
		{"pkcs8 huge scrypt N", craftedPBES2PEM(t, scryptKDF(t, 1<<30, 8, 1), oidAES256CBC, 16, 64), []byte(password), keys.ErrUnsupportedKey, "scrypt"},
		{"pkcs8 scrypt N not a power of two", craftedPBES2PEM(t, scryptKDF(t, 1000, 8, 1), oidAES256CBC, 16, 64), []byte(password), keys.ErrUnsupportedKey, "scrypt"},
		{"pkcs8 wrong password", encryptedPKCS8PEM(t, p256, password, nil), []byte("nope-" + password[:4]), keys.ErrWrongPassword, ""},
		{"unknown private key type", pemEncode("DSA PRIVATE KEY", []byte{1, 2, 3}), nil, keys.ErrUnsupportedKey, "DSA PRIVATE KEY"},
		{"PKCS#1 RSA", pemEncode("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(must(rsaKey()))), nil, keys.ErrUnsupportedKey, "RSA PRIVATE KEY"},
		{"corrupt pkcs8", pemEncode("PRIVATE KEY", []byte{0x30, 0x01, 0x00}), nil, nil, "parse PRIVATE KEY"},
		{"corrupt sec1", pemEncode("EC PRIVATE KEY", []byte{0x30, 0x01, 0x00}), nil, nil, "parse EC PRIVATE KEY"},
		{"legacy encrypted", legacyEncryptedPEM(t), []byte(password), keys.ErrUnsupportedKey, "legacy PEM encryption"},
		{"two blocks", append(pkcs8PEM(t, p256), sec1PEM(t, p256.(*ecdsa.PrivateKey))...), nil, nil, "2 PEM private key blocks"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := keys.ParsePrivateKeyPEM(c.pem, c.password)
			if err == nil {
				t.Fatalf("parsed a %T, want an error", got)
			}
			if c.wantIs != nil && !errors.Is(err, c.wantIs) {
				t.Errorf("error %q does not wrap %q", err, c.wantIs)
			}
			if !strings.Contains(err.Error(), c.wantIn) {
				t.Errorf("error %q does not mention %q", err, c.wantIn)
			}
			checkNoSecrets(t, err, password)
		})
	}
}

func sigstoreOf(t testing.TB, plaintext []byte, password string) []byte {
	t.Helper()
	body, err := encrypted.EncryptWithCustomKDFParameters(plaintext, []byte(password), encrypted.Legacy)
	if err != nil {
		t.Fatal(err)
	}
	return pemEncode("ENCRYPTED SIGSTORE PRIVATE KEY", body)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestMarshalPEM(t *testing.T) {
	for _, alg := range algorithms {
		t.Run(alg, func(t *testing.T) {
			priv := generate(t, alg)
			privPEM, err := keys.MarshalPrivateKeyPEM(priv)
			if err != nil {
				t.Fatal(err)
			}
			if b, _ := pem.Decode(privPEM); b == nil || b.Type != "PRIVATE KEY" {
				t.Fatalf("private key PEM is not a PRIVATE KEY block:\n%s", privPEM)
			}
			back, err := keys.ParsePrivateKeyPEM(privPEM, nil)
			if err != nil {
				t.Fatal(err)
			}
			samePublicKey(t, back.Public(), priv.Public())

			pubPEM, err := keys.MarshalPublicKeyPEM(priv.Public())
			if err != nil {
				t.Fatal(err)
			}
			b, _ := pem.Decode(pubPEM)
			if b == nil || b.Type != "PUBLIC KEY" {
				t.Fatalf("public key PEM is not a PUBLIC KEY block:\n%s", pubPEM)
			}
			pub, err := x509.ParsePKIXPublicKey(b.Bytes)
			if err != nil {
				t.Fatal(err)
			}
			samePublicKey(t, pub, priv.Public())
		})
	}
}

func TestMarshalPrivateKeyPEMRefuses(t *testing.T) {
	memKey, err := keys.NewMemoryKey("")
	if err != nil {
		t.Fatal(err)
	}
	defer memKey.Close()
	for name, s := range map[string]crypto.Signer{
		"RSA":        generate(t, "rsa"),
		"P-224":      generate(t, "p224"),
		"opened Key": memKey,
	} {
		if _, err := keys.MarshalPrivateKeyPEM(s); !errors.Is(err, keys.ErrUnsupportedKey) {
			t.Errorf("%s: got %v, want ErrUnsupportedKey", name, err)
		}
	}
}
