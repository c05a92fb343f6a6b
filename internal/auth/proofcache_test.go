package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/internal/auth/authoritytest"
	"github.com/stellaops/signer-agent/proto"
)

// TestProofKeyCache: a header is cached only after its proof verified;
// once cached, every per-request check still runs against it.
func TestProofKeyCache(t *testing.T) {
	f := newFixture(t, fixtureOpt{})
	ctx := context.Background()
	tok := f.token(nil, authoritytest.MintOptions{})
	claims, err := f.v.VerifyToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	htu := DefaultHTUBase + signPath
	header := func(p string) string { h, _, _ := strings.Cut(p, "."); return h }

	// A proof whose signature fails leaves nothing behind.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forged := authoritytest.Proof(other, "POST", htu, tok, f.v.Nonce(), f.clock.Now(), "", func(hdr, _ map[string]any) {
		hdr["jwk"] = authoritytest.PublicJWK(f.dpop.Public(), "", "")
	})
	wantCode(t, f.v.VerifyDPoP(ctx, forged, "POST", signPath, claims, tok), proto.CodeInvalidDPoPProof)
	if n := f.v.proofs.len(); n != 0 {
		t.Fatalf("%d headers cached after a forged proof", n)
	}

	good := f.proof(tok, nil)
	if err := f.v.VerifyDPoP(ctx, good, "POST", signPath, claims, tok); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.v.proofs.get(header(good)); !ok || f.v.proofs.len() != 1 {
		t.Fatal("a verified proof's header was not cached")
	}

	// The same header, now cached, with every per-request defect.
	cases := []struct {
		name  string
		proof string
		code  proto.Code
	}{
		{"signed by another key under the cached header", authoritytest.Proof(other, "POST", htu, tok, f.v.Nonce(), f.clock.Now(), "", func(hdr, _ map[string]any) {
			hdr["jwk"] = authoritytest.PublicJWK(f.dpop.Public(), "", "")
		}), proto.CodeInvalidDPoPProof},
		{"replayed", good, proto.CodeInvalidDPoPProof},
		{"wrong htm", authoritytest.Proof(f.dpop, "GET", htu, tok, f.v.Nonce(), f.clock.Now(), "", nil), proto.CodeInvalidDPoPProof},
		{"wrong ath", f.proof(tok, func(_, c map[string]any) { c["ath"] = authoritytest.TokenHash("x") }), proto.CodeInvalidDPoPProof},
		{"no nonce", f.proof(tok, func(_, c map[string]any) { delete(c, "nonce") }), proto.CodeUseDPoPNonce},
		{"duplicate claim", func() string {
			hdr := map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": authoritytest.PublicJWK(f.dpop.Public(), "", "")}
			cl, _ := json.Marshal(map[string]any{"jti": "dup-1", "htm": "POST", "htu": htu, "iat": f.clock.Now().Unix(), "ath": authoritytest.TokenHash(tok), "nonce": f.v.Nonce()})
			cl = append([]byte(`{"htm":"GET",`), cl[1:]...)
			s, err := authoritytest.SignRaw(hdr, cl, f.dpop, nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}(), proto.CodeInvalidDPoPProof},
		{"truncated signature", good[:len(good)-4], proto.CodeInvalidDPoPProof},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, ok := f.v.proofs.get(header(c.proof)); !ok {
				t.Fatal("the case does not reuse the cached header")
			}
			wantCode(t, f.v.VerifyDPoP(ctx, c.proof, "POST", signPath, claims, tok), c.code)
		})
	}

	// A token bound to another key does not match the cached header's
	// thumbprint.
	otherTok := f.token(func(c map[string]any) {
		c["cnf"] = map[string]any{"jkt": authoritytest.Thumbprint(other.Public())}
	}, authoritytest.MintOptions{})
	otherClaims, err := f.v.VerifyToken(ctx, otherTok)
	if err != nil {
		t.Fatal(err)
	}
	p := f.proof(otherTok, nil)
	if _, ok := f.v.proofs.get(header(p)); !ok {
		t.Fatal("not the cached header")
	}
	e := wantCode(t, f.v.VerifyDPoP(ctx, p, "POST", signPath, otherClaims, otherTok), proto.CodeInvalidDPoPProof)
	if e.Detail != detailProofBinding {
		t.Errorf("detail %q, want the binding failure", e.Detail)
	}
}

