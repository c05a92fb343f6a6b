package attest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"

	"github.com/stellaops/signer-agent/proto"
)

// benchBody returns a sign request body whose predicate is a CycloneDX-like
// SBOM (nested objects with unsorted members, arrays, numbers, escapes)
// grown to at least predBytes bytes.
func benchBody(tb testing.TB, predBytes int) []byte {
	tb.Helper()
	var p strings.Builder
	p.WriteString(`{"specVersion":"1.6","bomFormat":"CycloneDX","serialNumber":"urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79","version":1,` +
		`"metadata":{"timestamp":"2026-12-03T10:00:00Z","tools":[{"vendor":"stella.ops","name":"scanner","version":"2.4.1"}],"component":{"type":"container","name":"registry.example/app","version":"sha256:` + artifactSHA + `"}},` +
		`"components":[`)
	for i := 0; p.Len() < predBytes-300 || i == 0; i++ {
		if i > 0 {
			p.WriteByte(',')
		}
		fmt.Fprintf(&p, `{"type":"library","name":"pkg-%d","version":"1.%d.%d","purl":"pkg:npm/pkg-%d@1.%d.%d","scope":"required",`+
			`"hashes":[{"alg":"SHA-256","content":"%s"}],"licenses":[{"license":{"id":"MIT"}}],"properties":[{"name":"stella:layer","value":"%d"}],"score":%d.25,"note":"caf\u00e9 \"quoted\""}`,
			i, i%17, i%5, i, i%17, i%5, artifactSHA, i%9, i%10)
	}
	p.WriteString(`],"componentCount":412}`)
	body, err := json.Marshal(&proto.SignRequest{
		Subject:            []proto.Subject{{Name: "registry.example/app@sha256:" + artifactSHA, Digest: map[string]string{"sha256": artifactSHA}}},
		PredicateType:      "stella.ops/sbom@v1",
		Predicate:          json.RawMessage(p.String()),
		ScannerImageDigest: "sha256:" + artifactSHA,
		PoE:                &proto.PoE{Format: "jwt", Value: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"},
		Options:            &proto.SignOptions{Mode: proto.ModeKeyful, KeyIDs: []string{"tenant-a-2026"}},
	})
	if err != nil {
		tb.Fatal(err)
	}
	return body
}

// BenchmarkBodyGate is the agent's body gate without HTTP: strict decode and
// validation of a sign request, then the canonical statement. "legacy" is
// the encoding/json + gowebpki/jcs path this package had before (see
// legacy_test.go), "current" the strict decoder and the tree-free
// canonicaliser; both run in the same process, so their ratio is
// meaningful on a shared machine.
func BenchmarkBodyGate(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"1KiB-statement", 760}, {"1MiB-predicate", 1 << 20}} {
		body := benchBody(b, size.bytes)
		for _, impl := range []struct {
			name   string
			decode func([]byte) (*proto.SignRequest, error)
			build  func(*proto.SignRequest) ([]byte, error)
		}{
			{"legacy", legacyDecodeSignRequest, legacyBuildStatement},
			{"current", proto.DecodeSignRequest, BuildStatement},
		} {
			b.Run(size.name+"/"+impl.name, func(b *testing.B) {
				st, err := impl.build(mustDecode(b, impl.decode, body))
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					r, err := impl.decode(body)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := impl.build(r); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(st)), "statement-bytes")
			})
		}
	}
}

func mustDecode(tb testing.TB, decode func([]byte) (*proto.SignRequest, error), body []byte) *proto.SignRequest {
	tb.Helper()
	r, err := decode(body)
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

// BenchmarkCanonicalizeNested is the canonicaliser's worst case: every
// object out of order, nested MaxJSONDepth deep around a 1 MiB string, so
// each level moves everything inside it once (the copying is bounded by
// depth × size). "sorted" is the same document already in order; "jcs" is
// gowebpki/jcs, which the agent used before.
func BenchmarkCanonicalizeNested(b *testing.B) {
	inner := `"` + strings.Repeat("x", 1<<20) + `"`
	unsorted, sorted := inner, inner
	for range proto.MaxJSONDepth - 1 {
		unsorted = `{"z":0,"a":` + unsorted + `}`
		sorted = `{"a":` + sorted + `,"z":0}`
	}
	for _, c := range []struct{ name, doc string }{{"unsorted", unsorted}, {"sorted", sorted}} {
		for _, impl := range []struct {
			name string
			f    func([]byte) ([]byte, error)
		}{{"jcs", jcs.Transform}, {"current", Canonicalize}} {
			b.Run(c.name+"/"+impl.name, func(b *testing.B) {
				b.SetBytes(int64(len(c.doc)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := impl.f([]byte(c.doc)); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
