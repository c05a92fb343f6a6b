package keyless_test

import (
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/keys/pkcs11"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
	"github.com/stellaops/signer-agent/test/sigstack"
)

// These tests run keyless signing through the agent (harness.StartAgent,
// in process) against the real Fulcio, TSA and Rekor of the package's
// stack, and check its output with the real cosign CLI and signerctl, all
// offline (the test binary has only loopback).

// keylessEdit configures the agent's keyless signing on st (Fulcio's CA
// from its trust bundle, timestamps checked against the TSA's chain, a
// token file from st's issuer) with the dev tenant's policy.
func keylessEdit(t *testing.T, st *sigstack.Stack, policy string) func(c *config.Config) {
	t.Helper()
	tsaChain := writeFile(t, "tsa.pem", sigstack.PEM(stack.TSAChain...))
	token := tokenFile(t, st.Issuer, 10*time.Minute)
	return func(c *config.Config) {
		c.Keyless = config.Keyless{FulcioURL: st.FulcioURL, TSAURL: stack.TSAURL, TSAChainFile: tsaChain,
			Identity: config.KeylessIdentity{TokenFile: token}}
		harness.DevTenant(c).Keyless = policy
	}
}

// startKeylessAgent starts an agent with keyless signing on st; more
// edits follow.
func startKeylessAgent(t *testing.T, st *sigstack.Stack, policy string, more ...func(*config.Config)) *harness.Agent {
	t.Helper()
	edit := keylessEdit(t, st, policy)
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
		edit(c)
		for _, m := range more {
			m(c)
		}
	}})
	h.Client.MaxAttempts = 1 // each refusal as the agent answers it
	return h
}

// agentRequest is a sign request for an artifact with a hex SHA-256.
func agentRequest(digest, mode string, keyIDs ...string) *proto.SignRequest {
	r := &proto.SignRequest{
		Subject:       []proto.Subject{{Name: "artifact.bin", Digest: map[string]string{"sha256": digest}}},
		PredicateType: predicateType,
		Predicate:     json.RawMessage(`{"componentCount":2}`),
	}
	if mode != "" || len(keyIDs) > 0 {
		r.Options = &proto.SignOptions{Mode: mode, KeyIDs: keyIDs}
	}
	return r
}

