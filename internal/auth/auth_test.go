package auth

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/auth/authoritytest"
	"github.com/stellaops/signer-agent/proto"
)

func TestValidRequest(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	tok := f.token(nil, authoritytest.MintOptions{})
	c, err := f.request("DPoP "+tok, f.proof(tok, nil))
	if err != nil {
		t.Fatal(err)
	}
	now := f.clock.Now()
	want := Claims{
		Issuer: f.a.Issuer, Subject: authoritytest.Subject, Tenant: authoritytest.Tenant,
		Installation: authoritytest.Installation, Scopes: []string{"signer.sign"},
		IssuedAt: now, NotBefore: now, Expiry: now.Add(authoritytest.TTL),
		JKT: authoritytest.Thumbprint(f.dpop.Public()), TokenHash: authoritytest.TokenHash(tok),
		KeyID: f.a.Current().ID,
	}
	got := *c
	got.JTI = ""
	if !slices.Equal(got.Scopes, want.Scopes) {
		t.Fatalf("scopes %v", got.Scopes)
	}
	got.Scopes, want.Scopes = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("claims\n got %+v\nwant %+v", got, want)
	}
	if c.JTI == "" {
		t.Fatal("no jti")
	}
}

func TestValidVariants(t *testing.T) {
	cases := []struct {
		name    string
		algs    []string
		dpopAlg string
		edit    func(c map[string]any)
		opts    func(f *fixture) authoritytest.MintOptions
		proof   func(f *fixture, tok string) string
	}{
		{name: "aud one-element array", edit: func(c map[string]any) { c["aud"] = []string{"signer"} }},
		{name: "scope array", edit: func(c map[string]any) { c["scope"] = []string{"a", "signer.sign"} }},
		{name: "scope among others", edit: func(c map[string]any) { c["scope"] = "openid  signer.sign other" }},
		{name: "no iat, nbf", edit: func(c map[string]any) { delete(c, "iat") }},
		{name: "no nbf", edit: func(c map[string]any) { delete(c, "nbf") }},
		{name: "fractional iat", edit: func(c map[string]any) { c["iat"] = float64(c["iat"].(int64)) + 0.5 }},
		{name: "cnf with both jkt and x5t", edit: func(c map[string]any) {
			c["cnf"].(map[string]any)["x5t#S256"] = authoritytest.TokenHash("cert")
		}},
		{name: "expired within skew", edit: func(c map[string]any) {
			c["exp"] = c["iat"].(int64) - 20
			c["iat"] = c["iat"].(int64) - 300
			c["nbf"] = c["iat"]
		}},
		{name: "no kid, one key", opts: func(*fixture) authoritytest.MintOptions { return authoritytest.MintOptions{NoKID: true} }},
		{name: "EdDSA issuer key", algs: []string{"EdDSA"}},
		{name: "ES384 issuer key", algs: []string{"ES384"}},
		{name: "RS256 declared", algs: []string{"RS256"}},
		{name: "PS256 declared", algs: []string{"PS256"}},
		{name: "EdDSA proof", dpopAlg: "EdDSA"},
		{name: "nonce of the previous window", proof: func(f *fixture, tok string) string {
			n := f.v.Nonce()
			f.clock.Advance(DefaultNonceWindow)
			if f.v.Nonce() == n {
				panic("nonce did not change at the window boundary")
			}
			return authoritytest.Proof(f.dpop, "POST", DefaultHTUBase+signPath, tok, n, f.clock.Now(), "", nil)
		}},
		{name: "proof iat within skew", proof: func(f *fixture, tok string) string {
			return authoritytest.Proof(f.dpop, "POST", DefaultHTUBase+signPath, tok, f.v.Nonce(), f.clock.Now().Add(-25*time.Second), "", nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ao []authoritytest.Option
			if tc.algs != nil {
				ao = append(ao, authoritytest.WithKeys(tc.algs...))
			}
			f := newFixture(t, fixtureOpt{authority: ao})
			if tc.dpopAlg != "" {
				k, err := authoritytest.GenerateKey(tc.dpopAlg)
				if err != nil {
					t.Fatal(err)
				}
				f.dpop = k
			}
			var opts authoritytest.MintOptions
			if tc.opts != nil {
				opts = tc.opts(f)
			}
			tok := f.token(tc.edit, opts)
			proof := f.proof(tok, nil)
			if tc.proof != nil {
				proof = tc.proof(f, tok)
			}
			if _, err := f.request("DPoP "+tok, proof); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRejected is the table of refused requests, each with its code.
func TestRejected(t *testing.T) {
	type req struct{ authz, proof string }
	std := func(f *fixture, tok string) req { return req{"DPoP " + tok, f.proof(tok, nil)} }
	withClaims := func(edit func(c map[string]any)) func(f *fixture) req {
		return func(f *fixture) req { return std(f, f.token(edit, authoritytest.MintOptions{})) }
	}
	withMint := func(opts authoritytest.MintOptions) func(f *fixture) req {
		return func(f *fixture) req { return std(f, f.token(nil, opts)) }
	}
	withProof := func(mutate func(hdr, claims map[string]any)) func(f *fixture) req {
		return func(f *fixture) req {
			tok := f.token(nil, authoritytest.MintOptions{})
			return req{"DPoP " + tok, f.proof(tok, mutate)}
		}
	}
	proofAt := func(method, htu string, iat time.Duration) func(f *fixture) req {
		return func(f *fixture) req {
			tok := f.token(nil, authoritytest.MintOptions{})
			return req{"DPoP " + tok, authoritytest.Proof(f.dpop, method, htu, tok, f.v.Nonce(), f.clock.Now().Add(iat), "", nil)}
		}
	}
	htu := DefaultHTUBase + signPath

	cases := []struct {
		name  string
		code  proto.Code
		build func(f *fixture) req
	}{
		// Authorization header.
		{"missing token", proto.CodeInvalidToken, func(f *fixture) req { return req{"", ""} }},
		{"Bearer scheme", proto.CodeInvalidToken, func(f *fixture) req {
			tok := f.token(nil, authoritytest.MintOptions{})
			return req{"Bearer " + tok, f.proof(tok, nil)}
		}},
		{"other scheme", proto.CodeInvalidToken, func(f *fixture) req { return req{"Basic dXNlcjpwdw==", ""} }},
		{"DPoP without token", proto.CodeInvalidToken, func(f *fixture) req { return req{"DPoP ", ""} }},
		{"token without scheme", proto.CodeInvalidToken, func(f *fixture) req { return req{f.token(nil, authoritytest.MintOptions{}), ""} }},

		// JWS.
		{"malformed JWT", proto.CodeInvalidToken, func(f *fixture) req { return req{"DPoP abc.def", ""} }},
		{"malformed JWT, four segments", proto.CodeInvalidToken, func(f *fixture) req {
			return req{"DPoP " + f.token(nil, authoritytest.MintOptions{}) + ".x", ""}
		}},
		{"one segment", proto.CodeInvalidToken, func(f *fixture) req { return req{"DPoP e30", ""} }},
		{"bad signature", proto.CodeInvalidToken, func(f *fixture) req {
			a := strings.Split(f.token(nil, authoritytest.MintOptions{}), ".")
			b := strings.Split(f.token(func(c map[string]any) { c["sub"] = "other" }, authoritytest.MintOptions{}), ".")
			return std(f, a[0]+"."+a[1]+"."+b[2])
		}},
		{"non-canonical base64 signature", proto.CodeInvalidToken, func(f *fixture) req {
			tok := f.token(nil, authoritytest.MintOptions{})
			last := tok[len(tok)-1]
			// ES256 signatures are 64 bytes: the last char carries 2 unused bits.
			alt := map[byte]byte{'A': 'B', 'Q': 'R', 'g': 'h', 'w': 'x'}[last]
			if alt == 0 {
				alt = last ^ 1
			}
			return std(f, tok[:len(tok)-1]+string(alt))
		}},
		{"unknown kid after refetch", proto.CodeInvalidToken, func(f *fixture) req {
			k := f.a.AddKey("ES256")
			f.a.Retire(k.ID)
			return std(f, f.token(nil, authoritytest.MintOptions{KeyID: k.ID}))
		}},
		{"kid of another key", proto.CodeInvalidToken, func(f *fixture) req {
			k := f.a.AddKey("ES256")
			f.a.Retire(k.ID)
			return std(f, f.token(nil, authoritytest.MintOptions{KeyID: k.ID, Header: map[string]any{"kid": f.a.Current().ID}}))
		}},
		{"alg none", proto.CodeInvalidToken, withMint(authoritytest.MintOptions{Alg: "none"})},
		{"alg none with a signature", proto.CodeInvalidToken, func(f *fixture) req {
			a := strings.Split(f.token(nil, authoritytest.MintOptions{Alg: "none"}), ".")
			b := strings.Split(f.token(nil, authoritytest.MintOptions{}), ".")
			return std(f, a[0]+"."+a[1]+"."+b[2])
		}},
		{"HS256 with the public key as secret", proto.CodeInvalidToken, withMint(authoritytest.MintOptions{Alg: "HS256"})},
		{"HS256 with the public JWK as secret", proto.CodeInvalidToken, func(f *fixture) req {
			k := f.a.Current()
			secret := []byte(`{"crv":"P-256","kty":"EC","x":"` + authoritytest.PublicJWK(k.Public(), "", "")["x"].(string) + `"}`)
			return std(f, f.token(nil, authoritytest.MintOptions{Alg: "HS256", Secret: secret}))
		}},
		{"ES384 header on a P-256 key", proto.CodeInvalidToken, withMint(authoritytest.MintOptions{Alg: "ES384"})},
		{"ES512", proto.CodeInvalidToken, withMint(authoritytest.MintOptions{Alg: "ES512"})},
		{"crit header", proto.CodeInvalidToken, withMint(authoritytest.MintOptions{Header: map[string]any{"crit": []string{"exp"}}})},
		{"typ dpop+jwt", proto.CodeInvalidToken, withMint(authoritytest.MintOptions{Header: map[string]any{"typ": "dpop+jwt"}})},

		// Claims.
		{"wrong iss", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["iss"] = "https://evil.example" })},
		{"iss with trailing slash", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["iss"] = c["iss"].(string) + "/" })},
		{"missing iss", proto.CodeInvalidToken, withClaims(func(c map[string]any) { delete(c, "iss") })},
		{"wrong aud", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["aud"] = "attestor" })},
		{"wildcard aud", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["aud"] = "*" })},
		{"multi-audience", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["aud"] = []string{"signer", "attestor"} })},
		{"empty aud array", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["aud"] = []string{} })},
		{"missing aud", proto.CodeInvalidToken, withClaims(func(c map[string]any) { delete(c, "aud") })},
		{"duplicate claim", proto.CodeInvalidToken, func(f *fixture) req {
			// A map cannot hold {"aud":"attestor", ..., "aud":"signer"}: splice it.
			k := f.a.Current()
			payload, err := json.Marshal(f.a.Claims(authoritytest.Thumbprint(f.dpop.Public())))
			if err != nil {
				panic(err)
			}
			payload = append([]byte(`{"aud":"attestor",`), payload[1:]...)
			tok, err := authoritytest.SignRaw(map[string]any{"alg": k.Alg, "kid": k.ID}, payload, k.Signer, nil)
			if err != nil {
				panic(err)
			}
			return std(f, tok)
		}},
		{"claims not an object", proto.CodeInvalidToken, func(f *fixture) req {
			k := f.a.Current()
			tok, err := authoritytest.SignRaw(map[string]any{"alg": k.Alg, "kid": k.ID}, []byte(`["signer"]`), k.Signer, nil)
			if err != nil {
				panic(err)
			}
			return std(f, tok)
		}},
		{"expired", proto.CodeInvalidToken, withClaims(func(c map[string]any) {
			now := c["iat"].(int64)
			c["iat"], c["nbf"], c["exp"] = now-600, now-600, now-60
		})},
		{"missing exp", proto.CodeInvalidToken, withClaims(func(c map[string]any) { delete(c, "exp") })},
		{"exp as string", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["exp"] = "soon" })},
		{"not yet valid", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["nbf"] = c["iat"].(int64) + 120 })},
		{"issued in the future", proto.CodeInvalidToken, withClaims(func(c map[string]any) {
			c["iat"] = c["iat"].(int64) + 120
			c["exp"] = c["iat"].(int64) + 300
			delete(c, "nbf")
		})},
		{"lifetime too long", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["exp"] = c["iat"].(int64) + 601 })},
		{"lifetime too long, nbf only", proto.CodeInvalidToken, withClaims(func(c map[string]any) {
			delete(c, "iat")
			c["exp"] = c["nbf"].(int64) + 3600
		})},
		{"no iat nor nbf", proto.CodeInvalidToken, withClaims(func(c map[string]any) { delete(c, "iat"); delete(c, "nbf") })},
		{"missing scope", proto.CodeInsufficientScope, withClaims(func(c map[string]any) { delete(c, "scope") })},
		{"other scope", proto.CodeInsufficientScope, withClaims(func(c map[string]any) { c["scope"] = "signer.read signer.signx" })},
		{"scope as number", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["scope"] = 1 })},
		{"missing tid", proto.CodeInvalidToken, withClaims(func(c map[string]any) { delete(c, "tid") })},
		{"empty tid", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["tid"] = "" })},
		{"wrong inst", proto.CodeTenantMismatch, withClaims(func(c map[string]any) { c["inst"] = "node-2" })},
		{"missing inst", proto.CodeTenantMismatch, withClaims(func(c map[string]any) { delete(c, "inst") })},
		{"missing cnf", proto.CodeInvalidToken, withClaims(func(c map[string]any) { delete(c, "cnf") })},
		{"empty cnf", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["cnf"] = map[string]any{} })},
		{"cnf.jkt not a thumbprint", proto.CodeInvalidToken, withClaims(func(c map[string]any) { c["cnf"] = map[string]any{"jkt": "abc"} })},
		{"missing tid beats scope", proto.CodeInvalidToken, withClaims(func(c map[string]any) { delete(c, "tid"); delete(c, "scope") })},
		{"mTLS-bound token on DPoP", proto.CodeInvalidToken, withClaims(func(c map[string]any) {
			c["cnf"] = map[string]any{"x5t#S256": authoritytest.TokenHash("cert")}
		})},

		// DPoP.
		{"DPoP missing", proto.CodeInvalidDPoPProof, func(f *fixture) req {
			return req{"DPoP " + f.token(nil, authoritytest.MintOptions{}), ""}
		}},
		{"DPoP malformed", proto.CodeInvalidDPoPProof, func(f *fixture) req {
			return req{"DPoP " + f.token(nil, authoritytest.MintOptions{}), "a.b.c"}
		}},
		{"DPoP with private key in jwk", proto.CodeInvalidDPoPProof, func(f *fixture) req {
			tok := f.token(nil, authoritytest.MintOptions{})
			return req{"DPoP " + tok, f.proof(tok, func(hdr, _ map[string]any) { hdr["jwk"] = authoritytest.PrivateJWK(f.dpop) })}
		}},
		{"DPoP without jwk", proto.CodeInvalidDPoPProof, withProof(func(hdr, _ map[string]any) { delete(hdr, "jwk") })},
		{"thumbprint mismatch", proto.CodeInvalidDPoPProof, func(f *fixture) req {
			other := authoritytest.NewDPoPKey()
			tok := f.a.Mint(f.a.Claims(authoritytest.Thumbprint(other.Public())), authoritytest.MintOptions{})
			return req{"DPoP " + tok, f.proof(tok, nil)}
		}},
		{"proof signed by a different key than its jwk", proto.CodeInvalidDPoPProof, func(f *fixture) req {
			tok := f.token(nil, authoritytest.MintOptions{})
			other := authoritytest.NewDPoPKey()
			return req{"DPoP " + tok, authoritytest.Proof(other, "POST", htu, tok, f.v.Nonce(), f.clock.Now(), "", func(hdr, _ map[string]any) {
				hdr["jwk"] = authoritytest.PublicJWK(f.dpop.Public(), "", "")
			})}
		}},
		{"wrong typ", proto.CodeInvalidDPoPProof, withProof(func(hdr, _ map[string]any) { hdr["typ"] = "JWT" })},
		{"missing typ", proto.CodeInvalidDPoPProof, withProof(func(hdr, _ map[string]any) { delete(hdr, "typ") })},
		{"HS256 proof", proto.CodeInvalidDPoPProof, withProof(func(hdr, _ map[string]any) { hdr["alg"] = "HS256" })},
		{"none proof", proto.CodeInvalidDPoPProof, withProof(func(hdr, _ map[string]any) { hdr["alg"] = "none" })},
		{"RS256 proof", proto.CodeInvalidDPoPProof, func(f *fixture) req {
			rk, err := authoritytest.GenerateKey("RS256")
			if err != nil {
				panic(err)
			}
			tok := f.a.Mint(f.a.Claims(authoritytest.Thumbprint(rk.Public())), authoritytest.MintOptions{})
			return req{"DPoP " + tok, authoritytest.Proof(rk, "POST", htu, tok, f.v.Nonce(), f.clock.Now(), "", nil)}
		}},
		{"wrong htm", proto.CodeInvalidDPoPProof, proofAt("GET", htu, 0)},
		{"lowercase htm", proto.CodeInvalidDPoPProof, proofAt("post", htu, 0)},
		{"wrong htu", proto.CodeInvalidDPoPProof, proofAt("POST", DefaultHTUBase+"/api/v1/signer/sign/export", 0)},
		{"htu of another host", proto.CodeInvalidDPoPProof, proofAt("POST", "https://signer-agent"+signPath, 0)},
		{"query in htu", proto.CodeInvalidDPoPProof, proofAt("POST", htu+"?x=1", 0)},
		{"fragment in htu", proto.CodeInvalidDPoPProof, proofAt("POST", htu+"#f", 0)},
		{"stale iat", proto.CodeInvalidDPoPProof, proofAt("POST", htu, -31*time.Second)},
		{"future iat", proto.CodeInvalidDPoPProof, proofAt("POST", htu, 31*time.Second)},
		{"missing iat", proto.CodeInvalidDPoPProof, withProof(func(_, c map[string]any) { delete(c, "iat") })},
		{"wrong ath", proto.CodeInvalidDPoPProof, withProof(func(_, c map[string]any) { c["ath"] = authoritytest.TokenHash("other") })},
		{"missing ath", proto.CodeInvalidDPoPProof, withProof(func(_, c map[string]any) { delete(c, "ath") })},
		{"missing jti", proto.CodeInvalidDPoPProof, withProof(func(_, c map[string]any) { delete(c, "jti") })},
		{"replayed jti", proto.CodeInvalidDPoPProof, func(f *fixture) req {
			tok := f.token(nil, authoritytest.MintOptions{})
			p := f.proof(tok, nil)
			if _, err := f.request("DPoP "+tok, p); err != nil {
				panic(err)
			}
			return req{"DPoP " + tok, p}
		}},
		{"replayed jti, new proof", proto.CodeInvalidDPoPProof, func(f *fixture) req {
			tok := f.token(nil, authoritytest.MintOptions{})
			if _, err := f.request("DPoP "+tok, f.proof(tok, func(_, c map[string]any) { c["jti"] = "same" })); err != nil {
				panic(err)
			}
			f.clock.Advance(time.Second)
			return req{"DPoP " + tok, f.proof(tok, func(_, c map[string]any) { c["jti"] = "same" })}
		}},
		{"replayed jti with a bad nonce", proto.CodeInvalidDPoPProof, func(f *fixture) req {
			tok := f.token(nil, authoritytest.MintOptions{})
			if _, err := f.request("DPoP "+tok, f.proof(tok, func(_, c map[string]any) { c["jti"] = "same" })); err != nil {
				panic(err)
			}
			return req{"DPoP " + tok, f.proof(tok, func(_, c map[string]any) { c["jti"] = "same"; c["nonce"] = "garbage" })}
		}},
		{"missing nonce", proto.CodeUseDPoPNonce, withProof(func(_, c map[string]any) { delete(c, "nonce") })},
		{"garbage nonce", proto.CodeUseDPoPNonce, withProof(func(_, c map[string]any) { c["nonce"] = "garbage" })},
		{"stale nonce", proto.CodeUseDPoPNonce, func(f *fixture) req {
			n := f.v.Nonce()
			f.clock.Advance(2 * DefaultNonceWindow)
			tok := f.token(nil, authoritytest.MintOptions{})
			return req{"DPoP " + tok, authoritytest.Proof(f.dpop, "POST", htu, tok, n, f.clock.Now(), "", nil)}
		}},
		{"nonce of another agent", proto.CodeUseDPoPNonce, func(f *fixture) req {
			other := newNonceSource([]byte("another agent's key, 32 bytes.."), DefaultNonceWindow)
			tok := f.token(nil, authoritytest.MintOptions{})
			return req{"DPoP " + tok, authoritytest.Proof(f.dpop, "POST", htu, tok, other.current(f.clock.Now()), f.clock.Now(), "", nil)}
		}},
		{"missing nonce but bad htu", proto.CodeInvalidDPoPProof, func(f *fixture) req {
			tok := f.token(nil, authoritytest.MintOptions{})
			return req{"DPoP " + tok, authoritytest.Proof(f.dpop, "POST", htu+"x", tok, "", f.clock.Now(), "", nil)}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, fixtureOpt{})
			r := tc.build(f)
			_, err := f.request(r.authz, r.proof)
			e := wantCode(t, err, tc.code)
			noSecrets(t, e, strings.TrimPrefix(r.authz, "DPoP "), r.proof)
			t.Logf("%s: %s", e.Code, e.Reason)
		})
	}
}

