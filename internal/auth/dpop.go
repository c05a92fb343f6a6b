package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/proto"
)

// proofAlgs are the DPoP proof algorithms (SPEC §5).
var proofAlgs = map[jose.SignatureAlgorithm]bool{jose.ES256: true, jose.EdDSA: true}

// VerifyDPoP verifies the DPoP proof of a request (RFC 9449 §4.3) for the
// token whose verified claims are c: method is the request method, path the
// request path (without query); htu must be HTUBase+path exactly. On success
// the proof's jti is recorded, so a second call with the same proof fails.
// See the package documentation for the order of the checks.
func (v *Verifier) VerifyDPoP(ctx context.Context, proof, method, path string, c *Claims, token string) error {
	if c == nil {
		return tokenError(detailMissingToken, "no verified token")
	}
	if token != "" {
		h := sha256.Sum256([]byte(token))
		if b64.EncodeToString(h[:]) != c.TokenHash {
			return tokenError(detailMalformedToken, "the claims passed belong to another token")
		}
	}
	if c.JKT == "" {
		return tokenError(detailTokenBinding, "token is not DPoP-bound (no cnf.jkt)")
	}
	if proof == "" {
		return proofError(detailProofMissing, "no DPoP proof")
	}
	now := v.cfg.Now()

	j, err := parseCompact(proof, MaxProofBytes)
	if err != nil {
		return proofError(detailProofMalformed, "malformed proof: %v", err)
	}
	if j.typ != "dpop+jwt" {
		return proofError(detailProofMalformed, "typ %s, want \"dpop+jwt\"", q(j.typ))
	}
	alg := jose.SignatureAlgorithm(j.alg)
	if !proofAlgs[alg] {
		return proofError(detailProofKey, "alg %s not accepted", q(j.alg))
	}
	pub, jkt, err := proofKey(j.header["jwk"], alg)
	if err != nil {
		return proofError(detailProofKey, "jwk: %v", err)
	}
	if subtle.ConstantTimeCompare([]byte(jkt), []byte(c.JKT)) != 1 {
		return proofError(detailProofBinding, "jwk thumbprint does not match the token's cnf.jkt")
	}
	jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{alg})
	if err != nil || len(jws.Signatures) != 1 {
		return proofError(detailProofMalformed, "malformed JWS")
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return proofError(detailProofSig, "signature does not verify with the proof's jwk")
	}

	m, err := decodeObject(payload)
	if err != nil {
		return proofError(detailProofMalformed, "claims: %v", err)
	}
	htm, _, err1 := stringMember(m, "htm")
	htu, _, err2 := stringMember(m, "htu")
	ath, _, err3 := stringMember(m, "ath")
	jti, _, err4 := stringMember(m, "jti")
	nonce, hasNonce, err5 := stringMember(m, "nonce")
	iat, hasIat, err6 := dateMember(m, "iat")
	if err := errors.Join(err1, err2, err3, err4, err5, err6); err != nil {
		return proofError(detailProofMalformed, "claims: %v", strings.ReplaceAll(err.Error(), "\n", "; "))
	}

	if htm != method {
		return proofError(detailProofRequest, "htm %s, request method %s", q(htm), q(method))
	}
	if err := v.checkHTU(htu, path); err != nil {
		return err
	}
	if !hasIat {
		return proofError(detailProofMalformed, "no iat")
	}
	if iat.Before(now.Add(-v.cfg.Skew)) {
		return proofError(detailProofTime, "iat %s is stale (skew %s)", iat.UTC().Format(time.RFC3339), v.cfg.Skew)
	}
	if iat.After(now.Add(v.cfg.Skew)) {
		return proofError(detailProofTime, "iat %s is in the future (skew %s)", iat.UTC().Format(time.RFC3339), v.cfg.Skew)
	}
	if ath == "" {
		return proofError(detailProofATH, "no ath")
	}
	if subtle.ConstantTimeCompare([]byte(ath), []byte(c.TokenHash)) != 1 {
		return proofError(detailProofATH, "ath does not match the token hash")
	}
	if jti == "" {
		return proofError(detailProofMalformed, "no jti")
	}
	if len(jti) > maxJTIBytes {
		return proofError(detailProofMalformed, "jti longer than %d bytes", maxJTIBytes)
	}

	key := replayKey(c.JKT, jti)
	if err := v.replay.check(key, iat, now); err != nil {
		return proofError(detailProofReplay, "%v", err)
	}
	switch {
	case hasNonce && !v.nonces.valid(nonce, now):
		return &Error{Code: proto.CodeUseDPoPNonce, Reason: "nonce is stale or not issued by this agent", Detail: detailNonce}
	case !hasNonce && v.cfg.NonceRequired:
		return &Error{Code: proto.CodeUseDPoPNonce, Reason: "nonce required", Detail: detailNonce}
	}
	if err := v.replay.add(key, iat, now); err != nil {
		return proofError(detailProofReplay, "%v", err)
	}
	return nil
}

// checkHTU requires htu = HTUBase+path, compared as strings, and refuses
// any query or fragment (SPEC §15).
func (v *Verifier) checkHTU(htu, path string) error {
	if strings.ContainsAny(htu, "?#") {
		return proofError(detailProofRequest, "htu carries a query or fragment")
	}
	if _, err := url.Parse(htu); err != nil {
		return proofError(detailProofRequest, "htu is not a URL")
	}
	if want := v.cfg.HTUBase + path; htu != want {
		return proofError(detailProofRequest, "htu %s, want %s", q(htu), q(want))
	}
	return nil
}

// proofKey parses the proof's embedded jwk: a public EC P-256 key for
// ES256 or an Ed25519 key for EdDSA. It returns the typed key and its RFC
// 7638 thumbprint (base64url SHA-256).
func proofKey(raw json.RawMessage, alg jose.SignatureAlgorithm) (crypto.PublicKey, string, error) {
	if raw == nil {
		return nil, "", errors.New("no jwk header")
	}
	m, err := decodeObject(raw)
	if err != nil {
		return nil, "", err
	}
	if kty, _, _ := stringMember(m, "kty"); kty == "oct" {
		return nil, "", errors.New("symmetric key")
	}
	for _, p := range privateMembers {
		if _, ok := m[p]; ok {
			return nil, "", errors.New("contains private key material")
		}
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		return nil, "", errors.New("not a valid public key")
	}
	if declared := jwk.Algorithm; declared != "" && declared != string(alg) {
		return nil, "", errors.New("jwk alg does not match the header alg")
	}
	var pub crypto.PublicKey
	switch k := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		if alg != jose.ES256 || k.Curve != elliptic.P256() {
			return nil, "", errors.New("key type does not match alg")
		}
		pub = k
	case ed25519.PublicKey:
		if alg != jose.EdDSA {
			return nil, "", errors.New("key type does not match alg")
		}
		pub = k
	default:
		return nil, "", errors.New("key type not accepted")
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, "", errors.New("thumbprint")
	}
	return pub, b64.EncodeToString(tp), nil
}
