package harness

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/proto"
)

// Credentials are a dev OpTok and its DPoP key.
type Credentials struct {
	Token string
	Key   crypto.Signer
	PoE   string // offline PoE JWT ("" when minted without one)
	// ScannerImageDigest is the dev allowlisted demo scanner.
	ScannerImageDigest string
}

// Mint issues dev credentials from the agent's dev Authority.
func (h *Agent) Mint(t testing.TB, o devauth.Options) Credentials {
	t.Helper()
	c, err := devauth.Mint(h.Dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return Credentials{Token: c.OpTok, Key: c.DPoPKey.Key.(crypto.Signer), PoE: c.PoE, ScannerImageDigest: c.ScannerImageDigest}
}

// ClientWith returns a client on the api socket using creds.
func (h *Agent) ClientWith(c Credentials) *client.Client {
	cl := &client.Client{Socket: h.APISock, Token: client.StaticToken(c.Token), DPoPKey: c.Key}
	if c.PoE != "" {
		cl.PoE = &proto.PoE{Format: "jwt", Value: c.PoE}
	}
	cl.ScannerImageDigest = c.ScannerImageDigest
	return cl
}

// Nonce fetches the agent's current DPoP nonce (every api response has it).
func (h *Agent) Nonce(t testing.TB) string { t.Helper(); return NonceAt(t, h.APISock) }

// NonceAt fetches the current DPoP nonce of the agent on api socket sock.
func NonceAt(t testing.TB, sock string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+proto.Host+proto.PathHealthz, nil)
	resp, err := HTTPClient(sock).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	n := resp.Header.Get(proto.HeaderDPoPNonce)
	if n == "" {
		t.Fatal("agent sent no DPoP-Nonce")
	}
	return n
}

// ProofClaims are the DPoP proof's claims; tests mutate them to build bad
// proofs.
type ProofClaims map[string]any

// Proof builds a DPoP proof (RFC 9449) for method and path on the agent,
// with the current nonce. mutate may change header and claims before
// signing.
func Proof(t testing.TB, key crypto.Signer, method, path, token, nonce string, mutate func(hdr map[jose.HeaderKey]any, claims ProofClaims)) string {
	t.Helper()
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	ath := sha256.Sum256([]byte(token))
	claims := ProofClaims{
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"htm": method,
		"htu": "http://" + proto.Host + path,
		"iat": time.Now().Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(ath[:]),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	hdr := map[jose.HeaderKey]any{
		"typ": "dpop+jwt",
		"jwk": jose.JSONWebKey{Key: key.Public()},
	}
	alg := jose.ES256
	if mutate != nil {
		mutate(hdr, claims)
	}
	if a, ok := hdr["alg"].(string); ok {
		alg = jose.SignatureAlgorithm(a)
		delete(hdr, "alg")
	}
	opts := &jose.SignerOptions{ExtraHeaders: map[jose.HeaderKey]any{}}
	for k, v := range hdr {
		opts.ExtraHeaders[k] = v
	}
	var signingKey any = key
	if k, ok := hdr["signing-key"]; ok {
		signingKey = k
		delete(opts.ExtraHeaders, "signing-key")
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: signingKey}, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(map[string]any(claims)).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// AuthHeaders returns Authorization and DPoP headers for one raw request.
func (h *Agent) AuthHeaders(t testing.TB, c Credentials, method, path string) http.Header {
	t.Helper()
	hd := http.Header{}
	hd.Set(proto.HeaderAuthorization, "DPoP "+c.Token)
	hd.Set(proto.HeaderDPoP, Proof(t, c.Key, method, path, c.Token, h.Nonce(t), nil))
	return hd
}

// DevIssuer loads the dev Authority's private issuer key.
func (h *Agent) DevIssuer(t testing.TB) jose.JSONWebKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.Dir, devauth.IssuerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	return k
}

// StandardClaims are valid OpTok claims for the dev Authority bound to key.
func StandardClaims(t testing.TB, key crypto.Signer) map[string]any {
	t.Helper()
	jkt, err := client.JWKThumbprint(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Unix()
	var jti [8]byte
	_, _ = rand.Read(jti[:])
	return map[string]any{
		"iss": devauth.Issuer, "sub": devauth.Subject, "aud": devauth.Audience,
		"iat": now, "nbf": now, "exp": now + 300,
		"jti":   base64.RawURLEncoding.EncodeToString(jti[:]),
		"scope": devauth.Scope, "tid": devauth.Tenant, "inst": devauth.Installation,
		"cnf": map[string]any{"jkt": jkt},
	}
}

// SignToken signs arbitrary claims as an OpTok with signingKey (an issuer
// JWK, or any key for negative tests) and alg; kid is set from the JWK.
func SignToken(t testing.TB, signingKey any, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("at+jwt")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: signingKey}, opts)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}
