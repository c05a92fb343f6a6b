package keyless_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
	"github.com/stellaops/signer-agent/test/sigstack"
)

// signerctl runs the signerctl binary built from this tree.
func signerctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(harness.Binary(t, "cmd/signerctl"), args...).CombinedOutput()
	return string(out), err
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCLIHelp: the new commands answer -h with exit 0.
func TestCLIHelp(t *testing.T) {
	for _, args := range [][]string{{"trust", "-h"}, {"trust", "export", "-h"}, {"tlog", "-h"}, {"tlog", "upload", "-h"}} {
		if out, err := signerctl(t, args...); err != nil || !strings.Contains(out, "Usage") {
			t.Errorf("signerctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestTrustExportAndOfflineVerification: `signerctl trust export` writes
// trusted_root.json and trusted_keys.json from GET /keys output, Fulcio's
// and the TSA's chains and the Rekor key; offline (this test binary has
// no network), cosign verifies a keyless bundle with that trusted root,
// VerifyTrusted verifies keyless and keyful bundles, and a key the
// agent lists as revoked, or used outside its window, is refused.
func TestTrustExportAndOfflineVerification(t *testing.T) {
	ctx := context.Background()
	// Two keyful keys as GET /keys lists them: one active, one revoked.
	active, revoked := newKey(t), newKey(t)
	from := time.Now().Add(-time.Hour)
	until := time.Now().Add(time.Hour)
	ks := proto.KeysResponse{Keys: []proto.KeyInfo{
		keyInfo(t, "tenant-a-2026", active, proto.KeyStatusActive, &from, &until),
		keyInfo(t, "tenant-a-2025", revoked, proto.KeyStatusRevoked, nil, nil),
	}}
	ksJSON, _ := json.Marshal(ks)
	dir := t.TempDir()
	rootPath := filepath.Join(dir, "trusted_root.json")
	out, err := signerctl(t, "trust", "export", "--out", rootPath,
		"--keys", writeFile(t, "keys.json", ksJSON),
		"--fulcio-chain", writeFile(t, "fulcio.pem", sigstack.PEM(stack.FulcioChain...)), "--fulcio-url", stack.FulcioURL,
		"--tsa-chain", writeFile(t, "tsa.pem", sigstack.PEM(stack.TSAChain...)), "--tsa-url", stack.TSAURL,
		"--rekor-key", writeFile(t, "rekor.pub", sigstack.PublicKeyPEM(t, stack.RekorKey)), "--rekor-url", stack.RekorURL)
	if err != nil {
		t.Fatalf("trust export: %v\n%s", err, out)
	}
	first, _ := os.ReadFile(rootPath)
	if _, err := signerctl(t, "trust", "export", "--out", rootPath,
		"--keys", writeFile(t, "keys.json", ksJSON),
		"--fulcio-chain", writeFile(t, "fulcio.pem", sigstack.PEM(stack.FulcioChain...)), "--fulcio-url", stack.FulcioURL,
		"--tsa-chain", writeFile(t, "tsa.pem", sigstack.PEM(stack.TSAChain...)), "--tsa-url", stack.TSAURL,
		"--rekor-key", writeFile(t, "rekor.pub", sigstack.PublicKeyPEM(t, stack.RekorKey)), "--rekor-url", stack.RekorURL); err != nil {
		t.Fatal(err)
	}
	if second, _ := os.ReadFile(rootPath); string(first) != string(second) {
		t.Error("two exports of the same input differ")
	}
	m, err := trustroot.Load(rootPath, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Keys) != 2 || len(m.Root.FulcioCertificateAuthorities()) != 1 || len(m.Root.TimestampingAuthorities()) != 1 || len(m.Root.RekorLogs()) != 1 {
		t.Fatalf("exported %d keys, %d CAs, %d TSAs, %d logs", len(m.Keys), len(m.Root.FulcioCertificateAuthorities()), len(m.Root.TimestampingAuthorities()), len(m.Root.RekorLogs()))
	}

	// Keyless: cosign and VerifyTrusted with the exported root.
	art, digest := artifact(t, "exported trust\n")
	kl := signKeyless(t, newSigner(t, stack, nil), statement(t, digest))
	if out, err := cosignVerifyKeyless(t, rootPath, writeBundle(t, kl.Bundles[0]), art, "--insecure-ignore-tlog", "--use-signed-timestamps"); err != nil {
		t.Fatalf("cosign with the exported trusted root: %v\n%s", err, out)
	}
	pol := attest.TrustPolicy{Identities: []attest.CertIdentity{{Identity: sigstack.Email, Issuer: stack.Issuer.URL}}}
	if _, err := attest.VerifyTrusted(kl.Bundles[0], m, pol, attest.Expect{PredicateType: predicateType, ArtifactSHA256: digest}); err != nil {
		t.Fatal(err)
	}

	// Keyful: the active key verifies, within its window only; the revoked
	// key is refused; an unknown key is refused.
	exp := attest.Expect{PredicateType: predicateType, ArtifactSHA256: digest}
	sign := func(k *ecdsa.PrivateKey) []byte {
		res, err := attest.Sign(ctx, statement(t, digest), []attest.Signer{{ID: "k", Source: "file", Key: k}})
		if err != nil {
			t.Fatal(err)
		}
		return res.Bundles[0]
	}
	good := sign(active)
	v, err := attest.VerifyTrusted(good, m, attest.TrustPolicy{}, exp)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyID != "tenant-a-2026" || v.Mode != proto.ModeKeyful {
		t.Errorf("verified %+v", v)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		pol  attest.TrustPolicy
		want error
	}{
		{"revoked key", sign(revoked), attest.TrustPolicy{}, attest.ErrKeyRevoked},
		{"unknown key", sign(newKey(t)), attest.TrustPolicy{}, attest.ErrUnknownKey},
		{"after the key's window", good, attest.TrustPolicy{Now: func() time.Time { return until.Add(time.Minute) }}, attest.ErrKeyNotValid},
		{"before the key's window", good, attest.TrustPolicy{Now: func() time.Time { return from.Add(-time.Minute) }}, attest.ErrKeyNotValid},
		{"no tlog entry when one is required", good, attest.TrustPolicy{RequireTlog: true}, attest.ErrVerify},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := attest.VerifyTrusted(tc.b, m, tc.pol, exp); !errors.Is(err, tc.want) || !errors.Is(err, attest.ErrVerify) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}

	// Bad input to trust export: named, exit 2 for usage, 1 otherwise.
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		{"no --out", []string{"trust", "export", "--keys", writeFile(t, "k.json", ksJSON)}, 2},
		{"nothing to export", []string{"trust", "export", "--out", filepath.Join(dir, "x.json")}, 2},
		{"rekor key without URL", []string{"trust", "export", "--out", filepath.Join(dir, "x.json"), "--rekor-key", writeFile(t, "r.pub", sigstack.PublicKeyPEM(t, stack.RekorKey))}, 2},
		{"chain that is not PEM", []string{"trust", "export", "--out", filepath.Join(dir, "x.json"), "--fulcio-chain", writeFile(t, "bad.pem", []byte("not pem"))}, 1},
		{"broken chain", []string{"trust", "export", "--out", filepath.Join(dir, "x.json"), "--fulcio-chain", writeFile(t, "rev.pem", sigstack.PEM(stack.TSAChain[len(stack.TSAChain)-1], stack.TSAChain[0]))}, 1},
		{"hint that does not match", []string{"trust", "export", "--out", filepath.Join(dir, "x.json"), "--keys", writeFile(t, "h.json", []byte(`{"keys":[{"id":"x","publicKey":`+jsonString(string(sigstack.PublicKeyPEM(t, active.Public())))+`,"publicKeyHint":"AAAA","status":"active","tenants":[],"algorithm":"","source":""}]}`))}, 1},
		{"unknown status", []string{"trust", "export", "--out", filepath.Join(dir, "x.json"), "--keys", writeFile(t, "s.json", []byte(`{"keys":[{"id":"x","publicKey":`+jsonString(string(sigstack.PublicKeyPEM(t, active.Public())))+`,"status":"compromised","tenants":[],"algorithm":"","source":"","publicKeyHint":""}]}`))}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := signerctl(t, tc.args...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code {
				t.Fatalf("exit %v, want %d\n%s", err, tc.code, out)
			}
			if _, err := os.Stat(filepath.Join(dir, "x.json")); err == nil {
				t.Fatal("a trusted root was written")
			}
		})
	}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyInfo(t testing.TB, id string, k *ecdsa.PrivateKey, status string, nb, na *time.Time) proto.KeyInfo {
	t.Helper()
	hint, _ := keys.PublicKeyHint(k.Public())
	return proto.KeyInfo{ID: id, Algorithm: keys.AlgECDSAP256, PublicKey: string(sigstack.PublicKeyPEM(t, k.Public())),
		PublicKeyHint: hint, Source: "file", Status: status, NotBefore: nb, NotAfter: na, Tenants: []string{"tenant-a"}}
}

// TestTlogUploadThenCosign: `signerctl tlog upload` logs a keyless bundle
// and a keyful P-256 bundle in the real rekor-tiles; the logged bundle is
// the input plus one hashedrekord v0.0.2 entry with an inclusion proof,
// and cosign verifies both offline without --insecure-ignore-tlog against
// a trusted root holding the log key (the keyful one with --key).
func TestTlogUploadThenCosign(t *testing.T) {
	art, digest := artifact(t, "logged by the Attestor\n")
	kl := signKeyless(t, newSigner(t, stack, nil), statement(t, digest))
	in := writeBundle(t, kl.Bundles[0])
	outPath := filepath.Join(t.TempDir(), "logged.json")
	if out, err := signerctl(t, "tlog", "upload", "--rekor", stack.RekorURL, "--bundle", in, "--out", outPath); err != nil {
		t.Fatalf("tlog upload: %v\n%s", err, out)
	}
	logged, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	lb := bundleMap(t, logged)
	vm := lb["verificationMaterial"].(map[string]any)
	entries, _ := vm["tlogEntries"].([]any)
	if len(entries) != 1 {
		t.Fatalf("%d tlog entries", len(entries))
	}
	e := entries[0].(map[string]any)
	kv := e["kindVersion"].(map[string]any)
	if kv["kind"] != "hashedrekord" || kv["version"] != "0.0.2" || e["inclusionProof"] == nil {
		t.Fatalf("entry %v", e)
	}
	// Unchanged apart from the entry.
	delete(vm, "tlogEntries")
	orig := bundleMap(t, kl.Bundles[0])
	a, _ := json.Marshal(orig)
	b, _ := json.Marshal(lb)
	if string(a) != string(b) {
		t.Fatalf("upload changed the bundle:\n%s\n%s", a, b)
	}

	rootPath, m := writeTrust(t, trustroot.Input{FulcioChain: stack.FulcioChain, TSAChain: stack.TSAChain,
		Rekor: []trustroot.RekorLog{{URL: stack.RekorURL, Origin: stack.RekorOrigin, PublicKey: stack.RekorKey}}})
	if out, err := cosign(t, "verify-blob-attestation", "--bundle", outPath, "--trusted-root", rootPath,
		"--certificate-identity", sigstack.Email, "--certificate-oidc-issuer", stack.Issuer.URL,
		"--insecure-ignore-sct", "--type", predicateType, art); err != nil {
		t.Fatalf("cosign refused the logged bundle: %v\n%s", err, out)
	}
	saveExample(t, "keyless-bundle.json", kl.Bundles[0])
	saveExample(t, "logged-bundle.json", logged)
	idJSON, _ := json.MarshalIndent(kl.SigningIdentity, "", "  ")
	saveExample(t, "keyless-signing-identity.json", idJSON)
	pol := attest.TrustPolicy{RequireTlog: true, Identities: []attest.CertIdentity{{Identity: sigstack.Email, Issuer: stack.Issuer.URL}}}
	v, err := attest.VerifyTrusted(logged, m, pol, attest.Expect{PredicateType: predicateType, ArtifactSHA256: digest})
	if err != nil {
		t.Fatal(err)
	}
	if !v.Logged {
		t.Error("not reported as logged")
	}
	// A trusted root without the log key: both refuse the entry.
	noLog, noLogM := writeTrust(t, trustroot.Input{FulcioChain: stack.FulcioChain, TSAChain: stack.TSAChain})
	if out, err := cosign(t, "verify-blob-attestation", "--bundle", outPath, "--trusted-root", noLog,
		"--certificate-identity", sigstack.Email, "--certificate-oidc-issuer", stack.Issuer.URL,
		"--insecure-ignore-sct", "--type", predicateType, art); err == nil {
		t.Fatalf("cosign accepted a log entry of an untrusted log:\n%s", out)
	}
	if _, err := attest.VerifyTrusted(logged, noLogM, pol, attest.Expect{ArtifactSHA256: digest}); err == nil {
		t.Fatal("VerifyTrusted accepted a log entry of an untrusted log")
	}

	// Keyful P-256: logged with --key, verified by VerifyTrusted with the
	// log; an Ed25519 key is refused before anything is sent.
	k := newKey(t)
	res, err := attest.Sign(context.Background(), statement(t, digest), []attest.Signer{{ID: "k", Source: "file", Key: k}})
	if err != nil {
		t.Fatal(err)
	}
	saveExample(t, "keyful-bundle.json", res.Bundles[0])
	idJSON, _ = json.MarshalIndent(res.SigningIdentity, "", "  ")
	saveExample(t, "keyful-signing-identity.json", idJSON)
	pub := writeFile(t, "k.pub", sigstack.PublicKeyPEM(t, k.Public()))
	keyfulOut := filepath.Join(t.TempDir(), "keyful-logged.json")
	if out, err := signerctl(t, "tlog", "upload", "--rekor", stack.RekorURL, "--bundle", writeBundle(t, res.Bundles[0]), "--key", pub, "--out", keyfulOut); err != nil {
		t.Fatalf("tlog upload (keyful): %v\n%s", err, out)
	}
	kb, _ := os.ReadFile(keyfulOut)
	_, km := writeTrust(t, trustroot.Input{Keys: []proto.KeyInfo{keyInfo(t, "k", k, proto.KeyStatusActive, nil, nil)},
		Rekor: []trustroot.RekorLog{{URL: stack.RekorURL, Origin: stack.RekorOrigin, PublicKey: stack.RekorKey}}})
	if v, err := attest.VerifyTrusted(kb, km, attest.TrustPolicy{RequireTlog: true}, attest.Expect{ArtifactSHA256: digest}); err != nil || !v.Logged {
		t.Fatalf("logged keyful bundle: %v", err)
	}
	if out, err := cosign(t, "verify-blob-attestation", "--bundle", keyfulOut, "--key", pub,
		"--trusted-root", writeRootOnly(t, km), "--type", predicateType, art); err != nil {
		t.Fatalf("cosign refused the logged keyful bundle (--key, trusted root with the log key): %v\n%s", err, out)
	}
	ed := mustMemoryKey(t, keys.AlgEd25519)
	edRes, err := attest.Sign(context.Background(), statement(t, digest), []attest.Signer{{ID: "ed", Source: "memory", Key: ed}})
	if err != nil {
		t.Fatal(err)
	}
	edOut := filepath.Join(t.TempDir(), "ed-logged.json")
	out, err := signerctl(t, "tlog", "upload", "--rekor", stack.RekorURL, "--bundle", writeBundle(t, edRes.Bundles[0]),
		"--key", writeFile(t, "ed.pub", sigstack.PublicKeyPEM(t, ed.Public())), "--out", edOut)
	if err == nil || !strings.Contains(out, "cannot be logged") {
		t.Fatalf("Ed25519 bundle: %v\n%s", err, out)
	}
	if _, err := os.Stat(edOut); err == nil {
		t.Fatal("an output was written for a refused upload")
	}
}

func writeRootOnly(t *testing.T, m *trustroot.Material) string {
	t.Helper()
	b, err := m.MarshalRoot()
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, "trusted_root.json", b)
}

func mustMemoryKey(t *testing.T, alg string) keys.Key {
	t.Helper()
	k, err := keys.NewMemoryKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// TestTrustExportFromAgent: `signerctl trust export --keys-from-agent`
// reads GET /keys from a running agent; a bundle the agent signed verifies
// with the exported trust material; once the key is revoked through the
// admin socket, a new export refuses it.
func TestTrustExportFromAgent(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	_, digest := artifact(t, "signed by the agent\n")
	res, err := h.Client.SignDSSE(context.Background(), &proto.SignRequest{
		Subject:       []proto.Subject{{Name: "artifact.bin", Digest: map[string]string{"sha256": digest}}},
		PredicateType: predicateType,
		Predicate:     json.RawMessage(`{"componentCount":2}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	export := func() *trustroot.Material {
		t.Helper()
		p := filepath.Join(t.TempDir(), "trusted_root.json")
		if out, err := signerctl(t, "--socket", h.APISock, "trust", "export", "--keys-from-agent", "--out", p); err != nil {
			t.Fatalf("trust export --keys-from-agent: %v\n%s", err, out)
		}
		m, err := trustroot.Load(p, "")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	exp := attest.Expect{PredicateType: predicateType, ArtifactSHA256: digest}
	v, err := attest.VerifyTrusted(res.Bundles[0], export(), attest.TrustPolicy{}, exp)
	if err != nil {
		t.Fatal(err)
	}
	if v.KeyID != res.SigningIdentity[0].KeyID {
		t.Errorf("verified key %q, signed with %q", v.KeyID, res.SigningIdentity[0].KeyID)
	}
	if out, err := signerctl(t, "--admin-socket", h.AdminSock, "keys", "revoke", "--key", res.SigningIdentity[0].KeyID, "--reason", "test"); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	if _, err := attest.VerifyTrusted(res.Bundles[0], export(), attest.TrustPolicy{}, exp); !errors.Is(err, attest.ErrKeyRevoked) {
		t.Fatalf("after revocation: got %v, want ErrKeyRevoked", err)
	}
}

// TestTlogUploadRefuses: bad input to `signerctl tlog upload` is refused
// before anything is sent, and no output is written.
func TestTlogUploadRefuses(t *testing.T) {
	_, digest := artifact(t, "refused\n")
	k := newKey(t)
	keyful, err := attest.Sign(context.Background(), statement(t, digest), []attest.Signer{{ID: "k", Source: "file", Key: k}})
	if err != nil {
		t.Fatal(err)
	}
	kl := signKeyless(t, newSigner(t, stack, nil), statement(t, digest))
	var b map[string]any
	json.Unmarshal(kl.Bundles[0], &b)
	delete(b["verificationMaterial"].(map[string]any), "timestampVerificationData")
	untimed, _ := json.Marshal(b)
	other := writeFile(t, "other.pub", sigstack.PublicKeyPEM(t, newKey(t).Public()))
	for _, tc := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no --rekor", []string{"--bundle", writeBundle(t, keyful.Bundles[0])}, 2, "required"},
		{"not a URL", []string{"--rekor", "rekor.example", "--bundle", writeBundle(t, keyful.Bundles[0])}, 2, "URL"},
		{"keyful without --key", []string{"--rekor", stack.RekorURL, "--bundle", writeBundle(t, keyful.Bundles[0])}, 2, "--key"},
		{"keyful with another key", []string{"--rekor", stack.RekorURL, "--bundle", writeBundle(t, keyful.Bundles[0]), "--key", other}, 1, "no key matches"},
		{"certificate without a timestamp", []string{"--rekor", stack.RekorURL, "--bundle", writeBundle(t, untimed)}, 1, "timestamp"},
		{"not a bundle", []string{"--rekor", stack.RekorURL, "--bundle", writeFile(t, "x.json", []byte(`{"mediaType":"x"}`))}, 1, "bundle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.json")
			res, err := signerctl(t, append([]string{"tlog", "upload", "--out", out}, tc.args...)...)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.Contains(res, tc.says) {
				t.Fatalf("exit %v, want %d saying %q\n%s", err, tc.code, tc.says, res)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatal("an output was written")
			}
		})
	}
}

// TestTrustExportPEMKeys: --keys takes PEM public keys too; each becomes
// an active key named after its file.
func TestTrustExportPEMKeys(t *testing.T) {
	k := newKey(t)
	p := filepath.Join(t.TempDir(), "trusted_root.json")
	if out, err := signerctl(t, "trust", "export", "--out", p, "--keys", writeFile(t, "release-2026.pub", sigstack.PublicKeyPEM(t, k.Public()))); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m, err := trustroot.Load(p, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Keys) != 1 || m.Keys[0].ID != "release-2026" || m.Keys[0].Status != proto.KeyStatusActive {
		t.Fatalf("keys %+v", m.Keys)
	}
}