// leafFingerprint is "sha256:<hex>" of the DER of a PEM chain's leaf.
func leafFingerprint(t *testing.T, chain []string) string {
	t.Helper()
	blk, _ := pem.Decode([]byte(chain[0]))
	if blk == nil {
		t.Fatal("chain has no PEM leaf")
	}
	sum := sha256.Sum256(blk.Bytes)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// trustExport runs signerctl trust export with args and returns the
// trusted root's path.
func trustExport(t *testing.T, args ...string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if out, err := signerctl(t, append([]string{"trust", "export", "--out", p}, args...)...); err != nil {
		t.Fatalf("trust export: %v\n%s", err, out)
	}
	return p
}

// TestAgentKeyless: a keyless request through the agent is signed with
// a Fulcio certificate and an RFC 3161 timestamp; cosign
// verify-blob-attestation and signerctl verify --trusted-root accept it
// offline with the identity and issuer; the allow record names the
// keyless key source, the ephemeral key's fingerprint and the
// certificate (identity, issuer, leaf fingerprint). Keyless with a key id
// is a multi-signature. The agent's bundle goes into Rekor v2 unchanged
// (signerctl tlog upload) and cosign verifies the logged bundle with the
// log. With the tenant's policy turned off, keyless is refused.
func TestAgentKeyless(t *testing.T) {
	ctx := context.Background()
	h := startKeylessAgent(t, stack, config.KeylessAllowed)
	art, digest := artifact(t, "signed keylessly by the agent\n")
	res, err := h.Client.SignDSSE(ctx, agentRequest(digest, proto.ModeKeyless))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Bundles) != 1 || len(res.SigningIdentity) != 1 {
		t.Fatalf("%d bundles", len(res.Bundles))
	}
	id := res.SigningIdentity[0]
	if id.Mode != proto.ModeKeyless || id.KeyID != "keyless" || id.KeySource != "keyless" ||
		id.CertificateIdentity != sigstack.Email || id.CertificateIssuer != stack.Issuer.URL || len(id.CertificateChain) != 1+len(stack.FulcioChain) {
		t.Fatalf("signing identity %+v", id)
	}
	if res.Envelope.Signatures[0].KeyID != "keyless" {
		t.Errorf("envelope keyid %q", res.Envelope.Signatures[0].KeyID)
	}
	signed := h.Signed()
	if len(signed) != 1 {
		t.Fatalf("%d allow records", len(signed))
	}
	rec := signed[0]
	if rec.KeyIDs[0] != "keyless" || rec.KeySources[0] != "keyless" || rec.KeyFingerprints[0] != hintHex(t, id.PublicKeyHint) {
		t.Errorf("allow record keys %v %v %v", rec.KeyIDs, rec.KeySources, rec.KeyFingerprints)
	}
	if len(rec.Certificates) != 1 || rec.Certificates[0] != (proto.AuditCertificate{KeyID: "keyless", Identity: sigstack.Email, Issuer: stack.Issuer.URL, Fingerprint: leafFingerprint(t, id.CertificateChain)}) {
		t.Errorf("allow record certificates %+v", rec.Certificates)
	}

	// Offline verification: cosign and signerctl, with a trusted root
	// exported from the Fulcio and TSA chains.
	root := trustExport(t, "--fulcio-chain", writeFile(t, "fulcio.pem", sigstack.PEM(stack.FulcioChain...)), "--fulcio-url", stack.FulcioURL,
		"--tsa-chain", writeFile(t, "tsa.pem", sigstack.PEM(stack.TSAChain...)), "--tsa-url", stack.TSAURL)
	bp := writeBundle(t, res.Bundles[0])
	if out, err := cosignVerifyKeyless(t, root, bp, art, "--insecure-ignore-tlog", "--use-signed-timestamps"); err != nil {
		t.Fatalf("cosign refused the agent's keyless bundle: %v\n%s", err, out)
	}
	out, err := signerctl(t, "verify", "--bundle", bp, "--trusted-root", root, "--artifact", art, "--type", predicateType,
		"--certificate-identity", sigstack.Email, "--certificate-oidc-issuer", stack.Issuer.URL)
	if err != nil || !strings.Contains(out, "mode=keyless identity="+sigstack.Email) || !strings.Contains(out, "signedAt=") {
		t.Fatalf("signerctl verify --trusted-root: %v\n%s", err, out)
	}
	if out, err := signerctl(t, "verify", "--bundle", bp, "--trusted-root", root, "--artifact", art,
		"--certificate-identity", "someone-else@node-1.example", "--certificate-oidc-issuer", stack.Issuer.URL); err == nil {
		t.Fatalf("signerctl verify accepted another identity:\n%s", out)
	}

	// Keyless and a key id: two signatures, keyless first.
	multi, err := h.Client.SignDSSE(ctx, agentRequest(digest, proto.ModeKeyless, "dev"))
	if err != nil {
		t.Fatal(err)
	}
	if len(multi.Bundles) != 2 || multi.SigningIdentity[0].Mode != proto.ModeKeyless || multi.SigningIdentity[1].KeyID != "dev" || len(multi.Envelope.Signatures) != 2 {
		t.Fatalf("multi-signature %+v", multi.SigningIdentity)
	}
	if out, err := cosign(t, "verify-blob-attestation", "--bundle", writeBundle(t, multi.Bundles[1]), "--key", h.PubPEM,
		"--insecure-ignore-tlog", "--type", predicateType, art); err != nil {
		t.Fatalf("cosign refused the keyful half: %v\n%s", err, out)
	}

	// Rekor v2 takes the agent's bundle as it is; cosign verifies the
	// logged bundle with the log, without --insecure-ignore-tlog.
	logged := filepath.Join(t.TempDir(), "logged.json")
	if out, err := signerctl(t, "tlog", "upload", "--rekor", stack.RekorURL, "--bundle", bp, "--out", logged); err != nil {
		t.Fatalf("tlog upload: %v\n%s", err, out)
	}
	withLog := trustExport(t, "--fulcio-chain", writeFile(t, "fulcio.pem", sigstack.PEM(stack.FulcioChain...)),
		"--tsa-chain", writeFile(t, "tsa.pem", sigstack.PEM(stack.TSAChain...)),
		"--rekor-key", writeFile(t, "rekor.pub", sigstack.PublicKeyPEM(t, stack.RekorKey)), "--rekor-url", stack.RekorURL)
	if out, err := cosignVerifyKeyless(t, withLog, logged, art); err != nil {
		t.Fatalf("cosign refused the logged agent bundle: %v\n%s", err, out)
	}
	if out, err := signerctl(t, "verify", "--bundle", logged, "--trusted-root", withLog, "--artifact", art, "--require-tlog",
		"--certificate-identity", sigstack.Email, "--certificate-oidc-issuer", stack.Issuer.URL); err != nil || !strings.Contains(out, "tlog=verified") {
		t.Fatalf("signerctl verify --require-tlog: %v\n%s", err, out)
	}

	// Policy off: refused before Fulcio is asked.
	harness.EditConfig(t, h.Config, func(c *config.Config) { harness.DevTenant(c).Keyless = config.KeylessOff })
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	before := len(h.Signed())
	if _, err := h.Client.SignDSSE(ctx, agentRequest(digest, proto.ModeKeyless)); !errors.Is(err, client.ErrKeyUnavailable) {
		t.Fatalf("keyless with the policy off: %v", err)
	}
	if len(h.Signed()) != before {
		t.Fatal("signed with the policy off")
	}
}

