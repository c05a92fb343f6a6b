package agent_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// keysCA is a self-signed CA that issues leaves for keys.
type keysCA struct {
	cert *x509.Certificate
	key  crypto.Signer
}

func newKeysCA(t *testing.T) *keysCA {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keys CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &keysCA{cert: c, key: k}
}

// leaf issues a leaf for pub valid from nb to na with the given extended
// key usage and a URI SAN.
func (ca *keysCA) leaf(t *testing.T, pub crypto.PublicKey, nb, na time.Time, eku x509.ExtKeyUsage) *x509.Certificate {
	t.Helper()
	u, _ := url.Parse("https://signer.example/keys/dev")
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "dev"},
		NotBefore: nb, NotAfter: na, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku}, URIs: []*url.URL{u}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func chainPEM(certs ...*x509.Certificate) string {
	var b strings.Builder
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.String()
}

// devPublic reads the dev key's public key from the config's file: URI.
func devPublic(t *testing.T, c *config.Config) crypto.PublicKey {
	t.Helper()
	for _, k := range c.Keys {
		if k.ID == "dev" {
			b, err := os.ReadFile(strings.TrimPrefix(k.URI, "file:"))
			if err != nil {
				t.Fatal(err)
			}
			priv, err := keys.ParsePrivateKeyPEM(b, nil)
			if err != nil {
				t.Fatal(err)
			}
			return priv.Public()
		}
	}
	t.Fatal("no dev key")
	return nil
}

// withChain writes chain(pub) to a file and names it as the dev key's
// certificateChainFile.
func withChain(t *testing.T, chain func(pub crypto.PublicKey) string) func(c *config.Config) {
	p := filepath.Join(t.TempDir(), "dev.chain.pem")
	return func(c *config.Config) {
		if err := os.WriteFile(p, []byte(chain(devPublic(t, c))), 0o644); err != nil {
			t.Fatal(err)
		}
		for i := range c.Keys {
			if c.Keys[i].ID == "dev" {
				c.Keys[i].CertificateChainFile = p
			}
		}
	}
}

// TestKeyCertificateChain: a key's certificateChainFile goes into its
// bundles (the leaf), signingIdentity and GET /keys (the chain) and the
// allow record (the leaf's fingerprint and identity).
func TestKeyCertificateChain(t *testing.T) {
	ctx := context.Background()
	ca := newKeysCA(t)
	h := harness.StartAgent(t, harness.Options{Edit: withChain(t, func(pub crypto.PublicKey) string {
		return chainPEM(ca.leaf(t, pub, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), x509.ExtKeyUsageCodeSigning), ca.cert)
	})})
	res, err := h.Client.SignDSSE(ctx, signRequest())
	if err != nil {
		t.Fatal(err)
	}
	id := res.SigningIdentity[0]
	if len(id.CertificateChain) != 2 || id.CertificateIdentity != "https://signer.example/keys/dev" || id.Mode != proto.ModeKeyful {
		t.Fatalf("signing identity %+v", id)
	}
	if !strings.Contains(string(res.Bundles[0]), `"certificate":{"rawBytes"`) || strings.Contains(string(res.Bundles[0]), `"publicKey"`) {
		t.Fatalf("bundle %s", res.Bundles[0])
	}
	ks, err := h.Client.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks.Keys[0].CertificateChain) != 2 || ks.Keys[0].CertificateChain[1] != chainPEM(ca.cert) {
		t.Fatalf("GET /keys chain %v", ks.Keys[0].CertificateChain)
	}
	s := h.Signed()
	if len(s) != 1 || len(s[0].Certificates) != 1 || s[0].Certificates[0].KeyID != "dev" || !strings.HasPrefix(s[0].Certificates[0].Fingerprint, "sha256:") ||
		s[0].Certificates[0].Identity != "https://signer.example/keys/dev" {
		t.Fatalf("allow record %+v", s)
	}
}

