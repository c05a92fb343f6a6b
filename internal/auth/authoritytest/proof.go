package authoritytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"time"
)

// Proof builds a DPoP proof (RFC 9449) signed by key, with header
// {typ: dpop+jwt, alg, jwk: key's public JWK} and claims {jti, htm, htu,
// iat, ath (when token is not empty), nonce (when not empty)}. An empty jti
// gets a random one. mutate, when not nil, edits the header and claims
// before signing: set hdr["jwk"] to another key's JWK or to PrivateJWK,
// change "typ" or "alg" (an HS* alg signs with the JSON of hdr["jwk"] as the
// HMAC secret), delete claims, and so on. It panics on failure (tests only).
func Proof(key crypto.Signer, method, htu, token, nonce string, iat time.Time, jti string, mutate func(hdr, claims map[string]any)) string {
	alg := "ES256"
	if _, ok := key.Public().(ed25519.PublicKey); ok {
		alg = "EdDSA"
	} else if _, ok := key.Public().(*ecdsa.PublicKey); !ok {
		alg = "RS256"
	}
	if jti == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		jti = enc.EncodeToString(b[:])
	}
	hdr := map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": PublicJWK(key.Public(), "", "")}
	claims := map[string]any{"jti": jti, "htm": method, "htu": htu, "iat": iat.Unix()}
	if token != "" {
		claims["ath"] = TokenHash(token)
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if mutate != nil {
		mutate(hdr, claims)
	}
	secret, _ := json.Marshal(hdr["jwk"])
	s, err := SignJWS(hdr, claims, key, secret)
	if err != nil {
		panic(err)
	}
	return s
}
