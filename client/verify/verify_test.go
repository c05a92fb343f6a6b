package verify_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client/verify"
	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

const artifactHex = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"

type fixture struct {
	payload           []byte
	bundle, envelope  []byte
	multi             []byte // envelope signed by k1 and k2
	badBundle, badEnv []byte // payload changed, signatures kept
	k1, k2, other     keys.Key
}

func newKey(t *testing.T, alg string) keys.Key {
	t.Helper()
	k, err := keys.NewMemoryKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

// sign makes output the way the agent does (attest.BuildStatement and
// attest.Sign).
func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{k1: newKey(t, keys.AlgECDSAP256), k2: newKey(t, keys.AlgEd25519), other: newKey(t, keys.AlgECDSAP256)}
	p, err := attest.BuildStatement(&proto.SignRequest{
		Subject:       []proto.Subject{{Name: "registry.example/app", Digest: map[string]string{"sha256": artifactHex}}},
		PredicateType: "stella.ops/sbom@v1",
		Predicate:     json.RawMessage(`{"format":"cyclonedx-1.6","componentCount":412}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	f.payload = p
	ctx := context.Background()
	res, err := attest.Sign(ctx, p, []attest.Signer{{ID: "k1", Source: "memory", Key: f.k1}})
	if err != nil {
		t.Fatal(err)
	}
	f.bundle = res.Bundles[0]
	f.envelope, _ = json.Marshal(res.Envelope)
	multi, err := attest.Sign(ctx, p, []attest.Signer{{ID: "k1", Source: "memory", Key: f.k1}, {ID: "k2", Source: "memory", Key: f.k2}})
	if err != nil {
		t.Fatal(err)
	}
	f.multi, _ = json.Marshal(multi.Envelope)
	tampered := bytes.Replace(p, []byte("412"), []byte("413"), 1)
	f.badBundle = bytes.Replace(f.bundle, []byte(base64.StdEncoding.EncodeToString(p)), []byte(base64.StdEncoding.EncodeToString(tampered)), 1)
	if bytes.Equal(f.badBundle, f.bundle) {
		t.Fatal("tampering changed nothing")
	}
	env := res.Envelope
	env.Payload = tampered
	f.badEnv, _ = json.Marshal(env)
	return f
}

func keySet(t *testing.T, ks ...verify.Key) *verify.KeySet {
	t.Helper()
	s, err := verify.NewKeySet(ks...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func at(s string) *time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &t
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	k1 := verify.Key{ID: "k1", Public: f.k1.Public(), Status: proto.KeyStatusActive}
	k2 := verify.Key{ID: "k2", Public: f.k2.Public(), Status: proto.KeyStatusActive}
	other := verify.Key{ID: "other", Public: f.other.Public(), Status: proto.KeyStatusActive}
	with := func(k verify.Key, edit func(*verify.Key)) verify.Key { edit(&k); return k }
	opts := verify.Options{ArtifactSHA256: artifactHex, PredicateType: "stella.ops/sbom@v1"}

	tests := []struct {
		name     string
		keys     []verify.Key
		input    []byte
		envelope bool
		opts     verify.Options
		want     error // nil: verifies
		contains string
	}{
		{name: "bundle", keys: []verify.Key{k1}, input: f.bundle, opts: opts},
		{name: "envelope", keys: []verify.Key{k1}, input: f.envelope, envelope: true, opts: opts},
		{name: "multi-signature envelope", keys: []verify.Key{k1, k2}, input: f.multi, envelope: true, opts: opts},
		{name: "bundle, any artifact", keys: []verify.Key{other, k1}, input: f.bundle, opts: verify.Options{AnyArtifact: true}},
		{name: "verify-only key, bundle", keys: []verify.Key{with(k1, func(k *verify.Key) { k.Status = proto.KeyStatusVerifyOnly })}, input: f.bundle, opts: opts},
		{name: "verify-only key, envelope", keys: []verify.Key{with(k1, func(k *verify.Key) { k.Status = proto.KeyStatusVerifyOnly })}, input: f.envelope, envelope: true, opts: opts},
		{name: "inside the window", keys: []verify.Key{with(k1, func(k *verify.Key) { k.NotBefore, k.NotAfter = at("2020-01-01T00:00:00Z"), at("2999-01-01T00:00:00Z") })}, input: f.bundle, opts: opts},
		{name: "window checked at Options.At", keys: []verify.Key{with(k1, func(k *verify.Key) { k.NotAfter = at("2026-01-01T00:00:00Z") })}, input: f.bundle,
			opts: verify.Options{ArtifactSHA256: artifactHex, At: *at("2025-06-01T00:00:00Z")}},

		{name: "bundle, wrong key", keys: []verify.Key{other}, input: f.bundle, opts: opts, want: verify.ErrUnknownKey},
		{name: "envelope, wrong key", keys: []verify.Key{other}, input: f.envelope, envelope: true, opts: opts, want: verify.ErrVerify, contains: "does not verify"},
		{name: "bundle, tampered payload", keys: []verify.Key{k1}, input: f.badBundle, opts: opts, want: verify.ErrVerify},
		{name: "envelope, tampered payload", keys: []verify.Key{k1}, input: f.badEnv, envelope: true, opts: opts, want: verify.ErrVerify},
		{name: "bundle, expired key", keys: []verify.Key{with(k1, func(k *verify.Key) { k.NotAfter = at("2026-01-01T00:00:00Z") })}, input: f.bundle, opts: opts, want: verify.ErrKeyNotValid, contains: "expired at 2026-01-01"},
		{name: "envelope, expired key", keys: []verify.Key{with(k1, func(k *verify.Key) { k.NotAfter = at("2026-01-01T00:00:00Z") })}, input: f.envelope, envelope: true, opts: opts, want: verify.ErrKeyNotValid},
		{name: "bundle, key not yet valid", keys: []verify.Key{with(k1, func(k *verify.Key) { k.NotBefore = at("2999-01-01T00:00:00Z") })}, input: f.bundle, opts: opts, want: verify.ErrKeyNotValid},
		{name: "bundle, revoked key", keys: []verify.Key{with(k1, func(k *verify.Key) { k.Status = proto.KeyStatusRevoked })}, input: f.bundle, opts: opts, want: verify.ErrKeyRevoked},
		{name: "envelope, revoked key", keys: []verify.Key{with(k1, func(k *verify.Key) { k.Status = proto.KeyStatusRevoked })}, input: f.envelope, envelope: true, opts: opts, want: verify.ErrKeyRevoked},
		{name: "revoked under another id", keys: []verify.Key{k1, with(k1, func(k *verify.Key) { k.ID, k.Status = "k1-old", proto.KeyStatusRevoked })}, input: f.bundle, opts: opts, want: verify.ErrKeyRevoked},
		{name: "envelope revoked under another id", keys: []verify.Key{k1, with(k1, func(k *verify.Key) { k.ID, k.Status = "k1-old", proto.KeyStatusRevoked })}, input: f.envelope, envelope: true, opts: opts, want: verify.ErrKeyRevoked},
		{name: "multi-signature, one key revoked", keys: []verify.Key{k1, with(k2, func(k *verify.Key) { k.Status = proto.KeyStatusRevoked })}, input: f.multi, envelope: true, opts: opts, want: verify.ErrKeyRevoked, contains: `"k2"`},
		{name: "multi-signature, one key missing", keys: []verify.Key{k1}, input: f.multi, envelope: true, opts: opts, want: verify.ErrVerify, contains: `keyid "k2"`},
		{name: "unknown status", keys: []verify.Key{with(k1, func(k *verify.Key) { k.Status = "pending" })}, input: f.bundle, opts: opts, want: verify.ErrKeyNotValid},
		{name: "wrong predicate type", keys: []verify.Key{k1}, input: f.bundle, opts: verify.Options{ArtifactSHA256: artifactHex, PredicateType: "stella.ops/vex@v1"}, want: verify.ErrVerify, contains: "predicateType"},
		{name: "wrong artifact", keys: []verify.Key{k1}, input: f.envelope, envelope: true, opts: verify.Options{ArtifactSHA256: strings.Repeat("0", 64)}, want: verify.ErrVerify, contains: "not a subject"},
		{name: "no artifact option", keys: []verify.Key{k1}, input: f.bundle, opts: verify.Options{}, want: verify.ErrVerify},
		{name: "envelope given as bundle", keys: []verify.Key{k1}, input: f.envelope, opts: opts, want: verify.ErrVerify},
		{name: "not JSON", keys: []verify.Key{k1}, input: []byte("nope"), opts: opts, want: verify.ErrVerify},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks := keySet(t, tt.keys...)
			var res *verify.Result
			var err error
			if tt.envelope {
				res, err = verify.Envelope(ctx, ks, tt.input, tt.opts)
			} else {
				res, err = verify.Bundle(ks, tt.input, tt.opts)
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("verification failed: %v", err)
				}
				if res.PredicateType != "stella.ops/sbom@v1" || res.PayloadDigest != attest.Digest(f.payload) || len(res.Subjects) != 1 || len(res.Keys) == 0 {
					t.Errorf("result %+v", res)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if res != nil {
				t.Error("a failed verification returned a result")
			}
			if tt.contains != "" && !strings.Contains(err.Error(), tt.contains) {
				t.Errorf("err = %v, want it to contain %q", err, tt.contains)
			}
		})
	}
}

func TestKeySources(t *testing.T) {
	f := newFixture(t)
	dir := t.TempDir()
	pem1, _ := keys.MarshalPublicKeyPEM(f.k1.Public())
	pem2, _ := keys.MarshalPublicKeyPEM(f.k2.Public())
	hint1, _ := keys.PublicKeyHint(f.k1.Public())
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A saved GET /keys answer: k1 active, k2 revoked.
	resp := proto.KeysResponse{Keys: []proto.KeyInfo{
		{ID: "k1", Algorithm: "ecdsa-p256-sha256", PublicKey: string(pem1), PublicKeyHint: hint1, Status: proto.KeyStatusActive, NotBefore: at("2020-01-01T00:00:00Z")},
		{ID: "k2", Algorithm: "ed25519", PublicKey: string(pem2), Status: proto.KeyStatusRevoked},
	}}
	b, _ := json.Marshal(resp)
	keysJSON := write("keys.json", string(b))
	s, err := verify.LoadKeysJSON(keysJSON)
	if err != nil {
		t.Fatal(err)
	}
	opts := verify.Options{ArtifactSHA256: artifactHex}
	if _, err := verify.Bundle(s, f.bundle, opts); err != nil {
		t.Errorf("keys JSON, k1 bundle: %v", err)
	}
	if _, err := verify.Envelope(context.Background(), s, f.multi, opts); !errors.Is(err, verify.ErrKeyRevoked) {
		t.Errorf("keys JSON, k2 revoked: %v", err)
	}

	pemSet, err := verify.KeysFromPEM([]string{write("k2.pub", string(pem2))}, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := pemSet.Keys(); len(got) != 1 || got[0].Status != proto.KeyStatusActive || !strings.HasSuffix(got[0].ID, "k2.pub#1") {
		t.Errorf("PEM keys %+v", got)
	}
	// Merged: the JSON's revocation of k2 wins over the PEM file's k2.
	if _, err := verify.Envelope(context.Background(), pemSet.Merge(s), f.multi, opts); !errors.Is(err, verify.ErrKeyRevoked) {
		t.Errorf("merged set: %v", err)
	}

	bad := map[string]string{
		"not JSON":           "nope",
		"no keys":            `{"keys":[]}`,
		"key without status": `{"keys":[{"id":"a","publicKey":` + jsonString(string(pem1)) + `}]}`,
		"key without id":     `{"keys":[{"publicKey":` + jsonString(string(pem1)) + `,"status":"active"}]}`,
		"no PEM":             `{"keys":[{"id":"a","publicKey":"x","status":"active"}]}`,
		"two PEM blocks":     `{"keys":[{"id":"a","publicKey":` + jsonString(string(pem1)+string(pem2)) + `,"status":"active"}]}`,
		"hint mismatch":      `{"keys":[{"id":"a","publicKey":` + jsonString(string(pem2)) + `,"publicKeyHint":"` + hint1 + `","status":"active"}]}`,
		"corrupt PEM block":  `{"keys":[{"id":"a","publicKey":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n","status":"active"}]}`,
	}
	for name, content := range bad {
		if _, err := verify.LoadKeysJSON(write("bad.json", content)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := verify.LoadKeysJSON(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestAgentMadeOutput: a real agent (the in-process harness, dev
// configuration) signs; its GET /keys answer verifies the bundle and the
// envelope, and a tampered copy fails.
func TestAgentMadeOutput(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	ctx := context.Background()
	resp, err := h.Client.SignDSSE(ctx, &proto.SignRequest{
		Subject:       []proto.Subject{{Name: "registry.example/app", Digest: map[string]string{"sha256": artifactHex}}},
		PredicateType: "stella.ops/sbom@v1",
		Predicate:     json.RawMessage(`{"format":"cyclonedx-1.6","digest":"sha256:` + artifactHex + `","componentCount":3}`),
	})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	kr, err := h.Client.Keys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := verify.KeysFromResponse(kr)
	if err != nil {
		t.Fatal(err)
	}
	opts := verify.Options{ArtifactSHA256: artifactHex, PredicateType: "stella.ops/sbom@v1"}
	res, err := verify.Bundle(s, resp.Bundles[0], opts)
	if err != nil {
		t.Fatalf("bundle: %v", err)
	}
	if res.PayloadDigest != resp.PayloadDigest || res.Keys[0].ID != resp.SigningIdentity[0].KeyID {
		t.Errorf("result %+v, response digest %s key %s", res, resp.PayloadDigest, resp.SigningIdentity[0].KeyID)
	}
	env, _ := json.Marshal(resp.Envelope)
	if _, err := verify.Envelope(ctx, s, env, opts); err != nil {
		t.Fatalf("envelope: %v", err)
	}
	bad := bytes.Replace(resp.Bundles[0], []byte(`"sig":"`), []byte(`"sig":"AAAA`), 1)
	if _, err := verify.Bundle(s, bad, opts); !errors.Is(err, verify.ErrVerify) {
		t.Errorf("tampered agent bundle: %v", err)
	}
	// The same answer with the signing key marked revoked refuses it.
	for i := range kr.Keys {
		kr.Keys[i].Status = proto.KeyStatusRevoked
	}
	s, err = verify.KeysFromResponse(kr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := verify.Bundle(s, resp.Bundles[0], opts); !errors.Is(err, verify.ErrKeyRevoked) {
		t.Errorf("revoked agent key: %v", err)
	}
}
