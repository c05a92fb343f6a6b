package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/proto"
)

const artifactSHA = "0f7a3b1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"

func request(t *testing.T) *proto.SignRequest {
	t.Helper()
	body := `{"subject":[{"name":"registry.example/app@sha256:` + artifactSHA + `","digest":{"sha256":"` + artifactSHA + `"}}],
	 "predicateType":"stella.ops/sbom@v1","predicate":{"z":1,"a":{"y":[3,2,1],"x":1.50},"format":"cyclonedx-1.6","componentCount":412}}`
	r, err := proto.DecodeSignRequest([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func signers(t *testing.T) ([]Signer, []crypto.PublicKey) {
	t.Helper()
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	s := []Signer{{ID: "k256", Source: "memory", Key: p256}, {ID: "k384", Source: "memory", Key: p384}, {ID: "ked", Source: "memory", Key: ed}}
	return s, []crypto.PublicKey{p256.Public(), p384.Public(), ed.Public()}
}

func TestStatementCanonical(t *testing.T) {
	st, err := BuildStatement(request(t))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"_type":"https://in-toto.io/Statement/v1","predicate":{"a":{"x":1.5,"y":[3,2,1]},"componentCount":412,"format":"cyclonedx-1.6","z":1},"predicateType":"stella.ops/sbom@v1","subject":[{"digest":{"sha256":"` + artifactSHA + `"},"name":"registry.example/app@sha256:` + artifactSHA + `"}]}`
	if string(st) != want {
		t.Fatalf("statement\n got %s\nwant %s", st, want)
	}
}

func TestStatementPolicy(t *testing.T) {
	r := request(t)
	r.Policy = &proto.Policy{Digest: "sha256:" + artifactSHA, ViewSet: []string{"b", "a"}}
	st, err := BuildStatement(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(st, []byte(`"policy":{"digest":"sha256:`+artifactSHA+`","viewSet":["b","a"]}`)) {
		t.Fatalf("policy not in predicate: %s", st)
	}
	r.Predicate = json.RawMessage(`{"policy":1}`)
	if _, err := BuildStatement(r); !errors.Is(err, ErrPolicyConflict) {
		t.Fatalf("got %v, want ErrPolicyConflict", err)
	}
}

func TestSignVerifyMulti(t *testing.T) {
	st, err := BuildStatement(request(t))
	if err != nil {
		t.Fatal(err)
	}
	ss, pubs := signers(t)
	res, err := Sign(context.Background(), st, ss)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Bundles) != 3 || len(res.Envelope.Signatures) != 3 || len(res.SigningIdentity) != 3 {
		t.Fatalf("want 3 signatures and bundles, got %+v", res)
	}
	all, _ := json.Marshal(res.Bundles)
	canon, err := Canonicalize(all)
	if err != nil {
		t.Fatal(err)
	}
	if res.BundleHash != Digest(canon) {
		t.Fatal("bundleHash is not the digest of the canonical bundles array")
	}
	if res.PayloadDigest != Digest(st) {
		t.Fatal("payloadDigest mismatch")
	}
	for i, b := range res.Bundles {
		if bytes.Contains(b, []byte(`"keyid"`)) && !bytes.Contains(b, []byte(`"keyid":""`)) {
			t.Errorf("bundle %d: keyid not empty: %s", i, b)
		}
		if res.SigningIdentity[i].BundleHash != Digest(b) {
			t.Errorf("bundle %d: bundleHash mismatch", i)
		}
		v, err := VerifyBundle(b, pubs, Expect{PredicateType: "stella.ops/sbom@v1", ArtifactSHA256: artifactSHA})
		if err != nil {
			t.Fatalf("bundle %d (%s): %v", i, res.SigningIdentity[i].Algorithm, err)
		}
		if v.PayloadDigest != res.PayloadDigest {
			t.Errorf("bundle %d: verified payload differs", i)
		}
	}
	env, _ := json.Marshal(res.Envelope)
	if _, err := VerifyEnvelope(context.Background(), env, pubs, Expect{ArtifactSHA256: artifactSHA}); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRejects(t *testing.T) {
	st, _ := BuildStatement(request(t))
	ss, pubs := signers(t)
	res, err := Sign(context.Background(), st, ss[:1])
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tampered := bytes.Replace(st, []byte("412"), []byte("413"), 1)
	tb, err := BundleJSON(tampered, res.Envelope.Signatures[0].Sig, res.SigningIdentity[0].PublicKeyHint)
	if err != nil {
		t.Fatal(err)
	}
	env := res.Envelope
	env.Payload = tampered
	tenv, _ := json.Marshal(env)
	goodEnv, _ := json.Marshal(res.Envelope)
	cases := []struct {
		name string
		run  func() error
	}{
		{"tampered bundle payload", func() error {
			_, err := VerifyBundle(tb, pubs, Expect{ArtifactSHA256: artifactSHA})
			return err
		}},
		{"bundle wrong key", func() error {
			_, err := VerifyBundle(res.Bundles[0], []crypto.PublicKey{other.Public()}, Expect{ArtifactSHA256: artifactSHA})
			return err
		}},
		{"bundle wrong artifact", func() error {
			_, err := VerifyBundle(res.Bundles[0], pubs, Expect{ArtifactSHA256: strings.Repeat("a", 64)})
			return err
		}},
		{"bundle wrong predicate type", func() error {
			_, err := VerifyBundle(res.Bundles[0], pubs, Expect{ArtifactSHA256: artifactSHA, PredicateType: "x"})
			return err
		}},
		{"bundle no artifact", func() error {
			_, err := VerifyBundle(res.Bundles[0], pubs, Expect{})
			return err
		}},
		{"tampered envelope", func() error {
			_, err := VerifyEnvelope(context.Background(), tenv, pubs, Expect{ArtifactSHA256: artifactSHA})
			return err
		}},
		{"envelope wrong key", func() error {
			_, err := VerifyEnvelope(context.Background(), goodEnv, []crypto.PublicKey{other.Public()}, Expect{AnyArtifact: true})
			return err
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.run(); !errors.Is(err, ErrVerify) {
				t.Fatalf("got %v, want ErrVerify", err)
			}
		})
	}
}
