package keys_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/youmark/pkcs8"

	"github.com/stellaops/signer-agent/internal/keys"
)

// Test keys are generated at test time; no key material is committed.

var algorithms = []string{keys.AlgECDSAP256, keys.AlgECDSAP384, keys.AlgEd25519}

func generate(t testing.TB, alg string) crypto.Signer {
	t.Helper()
	var (
		s   crypto.Signer
		err error
	)
	switch alg {
	case keys.AlgECDSAP256:
		s, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case keys.AlgECDSAP384:
		s, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case keys.AlgEd25519:
		_, s, err = ed25519.GenerateKey(rand.Reader)
	case "p224":
		s, err = ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	case "rsa":
		s, err = rsaKey()
	default:
		t.Fatalf("no generator for %q", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rsaKey is generated once: RSA key generation is slow.
var rsaKey = sync.OnceValues(func() (*rsa.PrivateKey, error) {
	return rsa.GenerateKey(rand.Reader, 2048)
})

func pemEncode(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8DER(t testing.TB, priv any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// pkcs8PEM is an unencrypted "PRIVATE KEY" block.
func pkcs8PEM(t testing.TB, priv any) []byte {
	return pemEncode("PRIVATE KEY", pkcs8DER(t, priv))
}

// sec1PEM is an "EC PRIVATE KEY" block (openssl ecparam -genkey).
func sec1PEM(t testing.TB, priv *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return pemEncode("EC PRIVATE KEY", der)
}

// encryptedPKCS8PEM is an "ENCRYPTED PRIVATE KEY" block (PBES2; PBKDF2 and
// AES-256-CBC unless opts says otherwise).
func encryptedPKCS8PEM(t testing.TB, priv any, password string, opts *pkcs8.Opts) []byte {
	t.Helper()
	der, err := pkcs8.MarshalPrivateKey(priv, []byte(password), opts)
	if err != nil {
		t.Fatal(err)
	}
	return pemEncode("ENCRYPTED PRIVATE KEY", der)
}

// fastPBES2 is PBES2 with fewer PBKDF2 iterations than the library's
// default, for tests that open a key many times.
var fastPBES2 = &pkcs8.Opts{
	Cipher:  pkcs8.AES256CBC,
	KDFOpts: pkcs8.PBKDF2Opts{SaltSize: 16, IterationCount: 1000, HMACHash: crypto.SHA256},
}

// sigstorePEM is a cosign-format encrypted key. Legacy scrypt parameters
// keep the tests fast; one test uses cosign's own defaults.
func sigstorePEM(t testing.TB, priv any, password, blockType string, level encrypted.KDFParameterStrength) []byte {
	t.Helper()
	body, err := encrypted.EncryptWithCustomKDFParameters(pkcs8DER(t, priv), []byte(password), level)
	if err != nil {
		t.Fatal(err)
	}
	return pemEncode(blockType, body)
}

// legacyEncryptedPEM has OpenSSL's traditional encryption headers; the
// body is random because the parser must refuse it before decrypting.
func legacyEncryptedPEM(t testing.TB) []byte {
	body := make([]byte, 128)
	_, _ = rand.Read(body)
	return pem.EncodeToMemory(&pem.Block{
		Type: "EC PRIVATE KEY",
		Headers: map[string]string{
			"Proc-Type": "4,ENCRYPTED",
			"DEK-Info":  "AES-256-CBC,00112233445566778899AABBCCDDEEFF",
		},
		Bytes: body,
	})
}

// craftedPBES2PEM is an "ENCRYPTED PRIVATE KEY" with the given key
// derivation function and cipher, and random ciphertext: for inputs that
// must be refused before any decryption.
func craftedPBES2PEM(t testing.TB, kdf pkix.AlgorithmIdentifier, cipherOID asn1.ObjectIdentifier, ivLen, dataLen int) []byte {
	t.Helper()
	iv := make([]byte, ivLen)
	data := make([]byte, dataLen)
	_, _ = rand.Read(data)
	ivDER := mustASN1(t, iv)
	params := mustASN1(t, struct {
		KDF pkix.AlgorithmIdentifier
		Enc pkix.AlgorithmIdentifier
	}{kdf, pkix.AlgorithmIdentifier{Algorithm: cipherOID, Parameters: asn1.RawValue{FullBytes: ivDER}}})
	der := mustASN1(t, struct {
		Alg  pkix.AlgorithmIdentifier
		Data []byte
	}{pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 13}, Parameters: asn1.RawValue{FullBytes: params}}, data})
	return pemEncode("ENCRYPTED PRIVATE KEY", der)
}

func pbkdf2KDF(t testing.TB, iterations int) pkix.AlgorithmIdentifier {
	p := mustASN1(t, struct {
		Salt       []byte
		Iterations int
	}{make([]byte, 8), iterations})
	return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 5, 12}, Parameters: asn1.RawValue{FullBytes: p}}
}

func scryptKDF(t testing.TB, n, r, p int) pkix.AlgorithmIdentifier {
	der := mustASN1(t, struct {
		Salt    []byte
		N, R, P int
	}{make([]byte, 16), n, r, p})
	return pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11591, 4, 11}, Parameters: asn1.RawValue{FullBytes: der}}
}

var (
	oidAES256CBC  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 42}
	oidAES256GCM  = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 1, 46}
	oidDESEDE3CBC = asn1.ObjectIdentifier{1, 2, 840, 113549, 3, 7}
)

func mustASN1(t testing.TB, v any) []byte {
	t.Helper()
	der, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// writeFile writes data to dir/name with mode 0600 and returns the path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// envOpener is an Opener whose environment is env.
func envOpener(env map[string]string) *keys.Opener {
	return &keys.Opener{Getenv: func(name string) string { return env[name] }}
}

func samePublicKey(t testing.TB, got, want crypto.PublicKey) {
	t.Helper()
	e, ok := want.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !e.Equal(got) {
		t.Fatalf("public key %T differs from the expected %T", got, want)
	}
}
