package keyless_test

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/sigstack"
)

// TestKeylessBundleVerifiesWithCosign: a keyless signature (ephemeral key,
// Fulcio certificate, RFC 3161 timestamp) verifies with the real cosign
// CLI offline against a trusted root naming Fulcio's CA and the TSA, and
// with VerifyTrusted; another identity or issuer, a tampered statement and
// another artifact are refused by both.
func TestKeylessBundleVerifiesWithCosign(t *testing.T) {
	art, digest := artifact(t, "scanned keylessly\n")
	res := signKeyless(t, newSigner(t, stack, nil), statement(t, digest))

	// The bundle carries the leaf certificate and one timestamp, no key
	// hint and no tlog entry; the DSSE keyid is empty.
	b := bundleMap(t, res.Bundles[0])
	vm := b["verificationMaterial"].(map[string]any)
	if _, ok := vm["certificate"]; !ok {
		t.Fatalf("no verificationMaterial.certificate: %s", res.Bundles[0])
	}
	if _, ok := vm["publicKey"]; ok {
		t.Fatal("keyless bundle carries a public key hint")
	}
	tsd, _ := vm["timestampVerificationData"].(map[string]any)
	if ts, _ := tsd["rfc3161Timestamps"].([]any); len(ts) != 1 {
		t.Fatalf("want one RFC 3161 timestamp, got %v", tsd)
	}
	if strings.Contains(string(res.Bundles[0]), `"keyid"`) {
		t.Fatal("bundle DSSE signature has a keyid")
	}

	// signingIdentity: keyless, the chain (leaf first) up to Fulcio's root,
	// the SAN and the issuer.
	id := res.SigningIdentity[0]
	if id.Mode != proto.ModeKeyless || id.KeySource != "keyless" || id.Algorithm != keys.AlgECDSAP256 {
		t.Errorf("signingIdentity %+v", id)
	}
	if id.CertificateIdentity != sigstack.Email || id.CertificateIssuer != stack.Issuer.URL {
		t.Errorf("identity %q issuer %q, want %q %q", id.CertificateIdentity, id.CertificateIssuer, sigstack.Email, stack.Issuer.URL)
	}
	if len(id.CertificateChain) != 1+len(stack.FulcioChain) {
		t.Fatalf("chain of %d certificates, want leaf + %d", len(id.CertificateChain), len(stack.FulcioChain))
	}
	blk, _ := pem.Decode([]byte(id.CertificateChain[0]))
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := keys.PublicKeyHint(leaf.PublicKey); h != id.PublicKeyHint {
		t.Error("publicKeyHint is not the leaf's key")
	}
	if last, _ := pem.Decode([]byte(id.CertificateChain[len(id.CertificateChain)-1])); !bytes.Equal(last.Bytes, stack.FulcioChain[len(stack.FulcioChain)-1].Raw) {
		t.Error("chain does not end with Fulcio's root")
	}
	if id.BundleHash != attest.Digest(res.Bundles[0]) {
		t.Error("bundleHash")
	}
	if _, err := json.Marshal(id); err != nil {
		t.Fatal(err)
	}

	rootPath, m := writeTrust(t, trustroot.Input{FulcioChain: stack.FulcioChain, TSAChain: stack.TSAChain})
	bp := writeBundle(t, res.Bundles[0])
	if out, err := cosignVerifyKeyless(t, rootPath, bp, art, "--insecure-ignore-tlog", "--use-signed-timestamps"); err != nil {
		t.Fatalf("cosign refused the keyless bundle: %v\n%s", err, out)
	}
	pol := attest.TrustPolicy{Identities: []attest.CertIdentity{{Identity: sigstack.Email, Issuer: stack.Issuer.URL}}}
	v, err := attest.VerifyTrusted(res.Bundles[0], m, pol, attest.Expect{PredicateType: predicateType, ArtifactSHA256: digest})
	if err != nil {
		t.Fatal(err)
	}
	if v.Mode != proto.ModeKeyless || len(v.SignedAt) != 1 || v.CertificateIdentity != sigstack.Email || v.Logged {
		t.Errorf("verified %+v", v)
	}

	for name, extra := range map[string][]string{
		"other identity": {"--certificate-identity", "someone-else@node-1.example"},
		"other issuer":   {"--certificate-oidc-issuer", "https://issuer.example"},
	} {
		t.Run(name, func(t *testing.T) {
			if out, err := cosignVerifyKeyless(t, rootPath, bp, art, append([]string{"--insecure-ignore-tlog", "--use-signed-timestamps"}, extra...)...); err == nil {
				t.Fatalf("cosign accepted the bundle:\n%s", out)
			}
		})
	}
	for name, p := range map[string]attest.TrustPolicy{
		"library, other identity": {Identities: []attest.CertIdentity{{Identity: "someone-else@node-1.example", Issuer: stack.Issuer.URL}}},
		"library, other issuer":   {Identities: []attest.CertIdentity{{Identity: sigstack.Email, Issuer: "https://issuer.example"}}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := attest.VerifyTrusted(res.Bundles[0], m, p, attest.Expect{ArtifactSHA256: digest}); !errors.Is(err, attest.ErrVerify) {
				t.Fatalf("got %v, want ErrVerify", err)
			}
		})
	}
	t.Run("no identity policy", func(t *testing.T) {
		if _, err := attest.VerifyTrusted(res.Bundles[0], m, attest.TrustPolicy{}, attest.Expect{ArtifactSHA256: digest}); !errors.Is(err, attest.ErrIdentityPolicy) {
			t.Fatalf("got %v, want ErrIdentityPolicy", err)
		}
	})
	t.Run("tampered statement", func(t *testing.T) {
		tampered := bytes.Replace(res.Bundles[0], []byte(`"payload":"`), []byte(`"payload":"AA`), 1)
		if out, err := cosignVerifyKeyless(t, rootPath, writeBundle(t, tampered), art, "--insecure-ignore-tlog", "--use-signed-timestamps"); err == nil {
			t.Fatalf("cosign accepted a tampered bundle:\n%s", out)
		}
		if _, err := attest.VerifyTrusted(tampered, m, pol, attest.Expect{ArtifactSHA256: digest}); err == nil {
			t.Fatal("VerifyTrusted accepted a tampered bundle")
		}
	})
	t.Run("other artifact", func(t *testing.T) {
		other, otherDigest := artifact(t, "another artifact\n")
		if out, err := cosignVerifyKeyless(t, rootPath, bp, other, "--insecure-ignore-tlog", "--use-signed-timestamps"); err == nil {
			t.Fatalf("cosign accepted the bundle for another artifact:\n%s", out)
		}
		if _, err := attest.VerifyTrusted(res.Bundles[0], m, pol, attest.Expect{ArtifactSHA256: otherDigest}); err == nil {
			t.Fatal("VerifyTrusted accepted another artifact")
		}
	})
	t.Run("trusted root without the TSA", func(t *testing.T) {
		noTSA, _ := writeTrust(t, trustroot.Input{FulcioChain: stack.FulcioChain})
		if out, err := cosignVerifyKeyless(t, noTSA, bp, art, "--insecure-ignore-tlog", "--use-signed-timestamps"); err == nil {
			t.Fatalf("cosign accepted a timestamp from an untrusted TSA:\n%s", out)
		}
	})
}

