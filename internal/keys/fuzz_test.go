package keys_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/keystest"
)

// FuzzParsePrivateKeyPEM feeds the parser mutations of real key files,
// generated here (no key material is committed). It must never panic or
// modify its input; an error must not carry the password; a parsed key must
// be a supported algorithm, sign, and survive a marshal/parse round trip.
func FuzzParsePrivateKeyPEM(f *testing.F) {
	const password = "fuzz-password"
	for _, alg := range algorithms {
		priv := generate(f, alg)
		f.Add(pkcs8PEM(f, priv), []byte(nil))
		f.Add(encryptedPKCS8PEM(f, priv, password, nil), []byte(password))
		f.Add(sigstorePEM(f, priv, password, "ENCRYPTED SIGSTORE PRIVATE KEY", encrypted.Legacy), []byte(password))
		f.Add(sigstorePEM(f, priv, password, "ENCRYPTED COSIGN PRIVATE KEY", encrypted.Legacy), []byte(nil))
		if ec, ok := priv.(*ecdsa.PrivateKey); ok {
			f.Add(sec1PEM(f, ec), []byte(nil))
		}
	}
	p256 := generate(f, keys.AlgECDSAP256)
	f.Add(append(pkcs8PEM(f, p256), pkcs8PEM(f, p256)...), []byte(nil))
	f.Add(pkcs8PEM(f, generate(f, "p224")), []byte(nil))
	f.Add(pkcs8PEM(f, generate(f, "rsa")), []byte(nil))
	f.Add(legacyEncryptedPEM(f), []byte(password))
	f.Add(craftedPBES2PEM(f, scryptKDF(f, 1<<10, 8, 1), oidAES256CBC, 16, 64), []byte(password))
	f.Add(craftedPBES2PEM(f, pbkdf2KDF(f, 1000), oidAES256CBC, 16, 64), []byte(password))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"), []byte(nil))
	f.Add([]byte("not a key"), []byte(nil))

	f.Fuzz(func(t *testing.T, data, password []byte) {
		if len(password) == 0 {
			password = nil // the fuzzer cannot tell nil from empty
		}
		in := bytes.Clone(data)
		s, err := keys.ParsePrivateKeyPEM(in, password)
		if !bytes.Equal(in, data) {
			t.Fatal("ParsePrivateKeyPEM modified its input")
		}
		if err != nil {
			// The password may appear by coincidence (in the input, or as a
			// word of the message); it must not appear because of the
			// password: a different password of the same length must give
			// a message that contains it as well.
			if password != nil && strings.Contains(err.Error(), string(password)) {
				other := bytes.Clone(password)
				for i := range other {
					other[i] ^= 0x5a
				}
				_, err2 := keys.ParsePrivateKeyPEM(data, other)
				if err2 == nil || !strings.Contains(err2.Error(), string(password)) {
					t.Fatalf("error message contains the password: %q", err)
				}
			}
			return
		}
		if _, _, err := keys.Algorithm(s.Public()); err != nil {
			t.Fatalf("parsed an unsupported key: %v", err)
		}
		sig, err := keys.SignMessage(context.Background(), s, []byte("fuzz"))
		if err != nil {
			t.Fatalf("parsed key cannot sign: %v", err)
		}
		if err := keystest.Verify(s.Public(), []byte("fuzz"), sig); err != nil {
			t.Fatalf("parsed key: %v", err)
		}
		out, err := keys.MarshalPrivateKeyPEM(s)
		if err != nil {
			t.Fatalf("parsed key does not marshal: %v", err)
		}
		back, err := keys.ParsePrivateKeyPEM(out, nil)
		if err != nil {
			t.Fatalf("marshalled key does not parse: %v", err)
		}
		samePublicKey(t, back.Public(), s.Public())
	})
}
