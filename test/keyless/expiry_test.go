package keyless_test

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/test/sigstack"
)

// caLifetime is how long the short-lived Fulcio CA of
// TestKeylessAfterExpiryCosign lives: long enough for a loaded machine to
// start Fulcio and sign, short enough to wait for.
const caLifetime = 60 * time.Second

// TestKeylessAfterExpiryCosign: cosign verifies a keyless bundle after its
// certificate chain has expired, offline, because the RFC 3161 timestamp
// dates the signature (--use-signed-timestamps); without that flag cosign
// checks the chain at the current time and refuses it.
//
// Fulcio v1.8.8 issues leaves for a fixed ten minutes, and Go binaries
// read the clock without libc, so faketime cannot move cosign's clock.
// Instead this Fulcio signs with a short-lived CA (fileca): the test waits
// until the CA has expired, which makes every chain through it expired.
func TestKeylessAfterExpiryCosign(t *testing.T) {
	now := time.Now()
	ca := sigstack.NewCA(t, "short-lived fulcio", now.Add(-time.Minute), now.Add(caLifetime))
	short := sigstack.Start(t, sigstack.Options{Fulcio: true, FulcioCA: ca})
	if len(short.FulcioChain) != 1 || !short.FulcioChain[0].Equal(ca.Cert) {
		t.Fatal("Fulcio does not serve the short-lived CA")
	}
	art, digest := artifact(t, "verified after the CA expired\n")
	res := signKeyless(t, newSigner(t, short, nil), statement(t, digest))
	blk, _ := pem.Decode([]byte(res.SigningIdentity[0].CertificateChain[0]))
	leaf, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rootPath, m := writeTrust(t, trustroot.Input{FulcioChain: short.FulcioChain, TSAChain: stack.TSAChain})
	bp := writeBundle(t, res.Bundles[0])
	verify := func(extra ...string) (string, error) {
		args := []string{"verify-blob-attestation", "--bundle", bp, "--trusted-root", rootPath,
			"--certificate-identity", sigstack.Email, "--certificate-oidc-issuer", short.Issuer.URL,
			"--insecure-ignore-sct", "--insecure-ignore-tlog", "--type", predicateType}
		return cosign(t, append(append(args, extra...), art)...)
	}
	for _, extra := range [][]string{{"--use-signed-timestamps"}, nil} {
		if out, err := verify(extra...); err != nil {
			t.Fatalf("cosign %v refused the bundle while the CA is valid: %v\n%s", extra, err, out)
		}
	}

	// Wait until the CA (and so the chain) has expired.
	if d := time.Until(ca.Cert.NotAfter.Add(2 * time.Second)); d > 0 {
		t.Logf("waiting %s for the CA to expire (leaf valid until %s)", d.Round(time.Second), leaf.NotAfter.Format(time.TimeOnly))
		time.Sleep(d)
	}
	if out, err := verify("--use-signed-timestamps"); err != nil {
		t.Fatalf("cosign refused the timestamped bundle after the chain expired: %v\n%s", err, out)
	}
	// The same command passed before the wait: only the time changed.
	if out, err := verify(); err == nil || !strings.Contains(out, "leaf certificate") {
		t.Fatalf("cosign without --use-signed-timestamps: want a refusal of the expired chain, got %v:\n%s", err, out)
	}
	pol := attest.TrustPolicy{Identities: []attest.CertIdentity{{Identity: sigstack.Email, Issuer: short.Issuer.URL}}}
	if _, err := attest.VerifyTrusted(res.Bundles[0], m, pol, attest.Expect{PredicateType: predicateType, ArtifactSHA256: digest}); err != nil {
		t.Fatalf("VerifyTrusted after the chain expired: %v", err)
	}
}
