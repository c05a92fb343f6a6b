package agent

import (
	"bytes"
	"testing"

	"github.com/stellaops/signer-agent/internal/attest"
)

func TestWithoutPoE(t *testing.T) {
	for name, c := range map[string]struct{ in, want string }{
		"sign":          {`{"poe":{"format":"jwt","value":"a"},"predicateType":"t","subject":[]}`, `{"predicateType":"t","subject":[]}`},
		"no poe":        {`{"predicateType":"t"}`, `{"predicateType":"t"}`},
		"batch":         {`{"poe":{"format":"jwt","value":"a"},"requests":[{"poe":{"format":"jwt","value":"a"},"x":1},{"x":2},"bad"]}`, `{"requests":[{"x":1},{"x":2},"bad"]}`},
		"not an object": {`[1,2]`, `[1,2]`},
		"not JSON":      {`{"poe":`, `{"poe":`},
	} {
		t.Run(name, func(t *testing.T) {
			got := withoutPoE([]byte(c.in))
			want, err := attest.Canonicalize([]byte(c.want))
			if err != nil {
				want = []byte(c.want)
			}
			if canon, err := attest.Canonicalize(got); err == nil {
				got = canon
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("got %s, want %s", got, want)
			}
		})
	}
}

// FuzzWithoutPoE: any body is handled without panicking, and what it
// returns for a document with a canonical form has one too.
func FuzzWithoutPoE(f *testing.F) {
	f.Add([]byte(`{"poe":{"format":"jwt","value":"a"},"predicateType":"stella.ops/sbom@v1","predicate":{"n":1e2},"subject":[{"name":"a","digest":{"sha256":"00"}}]}`))
	f.Add([]byte(`{"requests":[{"poe":{"format":"opaque","value":"v"}},{}],"scannerImageDigest":"sha256:00"}`))
	f.Add([]byte(`{"requests":7}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		out := withoutPoE(b)
		if _, err := attest.Canonicalize(b); err == nil {
			if _, err := attest.Canonicalize(out); err != nil {
				t.Fatalf("a canonicalisable body lost its canonical form: %s -> %s: %v", b, out, err)
			}
		}
	})
}
