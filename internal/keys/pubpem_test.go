package keys_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
)

// selfSigned returns a DER certificate for priv's public key.
func selfSigned(t testing.TB, priv crypto.Signer) []byte {
	t.Helper()
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "release"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<33, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParsePublicKeysPEM(t *testing.T) {
	ec := generate(t, keys.AlgECDSAP256)
	ed := generate(t, keys.AlgEd25519)
	rsaPriv := generate(t, "rsa").(*rsa.PrivateKey)
	pkixPEM := func(s crypto.Signer) []byte { return must(keys.MarshalPublicKeyPEM(s.Public())) }
	cases := []struct {
		name string
		data []byte
		want []crypto.PublicKey
		err  string
	}{
		{"one PKIX key", pkixPEM(ec), []crypto.PublicKey{ec.Public()}, ""},
		{"keys in order, text and other blocks ignored", []byte("comment\n" + string(pkixPEM(ed)) +
			string(pemEncode("EC PARAMETERS", []byte{6, 8, 42, 134, 72, 206, 61, 3, 1, 7})) + string(pkixPEM(ec))),
			[]crypto.PublicKey{ed.Public(), ec.Public()}, ""},
		{"PKCS#1 RSA", pemEncode("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&rsaPriv.PublicKey)), []crypto.PublicKey{&rsaPriv.PublicKey}, ""},
		{"certificate", pemEncode("CERTIFICATE", selfSigned(t, ec)), []crypto.PublicKey{ec.Public()}, ""},
		{"private key refused", append(pkixPEM(ec), pkcs8PEM(t, ec)...), nil, "public keys only"},
		{"SEC1 private key refused", sec1PEM(t, ec.(*ecdsa.PrivateKey)), nil, "public keys only"},
		{"bad PKIX bytes", pemEncode("PUBLIC KEY", []byte{1, 2, 3}), nil, `"PUBLIC KEY" block`},
		{"bad certificate", pemEncode("CERTIFICATE", []byte{1, 2, 3}), nil, `"CERTIFICATE" block`},
		{"nothing", []byte("no PEM here"), nil, "no PEM public key"},
		{"empty", nil, nil, "no PEM public key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := keys.ParsePublicKeysPEM(c.data)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err = %v, want %q", err, c.err)
				}
				if strings.Contains(c.err, "no PEM") && !errors.Is(err, keys.ErrNoPublicKey) {
					t.Fatalf("err = %v, want ErrNoPublicKey", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("%d keys, want %d", len(got), len(c.want))
			}
			for i := range got {
				if !got[i].(interface{ Equal(crypto.PublicKey) bool }).Equal(c.want[i]) {
					t.Fatalf("key %d differs", i)
				}
			}
		})
	}
}

func FuzzParsePublicKeysPEM(f *testing.F) {
	for _, alg := range algorithms {
		priv := generate(f, alg)
		f.Add(must(keys.MarshalPublicKeyPEM(priv.Public())))
		f.Add(pemEncode("CERTIFICATE", selfSigned(f, priv)))
	}
	f.Add(pemEncode("RSA PUBLIC KEY", x509.MarshalPKCS1PublicKey(&generate(f, "rsa").(*rsa.PrivateKey).PublicKey)))
	f.Add(pkcs8PEM(f, generate(f, keys.AlgECDSAP256)))
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pubs, err := keys.ParsePublicKeysPEM(data)
		if (err == nil) != (len(pubs) > 0) {
			t.Fatalf("%d keys with err %v", len(pubs), err)
		}
	})
}