// TestReplayBeatsNonce: a replayed jti is invalid_dpop_proof even when the
// nonce is missing (SPEC §15).
func TestReplayBeatsNonce(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	tok := f.token(nil, authoritytest.MintOptions{})
	if _, err := f.request("DPoP "+tok, f.proof(tok, func(_, c map[string]any) { c["jti"] = "j1" })); err != nil {
		t.Fatal(err)
	}
	_, err := f.request("DPoP "+tok, f.proof(tok, func(_, c map[string]any) { c["jti"] = "j1"; delete(c, "nonce") }))
	wantCode(t, err, proto.CodeInvalidDPoPProof)
	// A proof refused for its nonce does not burn its jti.
	_, err = f.request("DPoP "+tok, f.proof(tok, func(_, c map[string]any) { c["jti"] = "j2"; delete(c, "nonce") }))
	wantCode(t, err, proto.CodeUseDPoPNonce)
	if _, err := f.request("DPoP "+tok, f.proof(tok, func(_, c map[string]any) { c["jti"] = "j2" })); err != nil {
		t.Fatal(err)
	}
}

func TestNonceOptional(t *testing.T) {
	f := newFixture(t, fixtureOpt{cfg: func(c *Config) { c.NonceRequired = false }})
	tok := f.token(nil, authoritytest.MintOptions{})
	if _, err := f.request("DPoP "+tok, f.proof(tok, func(_, c map[string]any) { delete(c, "nonce") })); err != nil {
		t.Fatal(err)
	}
	_, err := f.request("DPoP "+tok, f.proof(tok, func(_, c map[string]any) { c["nonce"] = "stale" }))
	wantCode(t, err, proto.CodeUseDPoPNonce)
}

