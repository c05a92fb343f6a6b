package fido2

import (
	"bytes"
	"path/filepath"
	"testing"
)

// FuzzParseFile: ParseFile never panics, and what it accepts re-encodes to
// a file it parses the same way.
func FuzzParseFile(f *testing.F) {
	a, err := NewSoftAuthenticator()
	if err != nil {
		f.Fatal(err)
	}
	path := filepath.Join(f.TempDir(), "seed.json")
	if _, err := Enroll(a, path, "seed.example", Policy{UP: true}, ""); err != nil {
		f.Fatal(err)
	}
	if err := AddAuthenticator(path, a, mustSoft(f), ""); err != nil {
		f.Fatal(err)
	}
	f.Add(mustRead(f, path))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"rpId":"x","algorithm":"ecdsa-p256-sha256","publicKey":"AA==","policy":{"up":true},"wraps":[{}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		pf, err := ParseFile(data)
		if err != nil {
			return
		}
		out, err := pf.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed file: %v", err)
		}
		again, err := ParseFile(out)
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		out2, err := again.Marshal()
		if err != nil || !bytes.Equal(out, out2) {
			t.Fatalf("encoding not stable")
		}
	})
}

func mustSoft(t testing.TB) *SoftAuthenticator {
	t.Helper()
	a, err := NewSoftAuthenticator()
	if err != nil {
		t.Fatal(err)
	}
	return a
}
