package attest

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/stellaops/signer-agent/proto"
)

// referenceBundle is the library path: protobuf-specs types, protojson,
// then RFC 8785 with jcs.
func referenceBundle(t testing.TB, payload, sig []byte, hint string) []byte {
	b := &protobundle.Bundle{
		MediaType: proto.MediaTypeBundle,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: hint}},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: proto.PayloadTypeInToto,
			Signatures: []*protodsse.Signature{{Sig: sig, Keyid: ""}},
		}},
	}
	raw, err := protojson.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Canonicalize(raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestBundleJSONMatchesProtobufSpecs(t *testing.T) {
	for _, n := range []int{1, 2, 3, 100, 1024, 1 << 16} {
		payload := make([]byte, n)
		sig := make([]byte, 71)
		hintRaw := make([]byte, 32)
		rand.Read(payload)
		rand.Read(sig)
		rand.Read(hintRaw)
		hint := base64.StdEncoding.EncodeToString(hintRaw)
		got, err := BundleJSON(payload, sig, hint)
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceBundle(t, payload, sig, hint); !bytes.Equal(got, want) {
			t.Fatalf("payload %d bytes:\n got %s\nwant %s", n, got, want)
		}
	}
	if _, err := BundleJSON([]byte("p"), []byte("s"), `a"b`); err == nil {
		t.Fatal("hint with a quote accepted")
	}
	if _, err := BundleJSON(nil, []byte("s"), "aA=="); err == nil {
		t.Fatal("empty payload accepted")
	}
}

func FuzzBundleJSON(f *testing.F) {
	f.Add([]byte(`{"_type":"x"}`), []byte{0x30, 0x44}, "aGludA==")
	f.Fuzz(func(t *testing.T, payload, sig []byte, hintRaw string) {
		hint := base64.StdEncoding.EncodeToString([]byte(hintRaw))
		got, err := BundleJSON(payload, sig, hint)
		if len(payload) == 0 || len(sig) == 0 || hint == "" {
			if err == nil {
				t.Fatal("empty field accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := referenceBundle(t, payload, sig, hint); !bytes.Equal(got, want) {
			t.Fatalf("got %s\nwant %s", got, want)
		}
	})
}
