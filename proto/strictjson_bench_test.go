package proto

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// sbomBody is a sign request whose predicate is a CycloneDX-like SBOM of at
// least predBytes bytes (the same shape as attest's BenchmarkBodyGate).
func sbomBody(tb testing.TB, predBytes int) []byte {
	tb.Helper()
	var p strings.Builder
	p.WriteString(`{"specVersion":"1.6","bomFormat":"CycloneDX","version":1,"components":[`)
	for i := 0; p.Len() < predBytes-30 || i == 0; i++ {
		if i > 0 {
			p.WriteByte(',')
		}
		fmt.Fprintf(&p, `{"type":"library","name":"pkg-%d","version":"1.%d.%d","purl":"pkg:npm/pkg-%d@1.%d.%d","scope":"required",`+
			`"hashes":[{"alg":"SHA-256","content":"%s"}],"licenses":[{"license":{"id":"MIT"}}],"score":%d.25,"note":"caf\u00e9 \"q\""}`,
			i, i%17, i%5, i, i%17, i%5, hexA, i%10)
	}
	p.WriteString(`],"componentCount":412}`)
	r := exampleRequest()
	r.Predicate = json.RawMessage(p.String())
	b, err := json.Marshal(r)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkDecodeDesign compares the decoder designs discussed in
// strictdecode.go on the same bodies, decode and validation only:
// "encoding-json" is the old DecodeSignRequest path (encoding/json, then
// the predicate walked again with encoding/json tokens); "scan+encoding-json"
// is the alternative design (the strict scanner over the whole body, then
// encoding/json into the struct; its per-type case-sensitive name check is
// left out, so it is measured a little faster than it would be); "strict"
// is DecodeSignRequest.
func BenchmarkDecodeDesign(b *testing.B) {
	for _, size := range []struct {
		name  string
		bytes int
	}{{"1KiB", 760}, {"1MiB", 1 << 20}} {
		body := sbomBody(b, size.bytes)
		for _, impl := range []struct {
			name   string
			decode func([]byte) error
		}{
			{"encoding-json", func(body []byte) error {
				var r SignRequest
				dec := json.NewDecoder(bytes.NewReader(body))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&r); err != nil {
					return err
				}
				return walkPredicateTokens(r.Predicate)
			}},
			{"scan+encoding-json", func(body []byte) error {
				s := scanner{data: body, maxDepth: MaxJSONDepth + 1}
				if err := s.skipValue(); err != nil {
					return err
				}
				if err := s.end(); err != nil {
					return err
				}
				var r SignRequest
				if err := json.Unmarshal(body, &r); err != nil {
					return err
				}
				return r.validate(false)
			}},
			{"strict", func(body []byte) error {
				_, err := DecodeSignRequest(body)
				return err
			}},
		} {
			b.Run(size.name+"/"+impl.name, func(b *testing.B) {
				if err := impl.decode(body); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					if err := impl.decode(body); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// walkPredicateTokens is the old CheckJSONObject's cost: every token of the
// predicate through encoding/json's Decoder.
func walkPredicateTokens(p []byte) error {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	for {
		_, err := dec.Token()
		if err != nil {
			if err.Error() == "EOF" {
				return nil
			}
			return err
		}
	}
}