func TestKidRequiredWithSeveralKeys(t *testing.T) {
	f := newFixture(t, fixtureOpt{authority: []authoritytest.Option{authoritytest.WithKeys("ES256", "EdDSA")}})
	tok := f.token(nil, authoritytest.MintOptions{NoKID: true})
	_, err := f.v.VerifyToken(context.Background(), tok)
	wantCode(t, err, proto.CodeInvalidToken)
}

func TestParseAuthorization(t *testing.T) {
	for _, tc := range []struct {
		in, want string
	}{
		{"DPoP abc.def.ghi", "abc.def.ghi"},
		{"dpop abc", "abc"},
		{"DPoP  abc==", "abc=="},
		{"DPoP", ""},
		{"DPoP a b", ""},
		{"DPoP a=b", ""},
		{"Bearer abc", ""},
		{"abc", ""},
		{" ", ""},
	} {
		got, err := ParseAuthorization(tc.in)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("ParseAuthorization(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
		if err != nil && CodeOf(err) != proto.CodeInvalidToken {
			t.Errorf("ParseAuthorization(%q): code %s", tc.in, CodeOf(err))
		}
	}
}

// TestReplayFrom: a Verifier replacing another (config reload) keeps its
// replay history.
func TestReplayFrom(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	tok := f.token(nil, authoritytest.MintOptions{})
	p := f.proof(tok, nil)
	if _, err := f.request("DPoP "+tok, p); err != nil {
		t.Fatal(err)
	}
	cfg := f.cfg
	cfg.ReplayFrom = f.v
	next, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	f.v = next
	_, err = f.request("DPoP "+tok, p)
	wantCode(t, err, proto.CodeInvalidDPoPProof)
}
