package client

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/proto"
)

// realSignResponse is a sign response of the agent's shape and size for a
// statement of about n bytes and one signature: the payload in the
// envelope and again in the bundle, both standard base64.
func realSignResponse(n int) []byte {
	stmt := `{"_type":"https://in-toto.io/Statement/v1","predicate":{"componentCount":412,"filler":"` + strings.Repeat("x", max(n-200, 0)) +
		`","format":"cyclonedx-1.6"},"predicateType":"stella.ops/sbom@v1","subject":[{"digest":{"sha256":"2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"},"name":"registry.example/app"}]}`
	p := base64.StdEncoding.EncodeToString([]byte(stmt))
	sig := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x30", 71)))
	bundle := `{"dsseEnvelope":{"payload":"` + p + `","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"` + sig +
		`"}]},"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"aGludGhpbnRoaW50aGludGhpbnRoaW50aGludGhpbnQ="}}}`
	h := "sha256:2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"
	return []byte(`{"requestId":"01JABCDEF0123456789","auditId":"aud-01JABCDEF0123456789","envelope":{"payloadType":"application/vnd.in-toto+json","payload":"` + p +
		`","signatures":[{"keyid":"dev","sig":"` + sig + `"}]},"bundles":[` + bundle + `],"signingIdentity":[{"mode":"keyful","keyId":"dev","keySource":"file","algorithm":"ecdsa-p256-sha256","publicKeyHint":"aGludA==","certificateChain":[],"bundleHash":"` + h +
		`"}],"payloadDigest":"` + h + `","bundleHash":"` + h + `","quota":{"plan":"team","remainingToday":9412}}`)
}

// BenchmarkDecodeSignResponse: decoding a 1 KiB statement's sign response,
// as SignDSSE does after reading the body.
func BenchmarkDecodeSignResponse(b *testing.B) {
	body := realSignResponse(1024)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var out proto.SignResponse
		if err := decodeBody(body, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSignResponseStdlib is the encoding/json baseline.
func BenchmarkDecodeSignResponseStdlib(b *testing.B) {
	body := realSignResponse(1024)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var out proto.SignResponse
		if err := json.Unmarshal(body, &out); err != nil {
			b.Fatal(err)
		}
	}
}