func TestProofKeyCacheBounded(t *testing.T) {
	c := newProofKeyCache(3)
	for i := range 10 {
		c.add(strings.Repeat("h", i+1), &proofKey{})
	}
	if c.len() != 3 {
		t.Fatalf("%d entries, want 3", c.len())
	}
	if _, ok := c.get("h"); ok {
		t.Error("the oldest entry survived")
	}
	if _, ok := c.get(strings.Repeat("h", 10)); !ok {
		t.Error("the newest entry is missing")
	}
}

// oldClaims decodes proof claims the way VerifyDPoP did before
// parseProofClaims (decodeObject + stringMember + dateMember), for the
// differential fuzz target.
func oldClaims(b []byte) (proofClaims, error) {
	var c proofClaims
	m, err := decodeObject(b)
	if err != nil {
		return c, err
	}
	var e [6]error
	c.htm, _, e[0] = stringMember(m, "htm")
	c.htu, _, e[1] = stringMember(m, "htu")
	c.ath, _, e[2] = stringMember(m, "ath")
	c.jti, _, e[3] = stringMember(m, "jti")
	c.nonce, c.hasNonce, e[4] = stringMember(m, "nonce")
	c.iat, c.hasIat, e[5] = dateMember(m, "iat")
	return c, errors.Join(e[:]...)
}

// FuzzProofClaims: parseProofClaims accepts exactly what the map-based
// decoding accepted, with the same values.
func FuzzProofClaims(f *testing.F) {
	for _, s := range []string{
		`{"jti":"a","htm":"POST","htu":"http://signer-agent/api/v1/signer/sign/dsse","iat":1767225600,"ath":"x","nonce":"n"}`,
		`{"htm":"POST","htm":"GET"}`,
		`{"h\u0074m":"POST","htm":"GET"}`,
		`{"iat":1.5e9,"x":{"y":[1,"}",{"z":null}]},"jti":"\u00e9\ud800"}`,
		`{"iat":"now","ath":7,"nonce":null}`,
		`{"iat":-1}`, `{"iat":1e400}`, `[]`, `{}`, ` {"a":1} `, `{"a":1}x`, `{"a":"\"}"}`,
		"{\"jti\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err1 := parseProofClaims(b)
		want, err2 := oldClaims(b)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("%q: new %v, old %v", b, err1, err2)
		}
		if err1 == nil && got != want {
			t.Fatalf("%q: new %+v, old %+v", b, got, want)
		}
	})
}

// FuzzProofSignature: verifyProofSignature agrees with go-jose's JWS
// verification, which it replaces on the hot path, for ES256 and EdDSA
// proofs with mutated signatures and inputs.
func FuzzProofSignature(f *testing.F) {
	ec := fixedEC(f, 7)
	ed := ed25519.NewKeyFromSeed(make([]byte, 32))
	f.Add(false, []byte{}, 0, byte(0))
	f.Add(true, []byte{}, 0, byte(0))
	f.Add(false, []byte("x"), 3, byte(1))
	f.Add(true, []byte{0}, 70, byte(0x80))
	f.Fuzz(func(t *testing.T, useEd bool, extra []byte, pos int, flip byte) {
		var key any = ec
		alg := jose.ES256
		if useEd {
			key, alg = ed, jose.EdDSA
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign(append([]byte(`{"jti":"x"}`), extra...))
		if err != nil {
			t.Fatal(err)
		}
		compact, _ := jws.CompactSerialize()
		i := strings.LastIndexByte(compact, '.')
		sig, err := b64.DecodeString(compact[i+1:])
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) > 0 && pos >= 0 {
			switch {
			case pos < len(sig):
				sig[pos] ^= flip
			case pos < 2*len(sig):
				sig = sig[:pos-len(sig)] // truncate
			default:
				sig = append(sig, flip)
			}
		}
		mutated := compact[:i+1] + b64.EncodeToString(sig)
		var pub any = &ec.PublicKey
		if useEd {
			pub = ed.Public()
		}
		pk := &proofKey{alg: alg, pub: pub}
		got := verifyProofSignature(pk, compact[:i], sig)
		parsed, err := jose.ParseSignedCompact(mutated, []jose.SignatureAlgorithm{alg})
		want := false
		if err == nil {
			_, verr := parsed.Verify(pub)
			want = verr == nil
		}
		if got != want {
			t.Fatalf("verifyProofSignature %v, go-jose %v (alg %s, sig %x)", got, want, alg, sig)
		}
	})
}