// hintHex turns a publicKeyHint into the audit fingerprint form.
func hintHex(t *testing.T, hint string) string {
	t.Helper()
	sum, err := base64.StdEncoding.DecodeString(hint)
	if err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(sum)
}

// TestAgentKeylessOutages: Fulcio down, the TSA down (answering 503 with
// its own Retry-After) and the identity token expired, each through the
// agent: signing_backend_unavailable with the Retry-After of its cause,
// nothing signed, the denial audited; with the policy allowed and a
// fallback key the same outage is signed by the fallback key, and the
// allow record names the switch.
func TestAgentKeylessOutages(t *testing.T) {
	ctx := context.Background()
	own := sigstack.Start(t, sigstack.Options{Fulcio: true})
	busyTSA := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "7")
		http.Error(w, "overloaded", http.StatusServiceUnavailable)
	}))
	defer busyTSA.Close()
	expired := filepath.Join(t.TempDir(), "expired")
	if err := os.WriteFile(expired, []byte(stack.Issuer.Mint(sigstack.Email, time.Now().Add(-time.Hour), 10*time.Minute)), 0o600); err != nil {
		t.Fatal(err)
	}
	withFallback := func(c *config.Config) {
		harness.WithKey("fallback", "memory:fallback")(c)
		harness.DevTenant(c).FallbackKey = "fallback"
	}
	_, digest := artifact(t, "outage\n")

	// Fulcio: it certifies, then it is killed.
	h := startKeylessAgent(t, own, config.KeylessAllowed)
	if _, err := h.Client.SignDSSE(ctx, agentRequest(digest, proto.ModeKeyless)); err != nil {
		t.Fatalf("before the outage: %v", err)
	}
	own.StopFulcio()

	for _, tc := range []struct {
		name   string
		st     *sigstack.Stack
		edit   func(*config.Config)
		detail string
		retry  time.Duration
	}{
		{"Fulcio down", own, nil, "Fulcio", 5 * time.Second},
		{"TSA down", stack, func(c *config.Config) { c.Keyless.TSAURL = busyTSA.URL }, "timestamp authority", 7 * time.Second},
		{"identity token expired", stack, func(c *config.Config) { c.Keyless.Identity.TokenFile = expired }, "identity token", 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, fb := range []bool{false, true} {
				edits := []func(*config.Config){}
				if tc.edit != nil {
					edits = append(edits, tc.edit)
				}
				if fb {
					edits = append(edits, withFallback)
				}
				h := startKeylessAgent(t, tc.st, config.KeylessAllowed, edits...)
				res, err := h.Client.SignDSSE(ctx, agentRequest(digest, proto.ModeKeyless))
				if fb {
					if err != nil {
						t.Fatalf("with a fallback key: %v", err)
					}
					s := h.Signed()
					if res.SigningIdentity[0].KeyID != "fallback" || res.SigningIdentity[0].Mode != proto.ModeKeyful ||
						len(s) != 1 || s[0].KeyIDs[0] != "fallback" || !strings.Contains(s[0].Reason, "fallback from keyless") {
						t.Fatalf("fallback: identity %+v, records %+v", res.SigningIdentity, s)
					}
					continue
				}
				var ce *client.Error
				if !errors.As(err, &ce) || ce.Code != proto.CodeSigningBackendUnavailable || ce.Status != 503 || ce.RetryAfter != tc.retry || !strings.Contains(ce.Detail, tc.detail) {
					t.Fatalf("got %v (Retry-After %v), want signing_backend_unavailable, Retry-After %s, detail naming %s", err, ce, tc.retry, tc.detail)
				}
				if len(h.Signed()) != 0 {
					t.Fatal("signed during the outage")
				}
				var denied []audit.Record
				for _, r := range h.Audit.Records() {
					if r.Code == string(proto.CodeSigningBackendUnavailable) {
						denied = append(denied, r)
					}
				}
				if len(denied) != 1 || denied[0].Gate != "sign" || denied[0].KeySources[0] != "keyless" || strings.Contains(denied[0].Reason, "eyJ") {
					t.Fatalf("denial records %+v", denied)
				}
			}
		})
	}
}

