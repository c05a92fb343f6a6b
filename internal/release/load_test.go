package release

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const allowlistYAML = `# release allowlist
entries:
  - digest: sha256:1111111111111111111111111111111111111111111111111111111111111111
    version: 1.4.2
  - digest: sha256:2222222222222222222222222222222222222222222222222222222222222222
    version: v1.5.0-rc.1
    approvedBy: alice@example.org
    approvedAt: 2026-04-30T09:00:00Z
    note: emergency approval, INC-42
  - digest: sha256:3333333333333333333333333333333333333333333333333333333333333333
    approvedBy: bob@example.org
    approvedAt: "2026-05-01"
`

func TestLoadAllowlist(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "allowlist.yaml", []byte(allowlistYAML))
	got, err := LoadAllowlist(filepath.Join(dir, "allowlist.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d entries", len(got))
	}
	if got[0].Version != "1.4.2" || got[0].ApprovedBy != "" || got[0].ApprovedAt != nil {
		t.Errorf("entry 0: %+v", got[0])
	}
	at := time.Date(2026, 4, 30, 9, 0, 0, 0, time.UTC)
	if got[1].ApprovedBy != "alice@example.org" || got[1].ApprovedAt == nil || !got[1].ApprovedAt.Equal(at) || got[1].Note != "emergency approval, INC-42" {
		t.Errorf("entry 1: %+v", got[1])
	}
	if got[2].ApprovedAt == nil || !got[2].ApprovedAt.Equal(time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("entry 2: %+v", got[2])
	}
	if _, err := New(Config{Allowlist: got}); err != nil {
		t.Errorf("New with the loaded allowlist: %v", err)
	}
}

func TestParseAllowlistErrors(t *testing.T) {
	d1 := "sha256:" + strings.Repeat("1", 64)
	tests := map[string]string{
		"unknown entry key":       "entries:\n  - digest: " + d1 + "\n    approver: x\n",
		"unknown top-level key":   "version: 1\nentries: []\n",
		"bad digest":              "entries:\n  - digest: sha256:abc\n",
		"uppercase digest":        "entries:\n  - digest: sha256:" + strings.Repeat("A", 64) + "\n",
		"missing digest":          "entries:\n  - version: 1.0.0\n",
		"duplicate digest":        "entries:\n  - digest: " + d1 + "\n  - digest: " + d1 + "\n",
		"bad version":             "entries:\n  - digest: " + d1 + "\n    version: latest\n",
		"bad approvedAt":          "entries:\n  - digest: " + d1 + "\n    approvedBy: a\n    approvedAt: yesterday\n",
		"approvedAt without by":   "entries:\n  - digest: " + d1 + "\n    approvedAt: 2026-01-01\n",
		"entries not a list":      "entries: {digest: " + d1 + "}\n",
		"two documents":           "entries: []\n---\nentries: []\n",
		"not YAML":                "entries: [\n",
		"duplicate key in a file": "entries: []\nentries: []\n",
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseAllowlist([]byte(in)); !errors.Is(err, ErrAllowlist) {
				t.Errorf("ParseAllowlist: %v, want ErrAllowlist", err)
			}
		})
	}
	for _, empty := range []string{"", "# nothing\n", "entries: []\n"} {
		if got, err := ParseAllowlist([]byte(empty)); err != nil || len(got) != 0 {
			t.Errorf("ParseAllowlist(%q) = %v, %v; want empty", empty, got, err)
		}
	}
	if _, err := LoadAllowlist(filepath.Join(t.TempDir(), "missing.yaml")); !errors.Is(err, ErrAllowlist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadKeys(t *testing.T) {
	dir := t.TempDir()
	k1 := newKey(t)
	k2, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	edPub, _, _ := ed25519.GenerateKey(rand.Reader)
	writePublicPEM(t, filepath.Join(dir, "a.pub"), &k1.PublicKey)
	writePublicPEM(t, filepath.Join(dir, "b.pem"), &k2.PublicKey)
	writePublicPEM(t, filepath.Join(dir, "ignored.txt"), edPub)
	single := filepath.Join(t.TempDir(), "cosign.pub")
	writePublicPEM(t, single, edPub)
	dup := filepath.Join(t.TempDir(), "dup.pem")
	writePublicPEM(t, dup, &k1.PublicKey)

	keys, err := LoadKeys(dir, single, dup)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{hintOf(t, &k1.PublicKey), hintOf(t, &k2.PublicKey), hintOf(t, edPub)}
	if len(keys) != len(want) {
		t.Fatalf("%d keys, want %d", len(keys), len(want))
	}
	for i, k := range keys {
		if hintOf(t, k) != want[i] {
			t.Errorf("key %d is not the expected one", i)
		}
	}
}

func TestLoadKeysErrors(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	writeFile(t, dir, "private.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	writeFile(t, dir, "empty.pem", []byte("no PEM here\n"))
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	writePublicPEM(t, filepath.Join(dir, "small.pem"), &small.PublicKey)
	writeFile(t, dir, "garbage.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}))
	empty := t.TempDir()

	for _, p := range []string{"private.pem", "small.pem", "garbage.pem"} {
		if _, err := LoadKeys(filepath.Join(dir, p)); err == nil {
			t.Errorf("LoadKeys(%s) succeeded", p)
		}
	}
	for _, p := range []string{filepath.Join(dir, "empty.pem"), empty} {
		if _, err := LoadKeys(p); !errors.Is(err, ErrNoKeys) {
			t.Errorf("LoadKeys(%s): %v, want ErrNoKeys", p, err)
		}
	}
	if _, err := LoadKeys(); !errors.Is(err, ErrNoKeys) {
		t.Errorf("LoadKeys(): %v, want ErrNoKeys", err)
	}
	if _, err := LoadKeys(filepath.Join(dir, "missing.pem")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestParseSimpleSigning(t *testing.T) {
	d := "sha256:" + strings.Repeat("a", 64)
	good := simpleSigningPayload("registry.example/stella/scanner", d, map[string]string{AnnotationVersion: "1.2.3"})
	ss, err := ParseSimpleSigning(good)
	if err != nil {
		t.Fatal(err)
	}
	if ss.Digest != d || ss.DockerReference != "registry.example/stella/scanner" || ss.Version != "1.2.3" {
		t.Errorf("parsed %+v", ss)
	}
	bad := map[string]string{
		"wrong type":      strings.Replace(string(good), "cosign container image signature", "atomic container signature", 1),
		"bad digest":      strings.Replace(string(good), d, "sha256:abc", 1),
		"sha512 digest":   strings.Replace(string(good), d, "sha512:"+strings.Repeat("a", 128), 1),
		"trailing data":   string(good) + `{}`,
		"not JSON":        "nope",
		"empty":           "",
		"critical absent": `{"optional":null}`,
	}
	for name, in := range bad {
		if _, err := ParseSimpleSigning([]byte(in)); !errors.Is(err, ErrSimpleSigning) {
			t.Errorf("%s: %v, want ErrSimpleSigning", name, err)
		}
	}
}
