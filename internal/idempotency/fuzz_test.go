package idempotency

import (
	"bytes"
	"testing"
	"time"
)

// FuzzParseFrames: any journal bytes parse without panicking; what parses
// re-encodes to the same bytes; the parsed prefix never passes the input.
func FuzzParseFrames(f *testing.F) {
	e := &Entry{Tenant: "dev", Key: "scan-7f3a/sbom", Hash: hashOf("r"), Status: 200,
		Body: []byte(`{"requestId":"r1","auditId":"a1"}` + "\n"), AuditIDs: []string{"a1"},
		Created: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	one, err := appendFrame(nil, e)
	if err != nil {
		f.Fatal(err)
	}
	two, _ := appendFrame(append([]byte(nil), one...), &Entry{Tenant: "acme", Key: "k", Hash: hashOf("b"),
		Status: 200, Body: []byte("{}"), AuditIDs: []string{"x", "y"}, Created: e.Created.Add(time.Second)})
	f.Add(one)
	f.Add(two)
	f.Add(two[:len(two)-3])
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		es, n := parseFrames(b)
		if n < 0 || n > len(b) {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		var out []byte
		for i := range es {
			var err error
			if out, err = appendFrame(out, &es[i]); err != nil {
				t.Fatal(err)
			}
		}
		es2, n2 := parseFrames(out)
		if n2 != len(out) || len(es2) != len(es) {
			t.Fatalf("re-encoded %d entries parse as %d (%d of %d bytes)", len(es), len(es2), n2, len(out))
		}
		for i := range es {
			a, c := es[i], es2[i]
			if a.Tenant != c.Tenant || a.Key != c.Key || a.Hash != c.Hash || a.Status != c.Status ||
				!bytes.Equal(a.Body, c.Body) || !a.Created.Equal(c.Created) || len(a.AuditIDs) != len(c.AuditIDs) {
				t.Fatalf("entry %d changed in a round trip", i)
			}
		}
	})
}
