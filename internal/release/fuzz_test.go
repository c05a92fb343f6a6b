package release

import (
	"strings"
	"testing"
)

func FuzzParseSimpleSigning(f *testing.F) {
	d := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	f.Add(simpleSigningPayload("registry.example/stella/scanner", d, nil))
	f.Add(simpleSigningPayload("registry.example/stella/scanner", d, map[string]string{AnnotationVersion: "1.2.3", "creator": "ci"}))
	f.Add([]byte(`{"critical":{"identity":{"docker-reference":""},"image":{"docker-manifest-digest":"sha256:"},"type":"atomic container signature"},"optional":{}}`))
	f.Add([]byte(`{"critical":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := ParseSimpleSigning(b)
		if err != nil {
			return
		}
		if ValidateDigest(ss.Digest) != nil {
			t.Fatalf("accepted payload with digest %q", ss.Digest)
		}
	})
}

func FuzzParseAllowlist(f *testing.F) {
	f.Add([]byte(allowlistYAML))
	f.Add([]byte("entries: []\n"))
	f.Add([]byte("entries:\n  - digest: sha256:" + strings.Repeat("a", 64) + "\n    approvedAt: 2026-01-01\n"))
	f.Add([]byte("entries:\n  - {digest: sha256:" + strings.Repeat("b", 64) + ", version: v2, approvedBy: x, approvedAt: 2026-01-01T00:00:00+02:00}\n"))
	f.Add([]byte("entries: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := ParseAllowlist(b)
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if validateEntry(e) != nil || seen[e.Digest] {
				t.Fatalf("accepted invalid or duplicate entry %+v", e)
			}
			seen[e.Digest] = true
		}
		if len(entries) > 0 {
			if _, err := New(Config{Allowlist: entries}); err != nil {
				t.Fatalf("parsed allowlist refused by New: %v", err)
			}
		}
	})
}

func FuzzCheckVersionWindow(f *testing.F) {
	f.Add("1.4.2", "1.4.0", "1.5")
	f.Add("v2.0.0-rc.1+b", "", "v2")
	f.Add("", "1", "")
	f.Fuzz(func(t *testing.T, v, e, l string) {
		err := CheckVersionWindow(v, e, l)
		if e == "" && l == "" && err != nil {
			t.Fatalf("open window refused %q: %v", v, err)
		}
		if v == "" && (e != "" || l != "") && err == nil {
			t.Fatal("unknown version accepted with a window")
		}
	})
}