// TestKeyCertificateChainRefused: a chain that does not fit its key fails
// the load, naming the problem; the running configuration stays.
func TestKeyCertificateChainRefused(t *testing.T) {
	ca, other := newKeysCA(t), newKeysCA(t)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	valid := func(pub crypto.PublicKey) *x509.Certificate {
		return ca.leaf(t, pub, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), x509.ExtKeyUsageCodeSigning)
	}
	h := harness.StartAgent(t, harness.Options{})
	for _, tc := range []struct {
		name  string
		chain func(pub crypto.PublicKey) string
		want  string
	}{
		{"leaf of another key", func(crypto.PublicKey) string { return chainPEM(valid(&otherKey.PublicKey), ca.cert) }, "does not certify the key"},
		{"leaf not signed by the next certificate", func(pub crypto.PublicKey) string { return chainPEM(valid(pub), other.cert) }, "is not signed by certificate 1"},
		{"leaf not for code signing", func(pub crypto.PublicKey) string {
			return chainPEM(ca.leaf(t, pub, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), x509.ExtKeyUsageServerAuth), ca.cert)
		}, "code signing"},
		{"not a certificate", func(crypto.PublicKey) string { return "-----BEGIN PUBLIC KEY-----\nAA==\n-----END PUBLIC KEY-----\n" }, "certificateChainFile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Edit the file as written: config.Load validates the chain
			// file's form, the agent its fit.
			b, _ := os.ReadFile(h.Config)
			defer harness.WriteAtomic(t, h.Config, string(b))
			harness.EditConfig(t, h.Config, withChain(t, tc.chain))
			err := h.Reload(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("reload: %v, want an error containing %q", err, tc.want)
			}
			if _, err := h.Client.SignDSSE(context.Background(), signRequest()); err != nil {
				t.Fatalf("the running configuration stopped signing: %v", err)
			}
		})
	}
}

// TestKeyCertificateExpired: a key whose leaf certificate has expired
// loads, but signs nothing (key_unavailable: the bundle would not
// verify) and makes the agent unready.
func TestKeyCertificateExpired(t *testing.T) {
	ca := newKeysCA(t)
	h := harness.StartAgent(t, harness.Options{Edit: withChain(t, func(pub crypto.PublicKey) string {
		return chainPEM(ca.leaf(t, pub, time.Now().Add(-2*time.Hour), time.Now().Add(-time.Hour), x509.ExtKeyUsageCodeSigning), ca.cert)
	})})
	_, err := h.Client.SignDSSE(context.Background(), signRequest())
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != proto.CodeKeyUnavailable || !strings.Contains(ce.Detail, "certificate has expired") {
		t.Fatalf("got %v", err)
	}
	if len(h.Signed()) != 0 {
		t.Fatal("signed with an expired certificate")
	}
	if _, err := h.Client.Ready(context.Background()); !errors.As(err, &ce) || ce.Status != 503 {
		t.Fatalf("ready with an expired key certificate: %v", err)
	}
}

// chainKey is a key whose backend keeps certificates next to it, as a
// PKCS#11 token does: CertificateChain returns chain, or err.
type chainKey struct {
	keys.Key
	chain func(pub crypto.PublicKey) [][]byte
	err   error
}

func (k *chainKey) CertificateChain(context.Context) ([][]byte, error) {
	if k.err != nil {
		return nil, k.err
	}
	return k.chain(k.Public()), nil
}

// TestKeyCertificateChainFromBackend: a backend's certificates (the
// certificateChainer interface PKCS#11 keys implement) become the key's
// chain; a backend that stops answering while they are read leaves the
// key pending instead of failing the start.
func TestKeyCertificateChainFromBackend(t *testing.T) {
	ca := newKeysCA(t)
	open := func(err error) keys.OpenFunc {
		return func(ctx context.Context, uri string) (keys.Key, error) {
			k, oerr := (&keys.Opener{}).Open(ctx, "memory:"+strings.TrimPrefix(uri, "chain:"))
			if oerr != nil {
				return nil, oerr
			}
			return &chainKey{Key: k, err: err, chain: func(pub crypto.PublicKey) [][]byte {
				return [][]byte{ca.leaf(t, pub, time.Now().Add(-time.Minute), time.Now().Add(time.Hour), x509.ExtKeyUsageCodeSigning).Raw, ca.cert.Raw}
			}}, nil
		}
	}
	ctx := context.Background()
	t.Run("chain from the backend", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{Edit: harness.WithDefaultKey("hsm", "chain:hsm"),
			Opener: &keys.Opener{Backends: map[string]keys.OpenFunc{"chain": open(nil)}}})
		res, err := h.Client.SignDSSE(ctx, signRequest())
		if err != nil {
			t.Fatal(err)
		}
		if id := res.SigningIdentity[0]; id.KeyID != "hsm" || len(id.CertificateChain) != 2 {
			t.Fatalf("signing identity %+v", id)
		}
	})
	t.Run("backend gone while reading certificates", func(t *testing.T) {
		h := harness.StartAgent(t, harness.Options{Edit: harness.WithKey("hsm", "chain:hsm"),
			Opener: &keys.Opener{Backends: map[string]keys.OpenFunc{"chain": open(keys.ErrBackendUnavailable)}}})
		hl, err := h.Client.Ready(ctx)
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Status != 503 {
			t.Fatalf("ready with a pending key: %+v %v", hl, err)
		}
		ks, err := h.Client.Keys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks.Keys {
			if k.ID == "hsm" {
				t.Fatal("GET /keys lists the pending key")
			}
		}
	})
}
