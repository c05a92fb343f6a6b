package trustroot_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
)

func pubPEM(t testing.TB, pub any) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func selfSigned(t testing.TB, cn string) *x509.Certificate {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Unix(1700000000, 0), NotAfter: time.Unix(2000000000, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

// TestBuildRoundTrip: what Build writes, Load reads back, and cosign's
// parser (sigstore-go) accepts the trusted root; output is deterministic.
func TestBuildRoundTrip(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rekorPub, _, _ := ed25519.GenerateKey(rand.Reader)
	nb, na := time.Unix(1767225600, 0).UTC(), time.Unix(1798761600, 0).UTC()
	in := trustroot.Input{
		Keys: []proto.KeyInfo{
			{ID: "b", PublicKey: pubPEM(t, &k.PublicKey), Status: proto.KeyStatusRevoked, Tenants: []string{"t"}},
			{ID: "a", PublicKey: pubPEM(t, &k.PublicKey), Status: proto.KeyStatusActive, NotBefore: &nb, NotAfter: &na, Default: true},
		},
		FulcioChain: []*x509.Certificate{selfSigned(t, "fulcio")},
		TSAChain:    []*x509.Certificate{selfSigned(t, "tsa")},
		Rekor:       []trustroot.RekorLog{{URL: "https://rekor.example", Origin: "rekor.example", PublicKey: rekorPub}},
	}
	m, err := trustroot.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	rootJSON, err := m.MarshalRoot()
	if err != nil {
		t.Fatal(err)
	}
	keysJSON, err := m.MarshalKeys()
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := trustroot.Build(in)
	r2, _ := m2.MarshalRoot()
	k2, _ := m2.MarshalKeys()
	if string(r2) != string(rootJSON) || string(k2) != string(keysJSON) {
		t.Fatal("two builds of one input differ")
	}
	if !strings.Contains(string(rootJSON), `"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"`) {
		t.Fatalf("media type: %s", rootJSON)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "trusted_root.json")
	if err := trustroot.WriteFile(p, rootJSON); err != nil {
		t.Fatal(err)
	}
	if err := trustroot.WriteFile(trustroot.KeysPathFor(p), keysJSON); err != nil {
		t.Fatal(err)
	}
	got, err := trustroot.Load(p, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Keys) != 2 || got.Keys[0].ID != "a" || !got.Keys[0].NotAfter.Equal(na) || !got.Keys[1].Revoked() {
		t.Fatalf("keys %+v", got.Keys)
	}
	if len(got.Root.RekorLogs()) != 1 || len(got.Root.FulcioCertificateAuthorities()) != 1 || len(got.Root.TimestampingAuthorities()) != 1 {
		t.Fatal("trusted root lost entries")
	}
	if strings.Contains(string(keysJSON), `"tenants":["t"]`) || strings.Contains(string(keysJSON), `"default"`) {
		t.Error("keys file carries tenants or the default flag")
	}
	hint, _ := keys.PublicKeyHint(&k.PublicKey)
	if got.Key(hint) == nil {
		t.Error("Key(hint)")
	}
	// Without a keys file: keys are optional unless named.
	os.Remove(trustroot.KeysPathFor(p))
	if m, err := trustroot.Load(p, ""); err != nil || len(m.Keys) != 0 {
		t.Fatalf("without keys: %v", err)
	}
	if _, err := trustroot.Load(p, filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("a named keys file that is missing was accepted")
	}
}

// TestParseKeysRefuses: malformed key lists are refused with ErrInvalid.
func TestParseKeysRefuses(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p := pubPEM(t, &k.PublicKey)
	q, _ := json.Marshal(p)
	for name, doc := range map[string]string{
		"not JSON":        `nope`,
		"unknown field":   `{"keys":[],"extra":1}`,
		"other media":     `{"mediaType":"application/json","keys":[]}`,
		"duplicate id":    `{"keys":[{"id":"a","publicKey":` + string(q) + `,"status":"active"},{"id":"a","publicKey":` + string(q) + `,"status":"active"}]}`,
		"no id":           `{"keys":[{"publicKey":` + string(q) + `,"status":"active"}]}`,
		"bad status":      `{"keys":[{"id":"a","publicKey":` + string(q) + `,"status":"gone"}]}`,
		"not PEM":         `{"keys":[{"id":"a","publicKey":"x","status":"active"}]}`,
		"wrong hint":      `{"keys":[{"id":"a","publicKey":` + string(q) + `,"publicKeyHint":"AAAA","status":"active"}]}`,
		"wrong algorithm": `{"keys":[{"id":"a","publicKey":` + string(q) + `,"algorithm":"ed25519","status":"active"}]}`,
		"window reversed": `{"keys":[{"id":"a","publicKey":` + string(q) + `,"status":"active","notBefore":"2027-01-01T00:00:00Z","notAfter":"2026-01-01T00:00:00Z"}]}`,
		"chain not PEM":   `{"keys":[{"id":"a","publicKey":` + string(q) + `,"status":"active","certificateChain":["x"]}]}`,
		"trailing data":   `{"keys":[]} {}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := trustroot.ParseKeys([]byte(doc)); !errors.Is(err, trustroot.ErrInvalid) {
				t.Fatalf("got %v", err)
			}
		})
	}
	// A chain whose leaf is another key's certificate.
	other := selfSigned(t, "other")
	bad := proto.KeyInfo{ID: "a", PublicKey: p, Status: "active", CertificateChain: []string{string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: other.Raw}))}}
	if _, err := trustroot.Build(trustroot.Input{Keys: []proto.KeyInfo{bad}}); !errors.Is(err, trustroot.ErrInvalid) {
		t.Fatalf("foreign leaf: %v", err)
	}
	if _, err := trustroot.Build(trustroot.Input{FulcioChain: []*x509.Certificate{selfSigned(t, "a"), selfSigned(t, "b")}}); !errors.Is(err, trustroot.ErrInvalid) {
		t.Fatalf("broken chain: %v", err)
	}
}

func TestKeysPathFor(t *testing.T) {
	for in, want := range map[string]string{
		"/kit/trusted_root.json": "/kit/trusted_keys.json",
		"offline.json":           "offline.keys.json",
	} {
		if got := trustroot.KeysPathFor(in); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

func FuzzParseKeys(f *testing.F) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	q, _ := json.Marshal(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})))
	f.Add([]byte(`{"mediaType":"` + trustroot.MediaTypeKeys + `","keys":[{"id":"a","publicKey":` + string(q) + `,"status":"active","notAfter":"2027-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := trustroot.ParseKeys(b)
		if err != nil {
			return
		}
		for _, k := range ks {
			if k.ID == "" || k.Hint == "" || k.PublicKey == nil {
				t.Fatalf("accepted an incomplete key %+v", k)
			}
		}
	})
}

func FuzzParseRoot(f *testing.F) {
	m, err := trustroot.Build(trustroot.Input{FulcioChain: []*x509.Certificate{selfSigned(f, "fulcio")}})
	if err != nil {
		f.Fatal(err)
	}
	b, _ := m.MarshalRoot()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = trustroot.ParseRoot(b)
	})
}
