package verify_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client/verify"
	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
)

// oidIssuerV2 is Fulcio's OIDC issuer extension.
var oidIssuerV2 = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 57264, 1, 8}

// certify issues a certificate for pub from parent (self-signed when
// parent is nil): a CA, or a code-signing leaf with an e-mail SAN and,
// when issuer is set, Fulcio's issuer extension.
func certify(t *testing.T, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, ca bool, email, issuer string, nb, na time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "test " + email},
		NotBefore: nb, NotAfter: na}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	} else {
		tmpl.KeyUsage, tmpl.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}
		tmpl.EmailAddresses = []string{email}
		if issuer != "" {
			v, _ := asn1.MarshalWithParams(issuer, "utf8")
			tmpl.ExtraExtensions = []pkix.Extension{{Id: oidIssuerV2, Value: v}}
		}
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func keyInfo(t *testing.T, id string, k keys.Key, status string, nb, na *time.Time, chain [][]byte) proto.KeyInfo {
	t.Helper()
	pemKey, err := keys.MarshalPublicKeyPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return proto.KeyInfo{ID: id, PublicKey: string(pemKey), Status: status, NotBefore: nb, NotAfter: na, CertificateChain: attest.ChainPEM(chain)}
}

// writeTrusted writes trusted_root.json and trusted_keys.json as
// `signerctl trust export` does and returns the root's path.
func writeTrusted(t *testing.T, in trustroot.Input) string {
	t.Helper()
	m, err := trustroot.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	r, _ := m.MarshalRoot()
	k, _ := m.MarshalKeys()
	if err := trustroot.WriteFile(p, r); err != nil {
		t.Fatal(err)
	}
	if err := trustroot.WriteFile(trustroot.KeysPathFor(p), k); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTrustedRoot: bundles of each shape verify against a trusted root
// and its trusted keys (keyful bare, keyful with a chain, a certificate of
// no agent key with an identity policy), and each refusal is precise.
func TestTrustedRoot(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	now := time.Now()
	caKey := newKey(t, keys.AlgECDSAP256)
	ca := certify(t, caKey.Public(), nil, caKey, true, "", "", now.Add(-time.Hour), now.Add(24*time.Hour))

	// A keyful key with a chain, and a key whose certificate names an
	// identity and issuer as Fulcio's do (no agent key: keyless to a
	// verifier).
	chained := newKey(t, keys.AlgECDSAP256)
	chainedLeaf := certify(t, chained.Public(), ca, caKey, false, "hsm@signer.example", "", now.Add(-time.Minute), now.Add(time.Hour))
	eph := newKey(t, keys.AlgECDSAP256)
	ephLeaf := certify(t, eph.Public(), ca, caKey, false, "agent@node-1.example", "https://issuer.example", now.Add(-time.Minute), now.Add(10*time.Minute))
	sign := func(s attest.Signer) []byte {
		res, err := attest.Sign(ctx, f.payload, []attest.Signer{s})
		if err != nil {
			t.Fatal(err)
		}
		return res.Bundles[0]
	}
	chainedBundle := sign(attest.Signer{ID: "hsm", Source: "pkcs11", Key: chained, Chain: [][]byte{chainedLeaf.Raw, ca.Raw}})
	certBundle := sign(attest.Signer{ID: "eph", Source: "memory", Key: eph, Chain: [][]byte{ephLeaf.Raw, ca.Raw}})

	from, until := now.Add(-time.Hour), now.Add(time.Hour)
	root := writeTrusted(t, trustroot.Input{
		FulcioChain: []*x509.Certificate{ca},
		Keys: []proto.KeyInfo{
			keyInfo(t, "k1", f.k1, proto.KeyStatusActive, &from, &until, nil),
			keyInfo(t, "old", f.other, proto.KeyStatusRevoked, nil, nil, nil),
			keyInfo(t, "hsm", chained, proto.KeyStatusActive, nil, nil, [][]byte{chainedLeaf.Raw, ca.Raw}),
		},
	})
	tr, err := verify.LoadTrustedRoot(root, "")
	if err != nil {
		t.Fatal(err)
	}
	good := verify.Options{PredicateType: "stella.ops/sbom@v1", ArtifactSHA256: artifactHex}

	res, err := verify.Bundle(tr, f.bundle, good)
	if err != nil {
		t.Fatal(err)
	}
	if res.Mode != verify.ModeKeyful || len(res.Keys) != 1 || res.Keys[0].ID != "k1" || res.PayloadDigest != attest.Digest(f.payload) {
		t.Fatalf("bare key: %+v", res)
	}
	if res, err = verify.Bundle(tr, chainedBundle, good); err != nil || res.Keys[0].ID != "hsm" || res.CertificateIdentity != "hsm@signer.example" {
		t.Fatalf("chained key: %+v %v", res, err)
	}
	withID := good
	withID.Identities = []verify.CertIdentity{{Identity: "agent@node-1.example", Issuer: "https://issuer.example"}}
	if res, err = verify.Bundle(tr, certBundle, withID); err != nil || res.Mode != verify.ModeKeyless || res.CertificateIssuer != "https://issuer.example" || len(res.Keys) != 0 {
		t.Fatalf("certificate of no agent key: %+v %v", res, err)
	}
	// Envelopes verify with the trusted keys.
	if res, err = verify.Envelope(ctx, tr, f.envelope, good); err != nil || res.Keys[0].ID != "k1" {
		t.Fatalf("envelope: %+v %v", res, err)
	}

	revoked := sign(attest.Signer{ID: "old", Source: "memory", Key: f.other})
	stranger := sign(attest.Signer{ID: "x", Source: "memory", Key: newKey(t, keys.AlgECDSAP256)})
	otherID := good
	otherID.Identities = []verify.CertIdentity{{Identity: "someone@else.example", Issuer: "https://issuer.example"}}
	late, early := good, good
	late.At, early.At = until.Add(time.Minute), from.Add(-time.Minute)
	tlog := good
	tlog.RequireTlog = true
	for _, tc := range []struct {
		name   string
		bundle []byte
		opts   verify.Options
		want   error
	}{
		{"revoked key", revoked, good, verify.ErrKeyRevoked},
		{"unknown key", stranger, good, verify.ErrUnknownKey},
		{"after the key's window", f.bundle, late, verify.ErrKeyNotValid},
		{"before the key's window", f.bundle, early, verify.ErrKeyNotValid},
		{"certificate without an identity policy", certBundle, good, verify.ErrIdentityPolicy},
		{"certificate of another identity", certBundle, otherID, verify.ErrVerify},
		{"no transparency log entry", f.bundle, tlog, verify.ErrVerify},
		{"tampered statement", f.badBundle, good, verify.ErrVerify},
		{"another artifact", f.bundle, verify.Options{ArtifactSHA256: artifactHex[:63] + "0"}, verify.ErrVerify},
		{"another predicate type", f.bundle, verify.Options{PredicateType: "stella.ops/vex@v1", ArtifactSHA256: artifactHex}, verify.ErrVerify},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := verify.Bundle(tr, tc.bundle, tc.opts); !errors.Is(err, tc.want) || !errors.Is(err, verify.ErrVerify) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	// A trusted root without the CA: the chained key's certificate does not
	// chain to anything trusted.
	noCA := writeTrusted(t, trustroot.Input{Keys: []proto.KeyInfo{keyInfo(t, "k1", f.k1, proto.KeyStatusActive, nil, nil, nil)}})
	tr2, err := verify.LoadTrustedRoot(noCA, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Bundle(tr2, certBundle, withID); !errors.Is(err, verify.ErrVerify) {
		t.Fatalf("certificate of an untrusted CA: %v", err)
	}
	// A key set cannot check identities or log entries: it refuses them.
	if _, err := verify.Bundle(keySet(t, verify.Key{ID: "k1", Public: f.k1.Public()}), f.bundle, tlog); !errors.Is(err, verify.ErrVerify) {
		t.Fatalf("key set with RequireTlog: %v", err)
	}
	if _, err := verify.LoadTrustedRoot(filepath.Join(t.TempDir(), "missing.json"), ""); err == nil {
		t.Fatal("a missing trusted root loaded")
	}
}
