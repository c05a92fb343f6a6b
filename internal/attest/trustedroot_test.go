package attest

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
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
)

func pubPEM(t *testing.T, pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// localChain issues a code-signing leaf for pub (URI SAN) from a new CA.
func localChain(t *testing.T, pub crypto.PublicKey, san string) [][]byte {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "local CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	u, _ := url.Parse(san)
	leafT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "key"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}, URIs: []*url.URL{u}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafT, ca, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{leafDER, caDER}
}

// TestVerifyTrusted covers keyful bundles (a key hint, and a key with a
// certificate chain) against trust material built in memory: windows,
// revocation, unknown keys, identity policy and tlog requirement.
func TestVerifyTrusted(t *testing.T) {
	ctx := context.Background()
	st, err := BuildStatement(request(t))
	if err != nil {
		t.Fatal(err)
	}
	exp := Expect{PredicateType: "stella.ops/sbom@v1", ArtifactSHA256: artifactSHA}
	bare, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chained, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	chain := localChain(t, &chained.PublicKey, "https://keys.example/chained")
	sign := func(s Signer) []byte {
		res, err := Sign(ctx, st, []Signer{s})
		if err != nil {
			t.Fatal(err)
		}
		return res.Bundles[0]
	}
	bareBundle := sign(Signer{ID: "bare", Source: "memory", Key: bare})
	chainBundle := sign(Signer{ID: "chained", Source: "pkcs11", Key: chained, Chain: chain})
	nb, na := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	info := func(id string, k *ecdsa.PrivateKey, status string, c [][]byte) proto.KeyInfo {
		return proto.KeyInfo{ID: id, PublicKey: pubPEM(t, &k.PublicKey), Status: status, NotBefore: &nb, NotAfter: &na, CertificateChain: ChainPEM(c)}
	}
	build := func(status string) *trustroot.Material {
		m, err := trustroot.Build(trustroot.Input{Keys: []proto.KeyInfo{info("bare", bare, status, nil), info("chained", chained, status, chain)}})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	active, revoked, verifyOnly := build(proto.KeyStatusActive), build(proto.KeyStatusRevoked), build(proto.KeyStatusVerifyOnly)

	for _, b := range [][]byte{bareBundle, chainBundle} {
		for _, m := range []*trustroot.Material{active, verifyOnly} {
			v, err := VerifyTrusted(b, m, TrustPolicy{}, exp)
			if err != nil {
				t.Fatal(err)
			}
			if v.Mode != proto.ModeKeyful || v.KeyID == "" || len(v.KeyHints) != 1 {
				t.Errorf("verified %+v", v)
			}
		}
	}
	v, _ := VerifyTrusted(chainBundle, active, TrustPolicy{}, exp)
	if v.CertificateIdentity != "https://keys.example/chained" || v.KeyID != "chained" {
		t.Errorf("chained: %+v", v)
	}
	late := func() time.Time { return na.Add(time.Minute) }
	other := TrustPolicy{Identities: []CertIdentity{{Identity: "https://keys.example/other", IssuerRegexp: ".*"}}}
	for _, tc := range []struct {
		name string
		b    []byte
		m    *trustroot.Material
		pol  TrustPolicy
		want error
	}{
		{"revoked bare key", bareBundle, revoked, TrustPolicy{}, ErrKeyRevoked},
		{"revoked chained key", chainBundle, revoked, TrustPolicy{}, ErrKeyRevoked},
		{"bare key after its window", bareBundle, active, TrustPolicy{Now: late}, ErrKeyNotValid},
		{"unknown key", bareBundle, &trustroot.Material{Root: active.Root}, TrustPolicy{}, ErrUnknownKey},
		{"keyless certificate without policy", chainBundle, &trustroot.Material{Root: active.Root}, TrustPolicy{}, ErrIdentityPolicy},
		{"chained key, other identity", chainBundle, active, other, ErrVerify},
		{"tlog required", bareBundle, active, TrustPolicy{RequireTlog: true}, ErrVerify},
		{"not a bundle", []byte(`{}`), active, TrustPolicy{}, ErrVerify},
		{"no trust material", bareBundle, nil, TrustPolicy{}, ErrVerify},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyTrusted(tc.b, tc.m, tc.pol, exp); !errors.Is(err, tc.want) || !errors.Is(err, ErrVerify) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := VerifyTrusted(bareBundle, active, TrustPolicy{}, Expect{ArtifactSHA256: "00" + artifactSHA[2:]}); err == nil {
		t.Error("accepted another artifact")
	}
}

// TestCertifiedSignerRefused: a keyless signer needs its certificate and a
// timestamper; a chain whose leaf certifies another key is refused.
func TestCertifiedSignerRefused(t *testing.T) {
	st, _ := BuildStatement(request(t))
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, s := range map[string]Signer{
		"keyless without certificate": {ID: "kl", Key: k, Mode: proto.ModeKeyless},
		"foreign leaf":                {ID: "k", Key: k, Chain: localChain(t, &other.PublicKey, "https://x.example")},
		"garbage leaf":                {ID: "k", Key: k, Chain: [][]byte{{1, 2, 3}}},
	} {
		t.Run(name, func(t *testing.T) {
			if res, err := Sign(context.Background(), st, []Signer{s}); err == nil || res != nil {
				t.Fatal("signed")
			}
		})
	}
	// The chained bundle's signingIdentity: chain PEM, identity, keyful.
	res, err := Sign(context.Background(), st, []Signer{{ID: "k", Source: "file", Key: k, Chain: localChain(t, &k.PublicKey, "https://x.example")}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.SigningIdentity[0]
	if id.Mode != proto.ModeKeyful || len(id.CertificateChain) != 2 || id.CertificateIdentity != "https://x.example" || id.CertificateIssuer != "" {
		t.Fatalf("%+v", id)
	}
	if h, _ := keys.PublicKeyHint(&k.PublicKey); id.PublicKeyHint != h {
		t.Error("hint")
	}
}
