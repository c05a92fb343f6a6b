package keyless_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"math/big"
	"net/url"
	"strings"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
	"github.com/stellaops/signer-agent/test/sigstack"
)

// hsmKeyIdentity is the URI SAN of the HSM key's certificate.
const hsmKeyIdentity = "https://signer-agent.example/keys/hsm-2026"

// issueLeaf issues a code-signing certificate for pub from ca, with a URI
// SAN, valid for an hour.
func issueLeaf(t *testing.T, ca *sigstack.CA, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	u, _ := url.Parse(hsmKeyIdentity)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "hsm-2026", Organization: []string{"signer-agent tests"}},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning},
		URIs:         []*url.URL{u},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// importCertificates stores certificate objects on the token of keyURI:
// the leaf under the key's CKA_ID, the CA certificates under their own.
func importCertificates(t *testing.T, keyURI string, leaf *x509.Certificate, cas ...*x509.Certificate) {
	t.Helper()
	u, err := pkcs11.ParseURI(keyURI)
	if err != nil {
		t.Fatal(err)
	}
	p := p11.New(harness.SoftHSMModule)
	if p == nil {
		t.Fatal("load SoftHSM2")
	}
	defer p.Destroy()
	if err := p.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer p.Finalize()
	slots, err := p.GetSlotList(true)
	if err != nil || len(slots) == 0 {
		t.Fatal("no SoftHSM2 slot", err)
	}
	s, err := p.OpenSession(slots[0], p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	defer p.CloseSession(s)
	if err := p.Login(s, p11.CKU_USER, harness.SoftHSMPIN); err != nil {
		t.Fatal(err)
	}
	put := func(c *x509.Certificate, id []byte, label string) {
		if _, err := p.CreateObject(s, []*p11.Attribute{
			p11.NewAttribute(p11.CKA_CLASS, p11.CKO_CERTIFICATE),
			p11.NewAttribute(p11.CKA_CERTIFICATE_TYPE, p11.CKC_X_509),
			p11.NewAttribute(p11.CKA_TOKEN, true),
			p11.NewAttribute(p11.CKA_ID, id),
			p11.NewAttribute(p11.CKA_LABEL, label),
			p11.NewAttribute(p11.CKA_SUBJECT, c.RawSubject),
			p11.NewAttribute(p11.CKA_ISSUER, c.RawIssuer),
			p11.NewAttribute(p11.CKA_VALUE, c.Raw),
		}); err != nil {
			t.Fatal(err)
		}
	}
	put(leaf, u.ID, u.Object)
	for i, c := range cas {
		put(c, []byte{0xca, byte(i)}, "ca")
	}
}

// TestPKCS11CertificateChain: a PKCS#11 key with a certificate object
// next to it (and its CA's certificate on the token) signs a bundle that
// carries the leaf certificate; signingIdentity carries the chain; the
// bundle verifies with cosign (trusted root holding the key's CA) and
// with VerifyTrusted; once the key is revoked in the trusted keys, it is
// refused.
func TestPKCS11CertificateChain(t *testing.T) {
	ctx := context.Background()
	uri := harness.SoftHSMKey(t, "chained")
	var o pkcs11.Opener
	k, err := o.OpenKey(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	pub := k.Public()
	k.Close()
	ca := sigstack.NewCA(t, "hsm issuing CA", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	leaf := issueLeaf(t, ca, pub)
	importCertificates(t, uri, leaf, ca.Cert)

	k, err = o.OpenKey(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	chain, err := k.CertificateChain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(chain) != 2 || !leaf.Equal(mustParse(t, chain[0])) || !ca.Cert.Equal(mustParse(t, chain[1])) {
		t.Fatalf("chain of %d certificates, want the leaf and the CA", len(chain))
	}

	art, digest := artifact(t, "signed by a chained HSM key\n")
	res, err := attest.Sign(ctx, statement(t, digest), []attest.Signer{{ID: "hsm-2026", Source: "pkcs11", Key: k, Chain: chain}})
	if err != nil {
		t.Fatal(err)
	}
	id := res.SigningIdentity[0]
	if id.Mode != proto.ModeKeyful || len(id.CertificateChain) != 2 || id.CertificateIdentity != hsmKeyIdentity || id.CertificateIssuer != "" {
		t.Fatalf("signingIdentity %+v", id)
	}
	saveExample(t, "keyful-chained-bundle.json", res.Bundles[0])
	idJSON, _ := json.MarshalIndent(res.SigningIdentity, "", "  ")
	saveExample(t, "keyful-chained-signing-identity.json", idJSON)
	vm := bundleMap(t, res.Bundles[0])["verificationMaterial"].(map[string]any)
	if _, ok := vm["certificate"]; !ok {
		t.Fatalf("no certificate in the bundle: %s", res.Bundles[0])
	}

	info := proto.KeyInfo{ID: "hsm-2026", Algorithm: id.Algorithm, PublicKey: string(sigstack.PublicKeyPEM(t, pub)),
		PublicKeyHint: id.PublicKeyHint, Source: "pkcs11", Status: proto.KeyStatusActive, CertificateChain: id.CertificateChain}
	rootPath, m := writeTrust(t, trustroot.Input{Keys: []proto.KeyInfo{info}})
	v, err := attest.VerifyTrusted(res.Bundles[0], m, attest.TrustPolicy{}, attest.Expect{PredicateType: predicateType, ArtifactSHA256: digest})
	if err != nil {
		t.Fatal(err)
	}
	if v.Mode != proto.ModeKeyful || v.KeyID != "hsm-2026" || v.CertificateIdentity != hsmKeyIdentity {
		t.Errorf("verified %+v", v)
	}
	// With an identity policy, it must match too.
	if _, err := attest.VerifyTrusted(res.Bundles[0], m, attest.TrustPolicy{Identities: []attest.CertIdentity{{Identity: "https://other.example", IssuerRegexp: ".*"}}}, attest.Expect{ArtifactSHA256: digest}); err == nil {
		t.Error("a certificate of another identity was accepted")
	}

	bp := writeBundle(t, res.Bundles[0])
	if out, err := cosign(t, "verify-blob-attestation", "--bundle", bp, "--trusted-root", rootPath,
		"--certificate-identity", hsmKeyIdentity, "--certificate-oidc-issuer-regexp", ".*",
		"--insecure-ignore-sct", "--insecure-ignore-tlog", "--type", predicateType, art); err != nil {
		t.Fatalf("cosign refused the chained keyful bundle: %v\n%s", err, out)
	}

	info.Status = proto.KeyStatusRevoked
	_, revoked := writeTrust(t, trustroot.Input{Keys: []proto.KeyInfo{info}})
	if _, err := attest.VerifyTrusted(res.Bundles[0], revoked, attest.TrustPolicy{}, attest.Expect{ArtifactSHA256: digest}); !errors.Is(err, attest.ErrKeyRevoked) {
		t.Fatalf("revoked chained key: got %v, want ErrKeyRevoked", err)
	}
	// A certificate of a key not in the trusted keys is keyless to the
	// verifier: it needs an identity policy and a CA it trusts.
	if _, err := attest.VerifyTrusted(res.Bundles[0], &trustroot.Material{Root: m.Root}, attest.TrustPolicy{}, attest.Expect{ArtifactSHA256: digest}); !errors.Is(err, attest.ErrIdentityPolicy) {
		t.Fatalf("unlisted chained key: got %v, want ErrIdentityPolicy", err)
	}
	if strings.Contains(string(res.Bundles[0]), "publicKey") {
		t.Error("chained bundle also carries a public key hint")
	}
	_ = keys.AlgECDSAP256
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
