package verify_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stellaops/signer-agent/client/verify"
	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// FuzzVerify: bundles and envelopes of any shape never panic the
// verifier, and whatever verifies carries the one statement that was
// signed (a changed payload never verifies).
func FuzzVerify(f *testing.F) {
	k, err := keys.NewMemoryKey(keys.AlgECDSAP256)
	if err != nil {
		f.Fatal(err)
	}
	payload, err := attest.BuildStatement(&proto.SignRequest{
		Subject:       []proto.Subject{{Name: "a", Digest: map[string]string{"sha256": artifactHex}}},
		PredicateType: "stella.ops/sbom@v1",
		Predicate:     json.RawMessage(`{"n":1}`),
	})
	if err != nil {
		f.Fatal(err)
	}
	res, err := attest.Sign(context.Background(), payload, []attest.Signer{{ID: "k", Source: "memory", Key: k}})
	if err != nil {
		f.Fatal(err)
	}
	env, _ := json.Marshal(res.Envelope)
	f.Add([]byte(res.Bundles[0]), false)
	f.Add(env, true)
	f.Add([]byte(`{"verificationMaterial":{"publicKey":{"hint":"x"}}}`), false)
	f.Add([]byte(`{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"sig":"AA=="}]}`), true)
	ks, err := verify.NewKeySet(
		verify.Key{ID: "k", Public: k.Public(), Status: proto.KeyStatusActive},
	)
	if err != nil {
		f.Fatal(err)
	}
	want := attest.Digest(payload)
	f.Fuzz(func(t *testing.T, b []byte, envelope bool) {
		opts := verify.Options{AnyArtifact: true}
		var r *verify.Result
		var err error
		if envelope {
			r, err = verify.Envelope(context.Background(), ks, b, opts)
		} else {
			r, err = verify.Bundle(ks, b, opts)
		}
		if err != nil {
			return
		}
		if r.PayloadDigest != want {
			t.Fatalf("verified a statement that was never signed: %s", r.PayloadDigest)
		}
	})
}

// FuzzKeysFromResponse: a GET /keys answer of any shape either builds a
// key set whose every key has a hint and a known status, or is refused;
// it never panics.
func FuzzKeysFromResponse(f *testing.F) {
	k, err := keys.NewMemoryKey(keys.AlgEd25519)
	if err != nil {
		f.Fatal(err)
	}
	pemBytes, _ := keys.MarshalPublicKeyPEM(k.Public())
	good, _ := json.Marshal(proto.KeysResponse{Keys: []proto.KeyInfo{{ID: "a", PublicKey: string(pemBytes), Status: proto.KeyStatusVerifyOnly}}})
	f.Add(good)
	f.Add([]byte(`{"keys":[{"id":"a","publicKey":"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r proto.KeysResponse
		if json.Unmarshal(b, &r) != nil {
			return
		}
		s, err := verify.KeysFromResponse(&r)
		if err != nil {
			return
		}
		for _, key := range s.Keys() {
			if key.Hint == "" || key.Public == nil || key.ID == "" {
				t.Fatalf("key %+v", key)
			}
		}
	})
}
