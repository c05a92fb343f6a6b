package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/auth/authoritytest"
)

// fuzzEnv is a Verifier over fixed keys, so that every fuzz worker process
// builds the same trust and the same valid inputs (tokens are Ed25519,
// deterministic; ECDSA signatures vary but verify everywhere).
type fuzzEnv struct {
	v          *Verifier
	clock      *authoritytest.Clock
	edKey      crypto.Signer // issuer, kid "fuzz-ed"
	ecKey      crypto.Signer // issuer, kid "fuzz-ec"
	dpop       crypto.Signer
	tok        string // a valid token bound to dpop
	claims     *Claims
	validInput map[string]bool // header.payload of every valid JWS minted here
}

const fuzzIssuer = "https://authority.test"

func fixedEC(tb testing.TB, b byte) *ecdsa.PrivateKey {
	d := make([]byte, 32)
	d[31] = b
	d[0] = 0x42
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func newFuzzEnv(tb testing.TB) *fuzzEnv {
	e := &fuzzEnv{
		clock:      authoritytest.NewClock(authoritytest.Epoch),
		edKey:      ed25519.NewKeyFromSeed(make([]byte, 32)),
		ecKey:      fixedEC(tb, 1),
		dpop:       fixedEC(tb, 2),
		validInput: map[string]bool{},
	}
	jwks, err := json.Marshal(map[string]any{"keys": []any{
		authoritytest.PublicJWK(e.edKey.Public(), "EdDSA", "fuzz-ed"),
		authoritytest.PublicJWK(e.ecKey.Public(), "ES256", "fuzz-ec"),
	}})
	if err != nil {
		tb.Fatal(err)
	}
	file := filepath.Join(tb.TempDir(), "jwks.json")
	if err := os.WriteFile(file, jwks, 0o644); err != nil {
		tb.Fatal(err)
	}
	e.v, err = New(context.Background(), Config{
		Issuer: fuzzIssuer, JWKSFile: file, Installation: authoritytest.Installation,
		NonceRequired: true, NonceKey: []byte("fuzz nonce key, 32 bytes long.."), Now: e.clock.Now,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = e.v.Close() })
	e.tok = e.mint(nil, "fuzz-ed", e.edKey)
	if e.claims, err = e.v.VerifyToken(context.Background(), e.tok); err != nil {
		tb.Fatal(err)
	}
	return e
}

func (e *fuzzEnv) defaultClaims() map[string]any {
	now := e.clock.Now().Unix()
	return map[string]any{
		"iss": fuzzIssuer, "sub": "s", "aud": "signer", "iat": now, "nbf": now, "exp": now + 300,
		"jti": "fuzz", "scope": "signer.sign", "tid": "t", "inst": authoritytest.Installation,
		"cnf": map[string]any{"jkt": authoritytest.Thumbprint(e.dpop.Public())},
	}
}

// mint signs claims (default claims when nil) and records a valid input.
func (e *fuzzEnv) mint(edit func(hdr, c map[string]any), kid string, key crypto.Signer) string {
	alg := "ES256"
	if _, ok := key.(ed25519.PrivateKey); ok {
		alg = "EdDSA"
	}
	hdr := map[string]any{"alg": alg, "kid": kid, "typ": "at+jwt"}
	c := e.defaultClaims()
	if edit != nil {
		edit(hdr, c)
	}
	s, err := authoritytest.SignJWS(hdr, c, key, nil)
	if err != nil {
		panic(err)
	}
	if edit == nil {
		e.validInput[s[:strings.LastIndexByte(s, '.')]] = true
	}
	return s
}

func (e *fuzzEnv) proof(jti string, mutate func(hdr, claims map[string]any)) string {
	p := authoritytest.Proof(e.dpop, "POST", DefaultHTUBase+signPath, e.tok, e.v.Nonce(), e.clock.Now(), jti, mutate)
	if mutate == nil {
		e.validInput[p[:strings.LastIndexByte(p, '.')]] = true
	}
	return p
}

func FuzzVerifyToken(f *testing.F) {
	e := newFuzzEnv(f)
	f.Add(e.tok)
	f.Add(e.mint(nil, "fuzz-ec", e.ecKey))
	for _, edit := range []func(hdr, c map[string]any){
		func(hdr, _ map[string]any) { hdr["alg"] = "none" },
		func(hdr, _ map[string]any) { hdr["alg"] = "HS256" },
		func(hdr, _ map[string]any) { delete(hdr, "kid") },
		func(hdr, _ map[string]any) { hdr["crit"] = []string{"b64"}; hdr["b64"] = false },
		func(_, c map[string]any) { c["aud"] = []any{"signer", "x"} },
		func(_, c map[string]any) { c["scope"] = []any{"signer.sign", 1} },
		func(_, c map[string]any) { c["cnf"] = map[string]any{"jkt": nil} },
		func(_, c map[string]any) { c["exp"] = 1e300 },
		func(_, c map[string]any) { delete(c, "tid") },
	} {
		f.Add(e.mint(edit, "fuzz-ed", e.edKey))
	}
	for _, s := range []string{"", ".", "..", "a.b.c", "e30.e30.e30", "eyJhbGciOiJFUzI1NiJ9.e30.AA", strings.Repeat("A", 100) + ".."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := e.v.VerifyToken(context.Background(), tok)
		if err != nil {
			code := CodeOf(err)
			if code == "" {
				t.Fatalf("error without a code: %v", err)
			}
			if len(tok) >= 24 && strings.Contains(err.Error(), tok) {
				t.Fatal("error text contains the token")
			}
			return
		}
		i := strings.LastIndexByte(tok, '.')
		if i < 0 || !e.validInput[tok[:i]] {
			t.Fatalf("accepted a token that was never minted: %q", tok)
		}
		if c.Issuer != fuzzIssuer || c.Tenant == "" || (c.JKT == "" && c.X5TS256 == "") {
			t.Fatalf("accepted claims %+v", c)
		}
	})
}

