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
	"fmt"
	"math/big"
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
//
// The proof is parsed once: its three segments are split and decoded
// here, the protected header is checked (or found in the proof-header
// cache, proofkeys.go), the signature is verified over the original
// segments with the header's key, and the claims are decoded into a
// struct (proofclaims.go).
func (v *Verifier) VerifyDPoP(ctx context.Context, proof, method, path string, c *Claims, token string) error {
	if c == nil {
		return tokenError(detailMissingToken, "no verified token")
	}
	if token != "" {
		h := sha256.Sum256([]byte(token))
		var enc [43]byte // base64url of 32 bytes, unpadded
		b64.Encode(enc[:], h[:])
		if string(enc[:]) != c.TokenHash {
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

	j, err := splitProof(proof)
	if err != nil {
		return proofError(detailProofMalformed, "malformed proof: %v", err)
	}
	key, cached := v.proofs.get(j.header)
	if !cached {
		if key, err = parseProofHeader(j.header, proof); err != nil {
			return err
		}
	}
	if subtle.ConstantTimeCompare([]byte(key.jkt), []byte(c.JKT)) != 1 {
		return proofError(detailProofBinding, "jwk thumbprint does not match the token's cnf.jkt")
	}
	if !verifyProofSignature(key, proof[:len(j.header)+1+len(j.payload64)], j.sig) {
		return proofError(detailProofSig, "signature does not verify with the proof's jwk")
	}
	if !cached {
		v.proofs.add(j.header, key)
	}

	pc, err := parseProofClaims(j.payload)
	if err != nil {
		return proofError(detailProofMalformed, "claims: %v", strings.ReplaceAll(err.Error(), "\n", "; "))
	}

	if pc.htm != method {
		return proofError(detailProofRequest, "htm %s, request method %s", q(pc.htm), q(method))
	}
	if err := v.checkHTU(pc.htu, path); err != nil {
		return err
	}
	if !pc.hasIat {
		return proofError(detailProofMalformed, "no iat")
	}
	iat := pc.iat
	if iat.Before(now.Add(-v.cfg.Skew)) {
		return proofError(detailProofTime, "iat %s is stale (skew %s)", iat.UTC().Format(time.RFC3339), v.cfg.Skew)
	}
	if iat.After(now.Add(v.cfg.Skew)) {
		return proofError(detailProofTime, "iat %s is in the future (skew %s)", iat.UTC().Format(time.RFC3339), v.cfg.Skew)
	}
	if pc.ath == "" {
		return proofError(detailProofATH, "no ath")
	}
	if subtle.ConstantTimeCompare([]byte(pc.ath), []byte(c.TokenHash)) != 1 {
		return proofError(detailProofATH, "ath does not match the token hash")
	}
	if pc.jti == "" {
		return proofError(detailProofMalformed, "no jti")
	}
	if len(pc.jti) > maxJTIBytes {
		return proofError(detailProofMalformed, "jti longer than %d bytes", maxJTIBytes)
	}

	rk := replayKey(c.JKT, pc.jti)
	if err := v.replay.check(rk, iat, now); err != nil {
		return proofError(detailProofReplay, "%v", err)
	}
	switch {
	case pc.hasNonce && !v.nonces.valid(pc.nonce, now):
		return &Error{Code: proto.CodeUseDPoPNonce, Reason: "nonce is stale or not issued by this agent", Detail: detailNonce}
	case !pc.hasNonce && v.cfg.NonceRequired:
		return &Error{Code: proto.CodeUseDPoPNonce, Reason: "nonce required", Detail: detailNonce}
	}
	if err := v.replay.add(rk, iat, now); err != nil {
		return proofError(detailProofReplay, "%v", err)
	}
	return nil
}

// splitJWS is a compact JWS split into its segments, the payload and the
// signature decoded.
type splitJWS struct {
	header    string // base64url, as received (the cache key)
	payload64 string
	payload   []byte
	sig       []byte
}

// splitProof applies parseCompact's segment rules to a proof: at most
// MaxProofBytes, exactly three non-empty segments, each canonical
// base64url. The header segment is decoded and checked by
// parseProofHeader (or was, when it is found in the cache).
func splitProof(s string) (*splitJWS, error) {
	if len(s) > MaxProofBytes {
		return nil, fmt.Errorf("longer than %d bytes", MaxProofBytes)
	}
	h, rest, ok1 := strings.Cut(s, ".")
	p, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(sig, '.') >= 0 {
		return nil, fmt.Errorf("%d segments, want 3 (JWS compact serialisation)", strings.Count(s, ".")+1)
	}
	if h == "" || p == "" {
		return nil, errors.New("empty header or payload segment")
	}
	if sig == "" {
		return nil, errors.New("empty signature")
	}
	j := &splitJWS{header: h, payload64: p}
	var err error
	if j.payload, err = b64.DecodeString(p); err != nil {
		return nil, errors.New("payload is not canonical base64url")
	}
	if j.sig, err = b64.DecodeString(sig); err != nil {
		return nil, errors.New("signature is not canonical base64url")
	}
	return j, nil
}

// parseProofHeader decodes and checks a proof's protected header: the
// rules of parseCompact (canonical base64url, one JSON object without
// duplicate members, alg a non-empty string, kid and typ strings, no
// crit/b64/zip/enc), typ dpop+jwt, alg ES256 or EdDSA, and a public jwk of
// that algorithm (proofJWK). The whole proof must also parse with go-jose
// (which, among other things, refuses a non-string nonce header or an x5c
// that is not a certificate chain), exactly as before the cache existed;
// since only the header can make that parse fail once the segments are
// canonical base64url, a cached header stands for it too. Failures are
// *Error.
func parseProofHeader(seg, proof string) (*proofKey, error) {
	hb, err := b64.DecodeString(seg)
	if err != nil {
		return nil, proofError(detailProofMalformed, "malformed proof: header is not canonical base64url")
	}
	h, err := decodeObject(hb)
	if err != nil {
		return nil, proofError(detailProofMalformed, "malformed proof: header: %v", err)
	}
	alg, _, err := stringMember(h, "alg")
	if err != nil {
		return nil, proofError(detailProofMalformed, "malformed proof: header: %v", err)
	}
	if alg == "" {
		return nil, proofError(detailProofMalformed, "malformed proof: header: no alg")
	}
	if _, _, err := stringMember(h, "kid"); err != nil {
		return nil, proofError(detailProofMalformed, "malformed proof: header: %v", err)
	}
	typ, _, err := stringMember(h, "typ")
	if err != nil {
		return nil, proofError(detailProofMalformed, "malformed proof: header: %v", err)
	}
	for _, k := range []string{"crit", "b64", "zip", "enc"} {
		if _, ok := h[k]; ok {
			return nil, proofError(detailProofMalformed, "malformed proof: header: %q is not accepted", k)
		}
	}
	if typ != "dpop+jwt" {
		return nil, proofError(detailProofMalformed, "typ %s, want \"dpop+jwt\"", q(typ))
	}
	a := jose.SignatureAlgorithm(alg)
	if !proofAlgs[a] {
		return nil, proofError(detailProofKey, "alg %s not accepted", q(alg))
	}
	pub, jkt, err := proofJWK(h["jwk"], a)
	if err != nil {
		return nil, proofError(detailProofKey, "jwk: %v", err)
	}
	if jws, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{a}); err != nil || len(jws.Signatures) != 1 {
		return nil, proofError(detailProofMalformed, "malformed JWS")
	}
	return &proofKey{alg: a, pub: pub, jkt: jkt}, nil
}

// verifyProofSignature checks a JWS signature over its signing input (the
// header and payload segments as received) the way go-jose does for these
// two algorithms: ES256 is r||s, 32 bytes each, over SHA-256 of the input;
// EdDSA is a 64-byte Ed25519 signature over the input itself.
func verifyProofSignature(k *proofKey, input string, sig []byte) bool {
	switch k.alg {
	case jose.ES256:
		pub, ok := k.pub.(*ecdsa.PublicKey)
		if !ok || len(sig) != 64 {
			return false
		}
		d := sha256.Sum256([]byte(input))
		r := new(big.Int).SetBytes(sig[:32])
		s := new(big.Int).SetBytes(sig[32:])
		return ecdsa.Verify(pub, d[:], r, s)
	case jose.EdDSA:
		pub, ok := k.pub.(ed25519.PublicKey)
		if !ok || len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
			return false
		}
		return ed25519.Verify(pub, []byte(input), sig)
	}
	return false
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

// proofJWK parses the proof's embedded jwk: a public EC P-256 key for
// ES256 or an Ed25519 key for EdDSA. It returns the typed key and its RFC
// 7638 thumbprint (base64url SHA-256).
func proofJWK(raw json.RawMessage, alg jose.SignatureAlgorithm) (crypto.PublicKey, string, error) {
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
