package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// signed is a statement signed in-test, written to files.
type signed struct {
	dir                 string
	artifact, otherArt  string
	bundle, envelope    string
	pub, wrongPub, priv string
	badBundle, badEnv   string // payload tampered
	multiEnv, secondPub string // envelope with two signatures
	payloadDigest, sha  string
	predicateType       string
}

func newKey(t *testing.T) keys.Key {
	t.Helper()
	k, err := keys.NewMemoryKey(keys.AlgECDSAP256)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func pubPEM(t *testing.T, k keys.Key) string {
	t.Helper()
	b, err := keys.MarshalPublicKeyPEM(k.Public())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// signFixture signs a statement about an artifact with attest.Sign, as the
// agent does, and writes bundle, envelope, keys and tampered copies.
func signFixture(t *testing.T) *signed {
	t.Helper()
	dir := t.TempDir()
	s := &signed{dir: dir, predicateType: "stella.ops/sbom@v1"}
	s.artifact = writeFile(t, dir, "app.tar", "the artifact\n")
	s.otherArt = writeFile(t, dir, "other.tar", "another artifact\n")
	var err error
	if s.sha, err = hashFile(s.artifact); err != nil {
		t.Fatal(err)
	}
	req := &proto.SignRequest{
		Subject:       []proto.Subject{{Name: "app.tar", Digest: map[string]string{"sha256": s.sha}}},
		PredicateType: s.predicateType,
		Predicate:     json.RawMessage(`{"format":"cyclonedx-1.6","componentCount":412}`),
	}
	payload, err := attest.BuildStatement(req)
	if err != nil {
		t.Fatal(err)
	}
	k, k2, wrong := newKey(t), newKey(t), newKey(t)
	ctx := context.Background()
	res, err := attest.Sign(ctx, payload, []attest.Signer{{ID: "k1", Source: "memory", Key: k}})
	if err != nil {
		t.Fatal(err)
	}
	s.payloadDigest = res.PayloadDigest
	bundleJSON := res.Bundles[0]
	envJSON, err := json.Marshal(res.Envelope)
	if err != nil {
		t.Fatal(err)
	}
	s.bundle = writeFile(t, dir, "b.json", string(bundleJSON))
	s.envelope = writeFile(t, dir, "env.json", string(envJSON))
	s.pub = writeFile(t, dir, "k1.pub", pubPEM(t, k))
	s.secondPub = writeFile(t, dir, "k2.pub", pubPEM(t, k2))
	s.wrongPub = writeFile(t, dir, "wrong.pub", pubPEM(t, wrong))
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := keys.MarshalPrivateKeyPEM(priv)
	if err != nil {
		t.Fatal(err)
	}
	s.priv = writeFile(t, dir, "priv.pem", string(privPEM))

	// Tamper: same signatures over a statement with one byte changed.
	tampered := bytes.Replace(payload, []byte(`412`), []byte(`413`), 1)
	if bytes.Equal(tampered, payload) {
		t.Fatal("tampering changed nothing")
	}
	oldB64 := base64.StdEncoding.EncodeToString(payload)
	newB64 := base64.StdEncoding.EncodeToString(tampered)
	if !bytes.Contains(bundleJSON, []byte(oldB64)) {
		t.Fatal("bundle does not carry the payload in standard base64")
	}
	s.badBundle = writeFile(t, dir, "bad-b.json", strings.Replace(string(bundleJSON), oldB64, newB64, 1))
	env := res.Envelope
	env.Payload = tampered
	b, _ := json.Marshal(env)
	s.badEnv = writeFile(t, dir, "bad-env.json", string(b))

	multi, err := attest.Sign(ctx, payload, []attest.Signer{{ID: "k1", Source: "memory", Key: k}, {ID: "k2", Source: "memory", Key: k2}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(multi.Envelope)
	s.multiEnv = writeFile(t, dir, "multi-env.json", string(b))
	return s
}

func TestVerify(t *testing.T) {
	s := signFixture(t)
	trust := filepath.Join(s.dir, "trust")
	if err := os.Mkdir(trust, 0o755); err != nil {
		t.Fatal(err)
	}
	pubBytes, _ := os.ReadFile(s.pub)
	writeFile(t, trust, "k1.pub", string(pubBytes))
	privBytes, _ := os.ReadFile(s.priv)
	writeFile(t, trust, "signing.pem", string(privBytes)) // a private key: ignored
	writeFile(t, trust, "README", "not a key")            // other names: ignored
	emptyTrust := filepath.Join(s.dir, "empty")
	if err := os.Mkdir(emptyTrust, 0o755); err != nil {
		t.Fatal(err)
	}

	okLine := "Verified OK: predicateType=stella.ops/sbom@v1 subjects=1 payloadDigest=" + s.payloadDigest + "\n"
	tests := map[string]struct {
		args    []string
		code    int
		wantErr string
	}{
		"bundle, artifact":            {args: []string{"--bundle", s.bundle, "--key", s.pub, "--artifact", s.artifact}},
		"bundle, type":                {args: []string{"--bundle", s.bundle, "--key", s.pub, "--artifact", s.artifact, "--type", s.predicateType}},
		"bundle, digest":              {args: []string{"--bundle", s.bundle, "--key", s.pub, "--digest", "sha256:" + s.sha}},
		"bundle, any artifact":        {args: []string{"--bundle", s.bundle, "--key", s.pub, "--any-artifact"}},
		"bundle, trust dir":           {args: []string{"--bundle", s.bundle, "--trust-dir", trust, "--artifact", s.artifact}},
		"bundle, wrong and right key": {args: []string{"--bundle", s.bundle, "--key", s.wrongPub, "--key", s.pub, "--artifact", s.artifact}},
		"envelope, artifact":          {args: []string{"--envelope", s.envelope, "--key", s.pub, "--artifact", s.artifact, "--type", s.predicateType}},
		"envelope, trust dir":         {args: []string{"--envelope", s.envelope, "--trust-dir", trust, "--any-artifact"}},
		"multi-signature envelope":    {args: []string{"--envelope", s.multiEnv, "--key", s.pub, "--key", s.secondPub, "--artifact", s.artifact}},

		"bundle, tampered payload":   {args: []string{"--bundle", s.badBundle, "--key", s.pub, "--artifact", s.artifact}, code: exitFailure, wantErr: "verification failed"},
		"envelope, tampered payload": {args: []string{"--envelope", s.badEnv, "--key", s.pub, "--artifact", s.artifact}, code: exitFailure, wantErr: "verification failed"},
		"bundle, wrong key":          {args: []string{"--bundle", s.bundle, "--key", s.wrongPub, "--artifact", s.artifact}, code: exitFailure, wantErr: "verification failed"},
		"envelope, wrong key":        {args: []string{"--envelope", s.envelope, "--key", s.wrongPub, "--artifact", s.artifact}, code: exitFailure, wantErr: "verification failed"},
		"bundle, wrong type":         {args: []string{"--bundle", s.bundle, "--key", s.pub, "--artifact", s.artifact, "--type", "stella.ops/vex@v1"}, code: exitFailure, wantErr: `predicateType "stella.ops/sbom@v1", want "stella.ops/vex@v1"`},
		"envelope, wrong type":       {args: []string{"--envelope", s.envelope, "--key", s.pub, "--artifact", s.artifact, "--type", "stella.ops/vex@v1"}, code: exitFailure, wantErr: "verification failed"},
		"bundle, wrong artifact":     {args: []string{"--bundle", s.bundle, "--key", s.pub, "--artifact", s.otherArt}, code: exitFailure, wantErr: "verification failed"},
		"envelope, wrong artifact":   {args: []string{"--envelope", s.envelope, "--key", s.pub, "--artifact", s.otherArt}, code: exitFailure, wantErr: "artifact is not a subject"},
		"envelope, wrong digest":     {args: []string{"--envelope", s.envelope, "--key", s.pub, "--digest", "sha256:" + hex256}, code: exitFailure, wantErr: "verification failed"},
		"multi-sig, one key missing": {args: []string{"--envelope", s.multiEnv, "--key", s.pub, "--artifact", s.artifact}, code: exitFailure, wantErr: `keyid "k2"`},
		"envelope given as bundle":   {args: []string{"--bundle", s.envelope, "--key", s.pub, "--artifact", s.artifact}, code: exitFailure, wantErr: "verification failed"},
		"private key as --key":       {args: []string{"--bundle", s.bundle, "--key", s.priv, "--artifact", s.artifact}, code: exitFailure, wantErr: `no PEM "PUBLIC KEY" block`},
		"empty trust dir":            {args: []string{"--bundle", s.bundle, "--trust-dir", emptyTrust, "--artifact", s.artifact}, code: exitFailure, wantErr: "no PEM"},
		"missing bundle file":        {args: []string{"--bundle", s.dir + "/nope.json", "--key", s.pub, "--artifact", s.artifact}, code: exitFailure, wantErr: "no such file"},

		"bundle and envelope": {args: []string{"--bundle", s.bundle, "--envelope", s.envelope, "--key", s.pub, "--any-artifact"}, code: exitUsage},
		"no key":              {args: []string{"--bundle", s.bundle, "--any-artifact"}, code: exitUsage},
		"no artifact":         {args: []string{"--bundle", s.bundle, "--key", s.pub}, code: exitUsage},
		"two artifact modes":  {args: []string{"--bundle", s.bundle, "--key", s.pub, "--artifact", s.artifact, "--any-artifact"}, code: exitUsage},
		"bad digest":          {args: []string{"--bundle", s.bundle, "--key", s.pub, "--digest", "sha512:" + hex512}, code: exitUsage},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := runCtl(t, append([]string{"verify"}, tc.args...)...)
			r.wantCode(t, tc.code)
			switch tc.code {
			case exitOK:
				if r.stdout != okLine {
					t.Errorf("stdout %q, want %q", r.stdout, okLine)
				}
			case exitFailure:
				if r.stdout != "" {
					t.Errorf("stdout %q on failure", r.stdout)
				}
				if !strings.HasPrefix(r.stderr, "signerctl: ") || strings.Count(r.stderr, "\n") != 1 {
					t.Errorf("stderr is not one signerctl line: %q", r.stderr)
				}
				if !strings.Contains(r.stderr, tc.wantErr) {
					t.Errorf("stderr %q, want it to contain %q", r.stderr, tc.wantErr)
				}
			}
		})
	}
}

func TestParsePublicKeysPEM(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	two := pubPEM(t, k1) + "some text between\n" + pubPEM(t, k2)
	got, err := parsePublicKeysPEM([]byte(two))
	if err != nil || len(got) != 2 {
		t.Fatalf("two keys: got %d, %v", len(got), err)
	}
	if got, err := parsePublicKeysPEM([]byte("just text")); err == nil {
		t.Errorf("non-PEM: got %d keys and no error", len(got))
	}
	bad := "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
	if _, err := parsePublicKeysPEM([]byte(bad)); err == nil {
		t.Error("corrupt PUBLIC KEY block parsed")
	}
}