// TestKeylessAfterExpiryLibraryFakeClock: the verifier's clock is moved
// past the certificate's end (TrustPolicy.Now, a fake clock). The signed
// timestamp dates the signature, so the bundle still verifies; the same
// bundle without its timestamp is refused at that time, and accepted at
// the real time (the leaf is ten minutes old at most).
func TestKeylessAfterExpiryLibraryFakeClock(t *testing.T) {
	_, digest := artifact(t, "verified later\n")
	res := signKeyless(t, newSigner(t, stack, nil), statement(t, digest))
	_, m := writeTrust(t, trustroot.Input{FulcioChain: stack.FulcioChain, TSAChain: stack.TSAChain})
	blk, _ := pem.Decode([]byte(res.SigningIdentity[0].CertificateChain[0]))
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	later := leaf.NotAfter.Add(24 * time.Hour)
	pol := attest.TrustPolicy{
		Identities: []attest.CertIdentity{{Identity: sigstack.Email, Issuer: stack.Issuer.URL}},
		Now:        func() time.Time { return later },
	}
	exp := attest.Expect{PredicateType: predicateType, ArtifactSHA256: digest}
	v, err := attest.VerifyTrusted(res.Bundles[0], m, pol, exp)
	if err != nil {
		t.Fatalf("timestamped keyless bundle after expiry: %v", err)
	}
	if len(v.SignedAt) != 1 || v.SignedAt[0].After(leaf.NotAfter) || v.SignedAt[0].Before(leaf.NotBefore.Add(-time.Second)) {
		t.Errorf("signed at %v, certificate %v..%v", v.SignedAt, leaf.NotBefore, leaf.NotAfter)
	}

	var b map[string]any
	if err := json.Unmarshal(res.Bundles[0], &b); err != nil {
		t.Fatal(err)
	}
	delete(b["verificationMaterial"].(map[string]any), "timestampVerificationData")
	untimed, _ := json.Marshal(b)
	if _, err := attest.VerifyTrusted(untimed, m, pol, exp); !errors.Is(err, attest.ErrVerify) || !strings.Contains(err.Error(), "certificate not valid") {
		t.Fatalf("untimestamped bundle after expiry: got %v, want a refusal for the certificate's time", err)
	}
	pol.Now = nil
	if _, err := attest.VerifyTrusted(untimed, m, pol, exp); err != nil {
		t.Fatalf("untimestamped bundle while the certificate is valid: %v", err)
	}
}
