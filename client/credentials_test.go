package client_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/client"
)

const (
	testPoE    = "eyJhbGciOiJFZERTQSJ9.eyJwbGFuIjoidGVhbSJ9.cG9lLXNpZ25hdHVyZQ"
	testDigest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

// privateJWK returns the JWK JSON of a private key, as signerctl dev token
// writes it, and its "d" member (to check errors never contain it).
func privateJWK(t testing.TB, key crypto.Signer) (jwk json.RawMessage, d string) {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKey{Key: key, Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	d, _ = m["d"].(string)
	if d == "" {
		t.Fatalf("JWK without d: %s", b)
	}
	return b, d
}

// credentialsFile builds a credentials JSON object; members set to nil are
// left out.
func credentialsFile(t testing.TB, members map[string]any) []byte {
	t.Helper()
	m := map[string]any{}
	for k, v := range members {
		if v != nil {
			m[k] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "credentials.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCredentialsRoundTrip(t *testing.T) {
	p256, err := client.NewDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		key  crypto.Signer
		alg  jose.SignatureAlgorithm
	}{
		{"P-256", p256, jose.ES256},
		{"Ed25519", ed, jose.EdDSA},
	} {
		t.Run(tt.name, func(t *testing.T) {
			jwk, _ := privateJWK(t, tt.key)
			path := writeFile(t, credentialsFile(t, map[string]any{
				"opTok":              testToken,
				"dpopKey":            jwk,
				"poe":                testPoE,
				"scannerImageDigest": testDigest,
				"addedLater":         map[string]any{"x": 1}, // tolerated
			}))
			creds, err := client.LoadCredentials(path)
			if err != nil {
				t.Fatalf("LoadCredentials: %v", err)
			}
			if creds.OpTok != testToken || creds.PoE != testPoE || creds.ScannerImageDigest != testDigest {
				t.Errorf("credentials = %#v", creds)
			}
			want, err := client.JWKThumbprint(tt.key.Public())
			if err != nil {
				t.Fatal(err)
			}
			if got, err := client.JWKThumbprint(creds.DPoPKey.Public()); err != nil || got != want {
				t.Errorf("loaded key thumbprint = %s, %v; want %s", got, err, want)
			}

			a := startDPoPAgent(t, &dpopAgent{require: true, nonce: "n"})
			var c client.Client
			c.Socket = "unix://" + a.path
			creds.Apply(&c)
			defer c.CloseIdleConnections()
			for range 2 {
				if _, err := c.SignDSSE(context.Background(), signRequest()); err != nil {
					t.Fatalf("SignDSSE: %v", err)
				}
			}
			proofs := a.verified()
			if len(proofs) != 3 {
				t.Fatalf("%d proofs, want 3", len(proofs))
			}
			for _, p := range proofs {
				if p.JKT != want || p.Alg != tt.alg {
					t.Errorf("proof signed by %s (%s), want %s (%s)", p.JKT, p.Alg, want, tt.alg)
				}
			}
		})
	}
}

func TestParseCredentialsOptionalMembers(t *testing.T) {
	jwk, _ := privateJWK(t, testKeys(t)[0].key)
	creds, err := client.ParseCredentials(credentialsFile(t, map[string]any{
		"opTok": testToken, "dpopKey": jwk, "poe": nil, "scannerImageDigest": "",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if creds.PoE != "" || creds.ScannerImageDigest != "" || creds.DPoPKey == nil {
		t.Errorf("credentials = %v", creds)
	}
}

func TestParseCredentialsErrors(t *testing.T) {
	p256, err := client.NewDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecJWK, ecD := privateJWK(t, p256)
	edJWK, edD := privateJWK(t, ed)
	p384JWK, p384D := privateJWK(t, p384)
	rsaJWK, rsaD := privateJWK(t, rsaKey)
	secrets := []string{testToken, testPoE, ecD, edD, p384D, rsaD}

	// edit returns jwk with members changed (nil deletes).
	edit := func(jwk json.RawMessage, changes map[string]any) json.RawMessage {
		var m map[string]any
		if err := json.Unmarshal(jwk, &m); err != nil {
			t.Fatal(err)
		}
		for k, v := range changes {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	other, _ := privateJWK(t, testKeys(t)[2].key.(opaqueSigner).Signer)
	var otherM map[string]any
	json.Unmarshal(other, &otherM)

	full := func(changes map[string]any) []byte {
		m := map[string]any{"opTok": testToken, "dpopKey": ecJWK, "poe": testPoE, "scannerImageDigest": testDigest}
		for k, v := range changes {
			m[k] = v
		}
		return credentialsFile(t, m)
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", []byte(""), "not a JSON object"},
		{"array", []byte(`[{"opTok":"x"}]`), "not a JSON object"},
		{"malformed", []byte(`{"opTok": "` + testToken + `", "dpopKey": {"kty": "EC", "d": "` + ecD + `"`), "malformed JSON"},
		{"trailing garbage", append(full(nil), []byte(ecD)...), "malformed JSON"},
		{"missing opTok", full(map[string]any{"opTok": nil}), `missing "opTok"`},
		{"empty opTok", full(map[string]any{"opTok": ""}), `missing "opTok"`},
		{"opTok number", full(map[string]any{"opTok": 12345}), `"opTok" has the wrong JSON type`},
		{"opTok with space", full(map[string]any{"opTok": testToken + " " + ecD}), `"opTok" is not a token`},
		{"missing dpopKey", full(map[string]any{"dpopKey": nil}), `missing "dpopKey"`},
		{"dpopKey string", full(map[string]any{"dpopKey": ecD}), "not a JWK object"},
		{"public EC JWK", full(map[string]any{"dpopKey": edit(ecJWK, map[string]any{"d": nil})}), "public JWK"},
		{"public OKP JWK", full(map[string]any{"dpopKey": edit(edJWK, map[string]any{"d": nil})}), "public JWK"},
		{"P-384", full(map[string]any{"dpopKey": p384JWK}), `EC curve "P-384" is not supported`},
		{"RSA", full(map[string]any{"dpopKey": rsaJWK}), `kty "RSA" is not supported`},
		{"oct", full(map[string]any{"dpopKey": json.RawMessage(`{"kty":"oct","k":"c2VjcmV0"}`)}), `kty "oct" is not supported`},
		{"X25519", full(map[string]any{"dpopKey": edit(edJWK, map[string]any{"crv": "X25519"})}), `"X25519" is not supported`},
		{"no kty", full(map[string]any{"dpopKey": edit(ecJWK, map[string]any{"kty": nil})}), `without "kty"`},
		{"d number", full(map[string]any{"dpopKey": edit(ecJWK, map[string]any{"d": 1234567})}), `"d" has the wrong JSON type`},
		{"d not base64url", full(map[string]any{"dpopKey": edit(ecJWK, map[string]any{"d": "***" + ecD})}), "invalid JWK"},
		{"EC d short", full(map[string]any{"dpopKey": edit(ecJWK, map[string]any{"d": ecD[:20]})}), "invalid JWK"},
		{"EC d of another key", full(map[string]any{"dpopKey": edit(ecJWK, map[string]any{"d": otherM["d"]})}), "x and y do not match d"},
		{"EC d zero", full(map[string]any{"dpopKey": edit(ecJWK, map[string]any{"d": base64.RawURLEncoding.EncodeToString(make([]byte, 32))})}), "invalid EC private key"},
		{"EC point off curve", full(map[string]any{"dpopKey": edit(ecJWK, map[string]any{"y": otherM["y"]})}), "invalid JWK"},
		{"Ed25519 d of another key", full(map[string]any{"dpopKey": edit(edJWK, map[string]any{"x": otherEd(t)})}), "invalid JWK"},
		{"use enc", full(map[string]any{"dpopKey": edit(ecJWK, map[string]any{"use": "enc"})}), `"use" is "enc"`},
		{"alg mismatch", full(map[string]any{"dpopKey": edit(ecJWK, map[string]any{"alg": "EdDSA"})}), `"alg" is "EdDSA", want "ES256"`},
		{"bad scanner digest", full(map[string]any{"scannerImageDigest": "sha256:XYZ"}), "scannerImageDigest"},
		{"poe number", full(map[string]any{"poe": 1}), `"poe" has the wrong JSON type`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			creds, err := client.ParseCredentials(tt.in)
			if err == nil {
				t.Fatalf("ParseCredentials accepted it: %v", creds)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want it to contain %q", err, tt.want)
			}
			path := writeFile(t, tt.in)
			_, lerr := client.LoadCredentials(path)
			if lerr == nil || !strings.Contains(lerr.Error(), path) || !strings.Contains(lerr.Error(), tt.want) {
				t.Errorf("LoadCredentials err = %v, want it to name the file and contain %q", lerr, tt.want)
			}
			for _, s := range secrets {
				for _, e := range []error{err, lerr} {
					if strings.Contains(e.Error(), s) || strings.Contains(fmt.Sprintf("%#v", e), s) {
						t.Errorf("error leaks a secret: %v", e)
					}
				}
			}
		})
	}
}

// otherEd returns the public x of a fresh Ed25519 key.
func otherEd(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(pub)
}

func TestLoadCredentialsFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.json")
	if _, err := client.LoadCredentials(missing); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), missing) {
		t.Errorf("err = %v, want fs.ErrNotExist naming the file", err)
	}
	big := writeFile(t, []byte(`{"opTok":"`+strings.Repeat("a", 2<<20)+`"}`))
	if _, err := client.LoadCredentials(big); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("err = %v, want a size error", err)
	}
}

func TestCredentialsRedacted(t *testing.T) {
	for _, k := range testKeys(t)[:2] {
		jwk, d := privateJWK(t, k.key)
		creds, err := client.ParseCredentials(credentialsFile(t, map[string]any{
			"opTok": testToken, "dpopKey": jwk, "poe": testPoE, "scannerImageDigest": testDigest,
		}))
		if err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(creds)
		if err != nil {
			t.Fatal(err)
		}
		var raw []byte
		switch key := creds.DPoPKey.(type) {
		case *ecdsa.PrivateKey:
			raw, _ = key.Bytes()
		case ed25519.PrivateKey:
			raw = key.Seed()
		}
		printed := []string{
			creds.String(), creds.GoString(), string(js),
			fmt.Sprint(creds), fmt.Sprint(*creds), fmt.Sprintf("%v|%+v|%#v|%s|%q|%x|%d", creds, creds, creds, creds, creds, creds, creds),
			fmt.Sprintf("%+v", struct{ C client.Credentials }{*creds}),
		}
		for _, s := range printed {
			for _, secret := range []string{testToken, testPoE, d, fmt.Sprint(raw), fmt.Sprintf("%x", raw)} {
				if strings.Contains(s, secret) {
					t.Errorf("printed credentials leak a secret: %s", s)
				}
			}
			if !strings.Contains(s, "redacted") {
				t.Errorf("printed credentials = %s, want [redacted]", s)
			}
		}
		if !strings.Contains(creds.String(), testDigest) || !strings.Contains(creds.String(), k.name) {
			t.Errorf("String() = %s, want the digest and the key type", creds)
		}
	}
}

func TestCredentialsApply(t *testing.T) {
	key := testKeys(t)[0].key
	creds := &client.Credentials{OpTok: testToken, DPoPKey: key}
	var c client.Client
	creds.Apply(&c)
	if tok, err := c.Token.Token(context.Background()); err != nil || tok != testToken || c.DPoPKey != key {
		t.Errorf("Apply: token %v, key %v", err, c.DPoPKey == key)
	}
	var nilCreds *client.Credentials
	nilCreds.Apply(&c) // no-op
}

func TestJWKThumbprint(t *testing.T) {
	// RFC 8037 Appendix A.3.
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	got, err := client.JWKThumbprint(ed25519.PublicKey(x))
	if err != nil || got != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Errorf("Ed25519 thumbprint = %q, %v", got, err)
	}

	// EC: SHA-256 over the members crv, kty, x, y in lexicographic order
	// without whitespace (RFC 7638 §3.2).
	key, err := client.NewDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	ec := key.(*ecdsa.PrivateKey)
	pt, err := ec.PublicKey.Bytes() // 0x04 || X || Y
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	canon := `{"crv":"P-256","kty":"EC","x":"` + b64(pt[1:33]) + `","y":"` + b64(pt[33:]) + `"}`
	sum := sha256.Sum256([]byte(canon))
	want := b64(sum[:])
	for _, in := range []crypto.PublicKey{key.Public(), &ec.PublicKey, key} {
		if got, err := client.JWKThumbprint(in); err != nil || got != want {
			t.Errorf("JWKThumbprint(%T) = %q, %v; want %q", in, got, err, want)
		}
	}

	for _, bad := range []crypto.PublicKey{nil, "key", ed25519.PublicKey(x[:5]), (*ecdsa.PublicKey)(nil)} {
		if got, err := client.JWKThumbprint(bad); err == nil {
			t.Errorf("JWKThumbprint(%T) = %q, want an error", bad, got)
		}
	}
}

func TestNewDPoPKey(t *testing.T) {
	a, err := client.NewDPoPKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := client.NewDPoPKey()
	ka, ok := a.(*ecdsa.PrivateKey)
	if !ok || ka.Curve != elliptic.P256() {
		t.Fatalf("NewDPoPKey = %T, want a P-256 *ecdsa.PrivateKey", a)
	}
	if ka.Equal(b) {
		t.Error("two NewDPoPKey calls returned the same key")
	}
}

func FuzzParseCredentials(f *testing.F) {
	p256, err := client.NewDPoPKey()
	if err != nil {
		f.Fatal(err)
	}
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []crypto.Signer{p256, ed} {
		jwk, _ := privateJWK(f, k)
		f.Add(credentialsFile(f, map[string]any{"opTok": testToken, "dpopKey": jwk, "poe": testPoE, "scannerImageDigest": testDigest}))
		f.Add(credentialsFile(f, map[string]any{"opTok": testToken, "dpopKey": jwk}))
	}
	f.Add([]byte(`{"opTok":"a","dpopKey":{"kty":"EC","crv":"P-256","x":"","y":"","d":""}}`))
	f.Add([]byte(`{"opTok":"a","dpopKey":{"kty":"OKP","crv":"Ed25519","x":"AAAA","d":"AAAA"}}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := client.ParseCredentials(b)
		if err != nil {
			if c != nil {
				t.Fatal("credentials with an error")
			}
			return
		}
		if c.OpTok == "" || c.DPoPKey == nil {
			t.Fatalf("accepted credentials without token or key: %v", c)
		}
		if _, err := client.JWKThumbprint(c.DPoPKey.Public()); err != nil {
			t.Fatalf("accepted key has no thumbprint: %v", err)
		}
		// The accepted key must sign: it is the one DPoP proofs use.
		digest := sha256.Sum256([]byte("x"))
		var opts crypto.SignerOpts = crypto.SHA256
		msg := digest[:]
		if _, ok := c.DPoPKey.(ed25519.PrivateKey); ok {
			opts, msg = crypto.Hash(0), []byte("x")
		}
		if _, err := c.DPoPKey.Sign(rand.Reader, msg, opts); err != nil {
			t.Fatalf("accepted key cannot sign: %v", err)
		}
	})
}
