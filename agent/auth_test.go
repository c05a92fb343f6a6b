package agent_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestAuthRejects: every authentication failure of issue #3, end to end
// through the agent: status, code, WWW-Authenticate, nothing signed, and an
// audit record of the denial.
func TestAuthRejects(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	iss := h.DevIssuer(t)
	issKey, kid := iss.Key, iss.KeyID
	dpopKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	req := signRequest()
	req.PoE = &proto.PoE{Format: "jwt", Value: h.Creds.PoE}
	req.ScannerImageDigest = h.Creds.ScannerImageDigest
	body, _ := json.Marshal(req)
	path := proto.PathSignDSSE

	tok := func(mutate func(c map[string]any)) string {
		c := harness.StandardClaims(t, dpopKey)
		if mutate != nil {
			mutate(c)
		}
		return harness.SignToken(t, issKey, jose.ES256, kid, c)
	}
	good := tok(nil)
	proof := func(token string, mutate func(hdr map[jose.HeaderKey]any, c harness.ProofClaims)) string {
		return harness.Proof(t, dpopKey, http.MethodPost, path, token, h.Nonce(t), mutate)
	}
	hs256 := func() string {
		// HS256 keyed with the issuer's public JWK bytes: the classic confusion attack.
		k, _ := json.Marshal(iss.Public())
		return harness.SignToken(t, k, jose.HS256, kid, harness.StandardClaims(t, dpopKey))
	}
	noneTok := func() string {
		h := `{"alg":"none","typ":"at+jwt","kid":"` + kid + `"}`
		c, _ := json.Marshal(harness.StandardClaims(t, dpopKey))
		return b64(h) + "." + b64(string(c)) + "."
	}
	replayed := proof(good, nil)

	type tc struct {
		name   string
		auth   string
		dpop   []string
		status int
		code   proto.Code
		before func()
	}
	cases := []tc{
		{name: "missing token", auth: "", dpop: []string{proof(good, nil)}, status: 401, code: proto.CodeInvalidToken},
		{name: "bearer scheme", auth: "Bearer " + good, dpop: []string{proof(good, nil)}, status: 401, code: proto.CodeInvalidToken},
		{name: "malformed JWT", auth: "DPoP not.a.jwt", dpop: []string{proof("not.a.jwt", nil)}, status: 401, code: proto.CodeInvalidToken},
		{name: "bad signature", auth: "DPoP " + good[:len(good)-4] + "AAAA", status: 401, code: proto.CodeInvalidToken},
		{name: "unknown kid", auth: "DPoP " + harness.SignToken(t, otherKey, jose.ES256, "nope", harness.StandardClaims(t, dpopKey)), status: 401, code: proto.CodeInvalidToken},
		{name: "alg none", auth: "DPoP " + noneTok(), status: 401, code: proto.CodeInvalidToken},
		{name: "HS256 with public key as secret", auth: "DPoP " + hs256(), status: 401, code: proto.CodeInvalidToken},
		{name: "wrong iss", auth: "DPoP " + tok(func(c map[string]any) { c["iss"] = "https://evil.example" }), status: 401, code: proto.CodeInvalidToken},
		{name: "wrong aud", auth: "DPoP " + tok(func(c map[string]any) { c["aud"] = "other" }), status: 401, code: proto.CodeInvalidToken},
		{name: "multi-audience", auth: "DPoP " + tok(func(c map[string]any) { c["aud"] = []string{"signer", "other"} }), status: 401, code: proto.CodeInvalidToken},
		{name: "expired", auth: "DPoP " + tok(func(c map[string]any) {
			c["exp"] = time.Now().Add(-time.Minute).Unix()
			c["iat"] = time.Now().Add(-3 * time.Minute).Unix()
			c["nbf"] = c["iat"]
		}), status: 401, code: proto.CodeInvalidToken},
		{name: "not yet valid", auth: "DPoP " + tok(func(c map[string]any) { c["nbf"] = time.Now().Add(2 * time.Minute).Unix() }), status: 401, code: proto.CodeInvalidToken},
		{name: "lifetime too long", auth: "DPoP " + tok(func(c map[string]any) { c["exp"] = time.Now().Add(time.Hour).Unix() }), status: 401, code: proto.CodeInvalidToken},
		{name: "missing scope", auth: "DPoP " + tok(func(c map[string]any) { c["scope"] = "signer.read" }), status: 403, code: proto.CodeInsufficientScope},
		{name: "missing tid", auth: "DPoP " + tok(func(c map[string]any) { delete(c, "tid") }), status: 401, code: proto.CodeInvalidToken},
		{name: "unknown tenant", auth: "DPoP " + tok(func(c map[string]any) { c["tid"] = "tenant-z" }), status: 403, code: proto.CodeTenantMismatch},
		{name: "wrong inst", auth: "DPoP " + tok(func(c map[string]any) { c["inst"] = "other-node" }), status: 403, code: proto.CodeTenantMismatch},
		{name: "missing cnf", auth: "DPoP " + tok(func(c map[string]any) { delete(c, "cnf") }), status: 401, code: proto.CodeInvalidToken},
		{name: "DPoP missing", auth: "DPoP " + good, dpop: []string{}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "two DPoP proofs", auth: "DPoP " + good, dpop: []string{proof(good, nil), proof(good, nil)}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "DPoP private key in jwk", auth: "DPoP " + good, dpop: []string{proof(good, func(hd map[jose.HeaderKey]any, _ harness.ProofClaims) {
			hd["jwk"] = jose.JSONWebKey{Key: dpopKey}
		})}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "thumbprint mismatch", auth: "DPoP " + good, dpop: []string{harness.Proof(t, otherKey, http.MethodPost, path, good, h.Nonce(t), nil)}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "proof signed by another key than its jwk", auth: "DPoP " + good, dpop: []string{proof(good, func(hd map[jose.HeaderKey]any, _ harness.ProofClaims) {
			hd["signing-key"] = otherKey
		})}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "wrong htm", auth: "DPoP " + good, dpop: []string{proof(good, func(_ map[jose.HeaderKey]any, c harness.ProofClaims) { c["htm"] = "GET" })}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "wrong htu", auth: "DPoP " + good, dpop: []string{proof(good, func(_ map[jose.HeaderKey]any, c harness.ProofClaims) {
			c["htu"] = "http://signer-agent/api/v1/signer/keys"
		})}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "query in htu", auth: "DPoP " + good, dpop: []string{proof(good, func(_ map[jose.HeaderKey]any, c harness.ProofClaims) {
			c["htu"] = "http://signer-agent" + path + "?x=1"
		})}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "stale iat", auth: "DPoP " + good, dpop: []string{proof(good, func(_ map[jose.HeaderKey]any, c harness.ProofClaims) {
			c["iat"] = time.Now().Add(-10 * time.Minute).Unix()
		})}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "future iat", auth: "DPoP " + good, dpop: []string{proof(good, func(_ map[jose.HeaderKey]any, c harness.ProofClaims) {
			c["iat"] = time.Now().Add(10 * time.Minute).Unix()
		})}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "wrong ath", auth: "DPoP " + good, dpop: []string{proof(good, func(_ map[jose.HeaderKey]any, c harness.ProofClaims) { c["ath"] = b64("other") })}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "wrong typ", auth: "DPoP " + good, dpop: []string{proof(good, func(hd map[jose.HeaderKey]any, _ harness.ProofClaims) { hd["typ"] = "JWT" })}, status: 401, code: proto.CodeInvalidDPoPProof},
		{name: "replayed jti", auth: "DPoP " + good, dpop: []string{replayed}, status: 401, code: proto.CodeInvalidDPoPProof, before: func() {
			// First use succeeds and signs; the replay below must not.
			sendRaw(t, h, "DPoP "+good, []string{replayed}, body)
		}},
		{name: "missing nonce", auth: "DPoP " + good, dpop: []string{proof(good, func(_ map[jose.HeaderKey]any, c harness.ProofClaims) { delete(c, "nonce") })}, status: 401, code: proto.CodeUseDPoPNonce},
		{name: "stale nonce", auth: "DPoP " + good, dpop: []string{proof(good, func(_ map[jose.HeaderKey]any, c harness.ProofClaims) { c["nonce"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" })}, status: 401, code: proto.CodeUseDPoPNonce},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.before != nil {
				c.before()
			}
			dpop := c.dpop
			if dpop == nil {
				auth := strings.TrimPrefix(c.auth, "DPoP ")
				dpop = []string{proof(auth, nil)}
			}
			signedBefore := len(h.Signed())
			before := len(h.Audit.Records())
			resp, respBody := sendRaw(t, h, c.auth, dpop, body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, respBody)
			}
			p, err := proto.DecodeProblem(respBody)
			if err != nil || p.Code != c.code {
				t.Fatalf("problem %+v (%v), want %s", p, err, c.code)
			}
			if c.status == 401 {
				wa := resp.Header.Get(proto.HeaderWWWAuthenticate)
				if !strings.HasPrefix(wa, "DPoP ") || !strings.Contains(wa, `error="`+string(c.code)+`"`) {
					t.Fatalf("WWW-Authenticate %q", wa)
				}
			}
			if resp.Header.Get(proto.HeaderDPoPNonce) == "" {
				t.Fatal("no DPoP-Nonce on the response")
			}
			if bytesContains(respBody, good) {
				t.Fatal("response echoes the token")
			}
			if n := len(h.Signed()); n != signedBefore {
				t.Fatalf("%d new signatures", n-signedBefore)
			}
			recs := h.Audit.Records()[before:]
			last := recs[len(recs)-1]
			if last.Decision != audit.Deny || last.Code != string(c.code) || last.Reason == "" {
				t.Fatalf("audit %+v", last)
			}
		})
	}
	// The untouched credentials still sign.
	resp, b := sendRaw(t, h, "DPoP "+good, []string{proof(good, nil)}, body)
	if resp.StatusCode != 200 {
		t.Fatalf("good request: %d %s", resp.StatusCode, b)
	}
}

func sendRaw(t *testing.T, h *harness.Agent, authz string, dpop []string, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://signer-agent"+proto.PathSignDSSE, strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if authz != "" {
		req.Header.Set(proto.HeaderAuthorization, authz)
	}
	for _, p := range dpop {
		req.Header.Add(proto.HeaderDPoP, p)
	}
	resp, err := harness.HTTPClient(h.APISock).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

func bytesContains(b []byte, s string) bool { return strings.Contains(string(b), s) }

func b64(s string) string { return base64URL([]byte(s)) }
