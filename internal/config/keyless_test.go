package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

const keylessOK = `
keyless:
  fulcioURL: https://fulcio.example
  tsaURL: https://tsa.example/api/v1/timestamp
  identity: {tokenFile: tokens/sigstore}
`

func TestKeylessConfig(t *testing.T) {
	c, err := Parse([]byte(minimal+keylessOK), "/etc/sa", "")
	if err != nil {
		t.Fatal(err)
	}
	k := c.Keyless
	if !k.Enabled() || k.Timeout != DefaultKeylessTimeout || k.Identity.TokenFile != "/etc/sa/tokens/sigstore" {
		t.Fatalf("keyless %+v", k)
	}
	cc := minimal + `
keyless:
  fulcioURL: http://127.0.0.1:5555
  tsaURL: http://127.0.0.1:5556/api/v1/timestamp
  reuseWindow: 1m
  identity:
    clientCredentials: {tokenURL: https://authority.example/token, clientID: node-1, clientSecretFile: keyless.secret}
`
	c, err = Parse([]byte(cc), "/etc/sa", "")
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Keyless.Identity.ClientCredentials; got.Audience != "sigstore" || got.ClientSecretFile != "/etc/sa/keyless.secret" {
		t.Fatalf("client credentials %+v", got)
	}
	if c, err := Parse([]byte(minimal), "/etc/sa", ""); err != nil || c.Keyless.Enabled() {
		t.Fatalf("keyless on without a block: %v", err)
	}
}

func TestKeylessRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"no TSA":              "keyless: {fulcioURL: https://fulcio.example, identity: {tokenFile: /t}}",
		"no identity":         "keyless: {fulcioURL: https://fulcio.example, tsaURL: https://tsa.example}",
		"two identities":      "keyless: {fulcioURL: https://fulcio.example, tsaURL: https://tsa.example, identity: {tokenFile: /t, clientCredentials: {tokenURL: https://a.example/token, clientID: c, clientSecretFile: /s}}}",
		"plain http Fulcio":   "keyless: {fulcioURL: http://fulcio.example, tsaURL: https://tsa.example, identity: {tokenFile: /t}}",
		"relative URL":        "keyless: {fulcioURL: fulcio.example, tsaURL: https://tsa.example, identity: {tokenFile: /t}}",
		"client without ID":   "keyless: {fulcioURL: https://fulcio.example, tsaURL: https://tsa.example, identity: {clientCredentials: {tokenURL: https://a.example/token, clientSecretFile: /s}}}",
		"client without URL":  "keyless: {fulcioURL: https://fulcio.example, tsaURL: https://tsa.example, identity: {clientCredentials: {clientID: c, clientSecretFile: /s}}}",
		"long reuse window":   "keyless: {fulcioURL: https://fulcio.example, tsaURL: https://tsa.example, reuseWindow: 1h, identity: {tokenFile: /t}}",
		"long timeout":        "keyless: {fulcioURL: https://fulcio.example, tsaURL: https://tsa.example, timeout: 5m, identity: {tokenFile: /t}}",
		"TSA without Fulcio":  "keyless: {tsaURL: https://tsa.example}",
		"missing chain file":  "keyless: {fulcioURL: https://fulcio.example, tsaURL: https://tsa.example, fulcioChainFile: /nonexistent.pem, identity: {tokenFile: /t}}",
		"unknown keyless key": "keyless: {fulcioURL: https://fulcio.example, tsaURL: https://tsa.example, identity: {tokenFile: /t}, other: 1}",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(minimal+doc+"\n"), "/etc/sa", ""); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestCertificateChainFile(t *testing.T) {
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "k"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	os.WriteFile(filepath.Join(dir, "chain.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1}}), 0o644)
	with := func(f string) string {
		return minimal[:len(minimal)-1] + "\n    certificateChainFile: " + f + "\n"
	}
	c, err := Parse([]byte(with("chain.pem")), dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Keys[0].CertificateChainFile != filepath.Join(dir, "chain.pem") {
		t.Fatalf("path %q", c.Keys[0].CertificateChainFile)
	}
	for name, f := range map[string]string{"missing": "nope.pem", "not a certificate": "key.pem"} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(with(f)), dir, ""); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func FuzzParseCertificateChain(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "k"}, NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	one := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	f.Add(one)
	f.Add(append(append([]byte{}, one...), one...))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		certs, err := ParseCertificateChain(b)
		if err == nil && len(certs) == 0 {
			t.Fatal("accepted an empty chain")
		}
	})
}
