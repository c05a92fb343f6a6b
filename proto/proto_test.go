package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

const hexA = "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"

func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./proto -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from golden:\n got %s\nwant %s", name, got, want)
	}
}

func exampleRequest() *SignRequest {
	return &SignRequest{
		Subject:            []Subject{{Name: "registry.example/app@sha256:" + hexA, Digest: map[string]string{"sha256": hexA}}},
		PredicateType:      "stella.ops/sbom@v1",
		Predicate:          json.RawMessage(`{"format":"cyclonedx-1.6","digest":"sha256:` + hexA + `","componentCount":412}`),
		ScannerImageDigest: "sha256:" + hexA,
		PoE:                &PoE{Format: "jwt", Value: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"},
		Options:            &SignOptions{Mode: ModeKeyful, KeyIDs: []string{"tenant-a-2026"}},
	}
}

func TestGoldenWire(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	golden(t, "sign_request.json", exampleRequest())
	golden(t, "sign_response.json", &SignResponse{
		RequestID: "req-1",
		AuditID:   "aud-1",
		Envelope: Envelope{
			PayloadType: PayloadTypeInToto,
			Payload:     []byte(`{"_type":"https://in-toto.io/Statement/v1"}`),
			Signatures:  []Signature{{KeyID: "tenant-a-2026", Sig: []byte{0x30, 0x45, 0x02}}},
		},
		Bundles: []json.RawMessage{json.RawMessage(`{"mediaType":"` + MediaTypeBundle + `"}`)},
		SigningIdentity: []SigningIdentity{{
			Mode: ModeKeyful, KeyID: "tenant-a-2026", KeySource: "pkcs11", Algorithm: "ecdsa-p256-sha256",
			PublicKeyHint: "aGludA==", CertificateChain: []string{}, BundleHash: "sha256:" + hexA,
		}},
		PayloadDigest: "sha256:" + hexA,
		BundleHash:    "sha256:" + hexA,
		Quota:         &Quota{Plan: "team", RemainingToday: 9412},
	})
	golden(t, "problem.json", NewProblem(CodePredicateNotAllowed, "predicate type not allowed for this tenant", "req-2"))
	golden(t, "keys_response.json", &KeysResponse{Keys: []KeyInfo{{
		ID: "tenant-a-2026", Algorithm: "ecdsa-p256-sha256", PublicKey: "-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----\n",
		PublicKeyHint: "aGludA==", Source: "file", Status: KeyStatusActive, NotBefore: &nb, Tenants: []string{"tenant-a"}, Default: true,
	}}})
	golden(t, "health.json", &Health{Status: "ok", Version: "1.0.0", Checks: map[string]string{"keys": "ok", "config": "ok"}})
}

// TestGoldenDecode: the golden request decodes strictly back to the same value.
func TestGoldenDecode(t *testing.T) {
	b, err := os.ReadFile("testdata/sign_request.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := DecodeSignRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := json.Marshal(r)
	want, _ := json.Marshal(exampleRequest())
	if !bytes.Equal(again, want) {
		t.Fatalf("round trip:\n%s\n%s", again, want)
	}
}

func TestDecodeSignRequestRejects(t *testing.T) {
	good, _ := json.Marshal(exampleRequest())
	g := string(good)
	rep := func(old, new string) string {
		if !strings.Contains(g, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(g, old, new, 1)
	}
	cases := map[string]string{
		"empty body":              ``,
		"malformed":               `{"subject":[`,
		"array":                   `[]`,
		"trailing":                g + `{}`,
		"unknown top field":       rep(`{"subject"`, `{"x":1,"subject"`),
		"unknown subject field":   rep(`"name"`, `"nme":"a","name"`),
		"unknown option field":    rep(`"mode"`, `"modes":"a","mode"`),
		"empty subject":           `{"subject":[],"predicateType":"a","predicate":{}}`,
		"missing subject":         `{"predicateType":"a","predicate":{}}`,
		"subject without name":    rep(`"name":"registry.example/app@sha256:`+hexA+`"`, `"name":""`),
		"subject without digest":  rep(`"digest":{"sha256":"`+hexA+`"}`, `"digest":{}`),
		"digest uppercase":        rep(`"sha256":"`+hexA, `"sha256":"`+strings.ToUpper(hexA)),
		"digest short":            rep(`"sha256":"`+hexA, `"sha256":"`+hexA[1:]),
		"digest md5":              rep(`"sha256":"`+hexA, `"md5":"`+hexA),
		"sha512 wrong length":     rep(`"sha256":"`+hexA, `"sha512":"`+hexA),
		"missing predicateType":   rep(`"predicateType":"stella.ops/sbom@v1"`, `"predicateType":""`),
		"predicateType spaces":    rep(`"predicateType":"stella.ops/sbom@v1"`, `"predicateType":"a b"`),
		"predicate null":          rep(`"predicate":{`, `"predicate":null,"x":{`),
		"predicate array":         rep(`"predicate":{"format"`, `"predicate":["format"`),
		"predicate big int":       rep(`412`, `9007199254740993`),
		"predicate huge float":    rep(`412`, `1e400`),
		"predicate rounded float": rep(`412`, `1.00000000000000000001`),
		"predicate dup key":       rep(`"componentCount":412`, `"componentCount":412,"componentCount":1`),
		"scanner digest bad":      rep(`"scannerImageDigest":"sha256:`, `"scannerImageDigest":"sha256:x`),
		"scanner digest no alg":   rep(`"scannerImageDigest":"sha256:`, `"scannerImageDigest":"`),
		"poe format":              rep(`"format":"jwt"`, `"format":"saml"`),
		"poe empty":               rep(`"value":"eyJhbGciOiJFUzI1NiJ9.e30.c2ln"`, `"value":""`),
		"mode":                    rep(`"mode":"keyful"`, `"mode":"magic"`),
		"dup key ids":             rep(`["tenant-a-2026"]`, `["a","a"]`),
		"empty key id":            rep(`["tenant-a-2026"]`, `[""]`),
		"report without policy":   rep(`stella.ops/sbom@v1`, ReportPredicateShort),
		"policy digest bad":       rep(`"options"`, `"policy":{"digest":"sha1:00"},"options"`),
		"deep predicate":          rep(`"componentCount":412`, `"componentCount":`+strings.Repeat("[", 70)+strings.Repeat("]", 70)),
		"wrong type":              rep(`"predicateType":"stella.ops/sbom@v1"`, `"predicateType":1`),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeSignRequest([]byte(body)); !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("got %v, want ErrInvalidRequest", err)
			}
		})
	}
}

func TestDecodeAcceptsNumbers(t *testing.T) {
	// 1e300 and 9007199254740994 are integers beyond 2^53 that a double
	// holds exactly: their RFC 8785 forms (1e+300, 9007199254740994) are the
	// same values, so the number rule of SPEC §15 accepts them.
	for _, n := range []string{"0", "-0", "9007199254740992", "-9007199254740992", "1.5", "1e2", "0.1", "-1.25e-7", "1e300", "9007199254740994"} {
		if err := CheckJSONObject([]byte(`{"n":` + n + `}`)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func TestCodes(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Codes() {
		if !c.Known() || c.Status() < 400 || c.Title() == "" {
			t.Errorf("code %s incomplete", c)
		}
		if seen[string(c)] {
			t.Errorf("duplicate %s", c)
		}
		seen[string(c)] = true
	}
	if len(seen) != 24 {
		t.Fatalf("%d codes, SPEC §4.3 has 24", len(seen))
	}
	p, err := DecodeProblem([]byte(`{"type":"x","code":"invalid_token","status":401,"extra":1}`))
	if err != nil || p.Code != CodeInvalidToken {
		t.Fatal(p, err)
	}
}