// TestAgentKeylessLifetime: the keyless signer survives a reload that
// does not change its settings (a reused certificate stays the same) and
// is replaced, and the old one closed, by one that does; when the agent
// stops, no goroutine of it is left (the signers' connections to Fulcio
// and the TSA are closed with them).
func TestAgentKeylessLifetime(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	ctx := context.Background()
	h := startKeylessAgent(t, stack, config.KeylessAllowed, func(c *config.Config) { c.Keyless.ReuseWindow = time.Minute })
	_, digest := artifact(t, "reuse\n")
	leaf := func() string {
		t.Helper()
		res, err := h.Client.SignDSSE(ctx, agentRequest(digest, proto.ModeKeyless))
		if err != nil {
			t.Fatal(err)
		}
		return res.SigningIdentity[0].CertificateChain[0]
	}
	first := leaf()
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if leaf() != first {
		t.Error("a reload without changes replaced the keyless signer (its reused certificate changed)")
	}
	harness.EditConfig(t, h.Config, func(c *config.Config) { c.Keyless.Timeout = 20 * time.Second })
	if err := h.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if leaf() == first {
		t.Error("changed keyless settings kept the old signer")
	}
	h.Stop()
	h.Client.CloseIdleConnections()
}

// TestAgentPKCS11Chain: a PKCS#11 key with a certificate object on its
// token signs through the agent: the bundle carries the leaf, the
// signingIdentity and GET /keys the chain. `signerctl trust export
// --keys-from-agent` puts the key's CA in the trusted root; cosign and
// `signerctl verify --trusted-root` accept the bundle offline. Once the
// key is revoked through the admin socket, a new export makes signerctl
// refuse it.
func TestAgentPKCS11Chain(t *testing.T) {
	ctx := context.Background()
	uri := harness.SoftHSMKey(t, "agent-chained")
	pub := softHSMPublic(t, uri)
	ca := sigstack.NewCA(t, "hsm issuing CA", time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	leaf := issueLeaf(t, ca, pub)
	importCertificates(t, uri, leaf, ca.Cert)

	h := harness.StartAgent(t, harness.Options{Edit: harness.WithDefaultKey("hsm-2026", uri)})
	art, digest := artifact(t, "signed by a chained HSM key through the agent\n")
	res, err := h.Client.SignDSSE(ctx, agentRequest(digest, ""))
	if err != nil {
		t.Fatal(err)
	}
	id := res.SigningIdentity[0]
	if id.KeyID != "hsm-2026" || id.KeySource != "pkcs11" || len(id.CertificateChain) != 2 || id.CertificateIdentity != hsmKeyIdentity {
		t.Fatalf("signing identity %+v", id)
	}
	if vm := bundleMap(t, res.Bundles[0])["verificationMaterial"].(map[string]any); vm["certificate"] == nil {
		t.Fatalf("no certificate in the bundle: %s", res.Bundles[0])
	}
	ks, err := h.Client.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks.Keys {
		if k.ID == "hsm-2026" && (len(k.CertificateChain) != 2 || k.CertificateChain[0] != id.CertificateChain[0]) {
			t.Fatalf("GET /keys chain %v", k.CertificateChain)
		}
	}
	if s := h.Signed(); len(s[0].Certificates) != 1 || s[0].Certificates[0].Fingerprint != leafFingerprint(t, id.CertificateChain) || s[0].Certificates[0].Identity != hsmKeyIdentity {
		t.Fatalf("allow record certificates %+v", s[0].Certificates)
	}

	export := func() string {
		t.Helper()
		p := filepath.Join(t.TempDir(), "trusted_root.json")
		if out, err := signerctl(t, "--socket", h.APISock, "trust", "export", "--keys-from-agent", "--out", p); err != nil {
			t.Fatalf("trust export --keys-from-agent: %v\n%s", err, out)
		}
		return p
	}
	root := export()
	bp := writeBundle(t, res.Bundles[0])
	if out, err := cosign(t, "verify-blob-attestation", "--bundle", bp, "--trusted-root", root,
		"--certificate-identity", hsmKeyIdentity, "--certificate-oidc-issuer-regexp", ".*",
		"--insecure-ignore-sct", "--insecure-ignore-tlog", "--type", predicateType, art); err != nil {
		t.Fatalf("cosign refused the agent's chained bundle: %v\n%s", err, out)
	}
	if out, err := signerctl(t, "verify", "--bundle", bp, "--trusted-root", root, "--artifact", art); err != nil || !strings.Contains(out, "mode=keyful key=hsm-2026") {
		t.Fatalf("signerctl verify --trusted-root: %v\n%s", err, out)
	}
	if out, err := signerctl(t, "--admin-socket", h.AdminSock, "keys", "revoke", "--key", "hsm-2026", "--reason", "test"); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	if out, err := signerctl(t, "verify", "--bundle", bp, "--trusted-root", export(), "--artifact", art); err == nil || !strings.Contains(out, "revoked") {
		t.Fatalf("signerctl verify after revocation: %v\n%s", err, out)
	}
}

// softHSMPublic opens the key at uri once to read its public key.
func softHSMPublic(t *testing.T, uri string) crypto.PublicKey {
	t.Helper()
	var o pkcs11.Opener
	k, err := o.OpenKey(context.Background(), uri)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	return k.Public()
}