func FuzzVerifyDPoP(f *testing.F) {
	e := newFuzzEnv(f)
	f.Add(e.proof("seed-1", nil))
	f.Add(e.proof("seed-2", nil))
	for _, m := range []func(hdr, c map[string]any){
		func(hdr, _ map[string]any) { hdr["jwk"] = authoritytest.PrivateJWK(e.dpop) },
		func(hdr, _ map[string]any) { hdr["typ"] = "JWT" },
		func(hdr, _ map[string]any) { hdr["alg"] = "HS256" },
		func(hdr, _ map[string]any) { hdr["alg"] = "none" },
		func(hdr, _ map[string]any) { hdr["jwk"] = map[string]any{"kty": "oct", "k": "AAAA"} },
		func(_, c map[string]any) { c["htu"] = DefaultHTUBase + signPath + "?a=b" },
		func(_, c map[string]any) { c["iat"] = "now" },
		func(_, c map[string]any) { delete(c, "nonce") },
		func(_, c map[string]any) { c["ath"] = 7 },
	} {
		f.Add(e.proof("", m))
	}
	for _, s := range []string{"", "a.b.c", "e30.e30.e30", e.tok} {
		f.Add(s)
	}
	// The one-pass parse (splitProof, the header cache, parseProofClaims):
	// a valid header with another payload, a padded or truncated signature,
	// four segments, and claims that the old map decoding refused.
	valid := e.proof("seed-3", nil)
	h, rest, _ := strings.Cut(valid, ".")
	_, sig, _ := strings.Cut(rest, ".")
	f.Add(valid + "=")
	f.Add(valid[:len(valid)-2])
	f.Add(valid + ".x")
	f.Add(h + "." + b64.EncodeToString([]byte(`{"htm":"POST","htm":"POST"}`)) + "." + sig)
	f.Add(h + "." + b64.EncodeToString([]byte(`{"h\u0074m":"POST","iat":"1"}`)) + "." + sig)
	f.Add(h + "." + b64.EncodeToString([]byte(`{"x":[{"}":"]"}],"jti":null}`)) + "." + sig)
	f.Fuzz(func(t *testing.T, proof string) {
		err := e.v.VerifyDPoP(context.Background(), proof, "POST", signPath, e.claims, e.tok)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
			if len(proof) >= 24 && strings.Contains(err.Error(), proof) {
				t.Fatal("error text contains the proof")
			}
			return
		}
		i := strings.LastIndexByte(proof, '.')
		if i < 0 || !e.validInput[proof[:i]] {
			t.Fatalf("accepted a proof that was never made: %q", proof)
		}
	})
}
