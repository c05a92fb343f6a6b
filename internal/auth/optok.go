package auth

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/stellaops/signer-agent/proto"
)

// Claims are the verified claims of an OpTok.
type Claims struct {
	Issuer       string
	Subject      string
	Tenant       string // tid
	Installation string // inst
	JTI          string
	Scopes       []string
	IssuedAt     time.Time // zero when absent
	NotBefore    time.Time // zero when absent
	Expiry       time.Time
	JKT          string // cnf.jkt: DPoP key thumbprint
	X5TS256      string // cnf["x5t#S256"]: mTLS certificate thumbprint
	TokenHash    string // base64url(SHA-256(token)), the DPoP ath
	KeyID        string // kid of the JWKS key that verified the token
}

func (c *Claims) clone() *Claims {
	n := *c
	n.Scopes = slices.Clone(c.Scopes)
	return &n
}

// tokenAlgs are the OpTok algorithms (SPEC §5); RSA ones additionally need a
// key that declares them.
var tokenAlgs = map[jose.SignatureAlgorithm]bool{
	jose.ES256: true, jose.ES384: true, jose.EdDSA: true, jose.RS256: true, jose.PS256: true,
}

// VerifyToken verifies an OpTok: signature against the Authority's JWKS,
// then iss, aud, exp/nbf/iat (with skew), lifetime, tid and cnf
// (invalid_token), scope (insufficient_scope) and inst (tenant_mismatch).
// ctx bounds a JWKS refetch for an unknown kid. The returned Claims are the
// caller's to keep.
func (v *Verifier) VerifyToken(ctx context.Context, token string) (*Claims, error) {
	if token == "" {
		return nil, tokenError(detailMissingToken, "no token")
	}
	if len(token) > MaxTokenBytes {
		return nil, tokenError(detailMalformedToken, "token longer than %d bytes", MaxTokenBytes)
	}
	now := v.cfg.Now()
	h := sha256.Sum256([]byte(token))
	if c, ok := v.tokens.get(h, now); ok {
		if err := v.checkTokenTimes(c, now); err != nil {
			return nil, err
		}
		return c.clone(), nil
	}

	j, err := parseCompact(token, MaxTokenBytes)
	if err != nil {
		return nil, tokenError(detailMalformedToken, "malformed token: %v", err)
	}
	if t := strings.ToLower(j.typ); t == "dpop+jwt" || t == "application/dpop+jwt" {
		return nil, tokenError(detailMalformedToken, "typ %s: a DPoP proof is not a token", q(j.typ))
	}
	alg := jose.SignatureAlgorithm(j.alg)
	if !tokenAlgs[alg] {
		return nil, tokenError(detailTokenAlg, "alg %s not accepted", q(j.alg))
	}
	keys, err := v.tokenKeys(ctx, j.kid, alg, now)
	if err != nil {
		return nil, err
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{alg})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, tokenError(detailMalformedToken, "malformed JWS")
	}
	var (
		payload []byte
		key     *verifyKey
	)
	for _, k := range keys {
		v.sigChecks.Add(1)
		if p, err := jws.Verify(k.pub); err == nil {
			payload, key = p, k
			break
		}
	}
	if key == nil {
		return nil, tokenError(detailTokenSig, "signature does not verify with key kid=%s alg=%s", q(j.kid), alg)
	}

	c, err := v.tokenClaims(payload, key, now)
	if err != nil {
		return nil, err
	}
	c.TokenHash = b64.EncodeToString(h[:])
	v.tokens.put(h, c, c.Expiry.Add(v.cfg.Skew), now)
	return c.clone(), nil
}

// tokenKeys finds the keys for kid and alg, refetching the JWKS once (rate
// limited) for an unknown kid.
func (v *Verifier) tokenKeys(ctx context.Context, kid string, alg jose.SignatureAlgorithm, now time.Time) ([]*verifyKey, error) {
	keys, res := v.keys.Load().lookup(kid, alg, now)
	if res == lookupUnknownKid {
		v.refetch(ctx)
		keys, res = v.keys.Load().lookup(kid, alg, now)
	}
	switch res {
	case lookupOK:
		return keys, nil
	case lookupKidRequired:
		return nil, tokenError(detailTokenKey, "no kid and the JWKS has several keys")
	case lookupAlgMismatch:
		return nil, tokenError(detailTokenAlg, "alg %s is not the algorithm of key kid=%s", alg, q(kid))
	default:
		return nil, tokenError(detailTokenKey, "unknown kid %s (after JWKS refetch)", q(kid))
	}
}

// tokenClaims decodes and checks the claims of a verified token. The 401
// checks come before the 403 ones (scope, inst).
func (v *Verifier) tokenClaims(payload []byte, key *verifyKey, now time.Time) (*Claims, error) {
	m, err := decodeObject(payload)
	if err != nil {
		return nil, tokenError(detailMalformedToken, "claims: %v", err)
	}
	bad := func(err error) error { return tokenError(detailMalformedToken, "claims: %v", err) }
	c := &Claims{KeyID: key.kid}
	var ok bool
	if c.Issuer, ok, err = stringMember(m, "iss"); err != nil {
		return nil, bad(err)
	} else if !ok || c.Issuer != v.cfg.Issuer {
		return nil, tokenError(detailTokenIssuer, "iss %s, want %s", q(c.Issuer), q(v.cfg.Issuer))
	}
	if c.Subject, _, err = stringMember(m, "sub"); err != nil {
		return nil, bad(err)
	}
	if c.JTI, _, err = stringMember(m, "jti"); err != nil {
		return nil, bad(err)
	}
	if err := v.checkAudience(m["aud"]); err != nil {
		return nil, err
	}

	var hasExp, hasIat, hasNbf bool
	if c.Expiry, hasExp, err = dateMember(m, "exp"); err != nil {
		return nil, bad(err)
	}
	if c.IssuedAt, hasIat, err = dateMember(m, "iat"); err != nil {
		return nil, bad(err)
	}
	if c.NotBefore, hasNbf, err = dateMember(m, "nbf"); err != nil {
		return nil, bad(err)
	}
	if !hasExp {
		return nil, tokenError(detailMalformedToken, "no exp")
	}
	start := c.IssuedAt
	if !hasIat {
		if !hasNbf {
			return nil, tokenError(detailMalformedToken, "neither iat nor nbf: lifetime unknown")
		}
		start = c.NotBefore
	}
	if err := v.checkTokenTimes(c, now); err != nil {
		return nil, err
	}
	if life := c.Expiry.Sub(start); life <= 0 || life > v.cfg.MaxLifetime {
		return nil, tokenError(detailTokenLifetime, "lifetime %s outside (0, %s]", life, v.cfg.MaxLifetime)
	}
	if key.retired() && start.After(key.retiredAt.Add(v.cfg.Skew)) {
		return nil, tokenError(detailTokenKey, "key kid=%s was retired at %s, before the token was issued", q(key.kid), key.retiredAt.UTC().Format(time.RFC3339))
	}

	if c.Tenant, _, err = stringMember(m, "tid"); err != nil {
		return nil, bad(err)
	} else if c.Tenant == "" {
		return nil, tokenError(detailTokenTenant, "no tid")
	}
	if c.Installation, _, err = stringMember(m, "inst"); err != nil {
		return nil, bad(err)
	}
	if err := parseCnf(m["cnf"], c); err != nil {
		return nil, err
	}
	scopes, err := parseScope(m["scope"])
	if err != nil {
		return nil, bad(err)
	}
	c.Scopes = scopes
	if !slices.Contains(scopes, v.cfg.RequiredScope) {
		return nil, &Error{Code: proto.CodeInsufficientScope, Reason: "scope lacks " + q(v.cfg.RequiredScope), Detail: detailScope}
	}
	if v.cfg.Installation != "" && c.Installation != v.cfg.Installation {
		return nil, &Error{Code: proto.CodeTenantMismatch, Reason: "inst " + q(c.Installation) + ", this installation is " + q(v.cfg.Installation), Detail: detailInstallation}
	}
	return c, nil
}

// checkTokenTimes applies exp, nbf and iat with skew; it runs on every use,
// cached or not.
func (v *Verifier) checkTokenTimes(c *Claims, now time.Time) error {
	skew := v.cfg.Skew
	if now.After(c.Expiry.Add(skew)) {
		return tokenError(detailTokenExpired, "expired at %s", c.Expiry.UTC().Format(time.RFC3339))
	}
	if !c.NotBefore.IsZero() && c.NotBefore.After(now.Add(skew)) {
		return tokenError(detailTokenNotYet, "nbf %s is in the future", c.NotBefore.UTC().Format(time.RFC3339))
	}
	if !c.IssuedAt.IsZero() && c.IssuedAt.After(now.Add(skew)) {
		return tokenError(detailTokenNotYet, "iat %s is in the future", c.IssuedAt.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkAudience accepts exactly the string aud or a one-element array of it
// (SPEC §15).
func (v *Verifier) checkAudience(raw json.RawMessage) error {
	if raw == nil {
		return tokenError(detailTokenAudience, "no aud")
	}
	var s string
	if len(raw) > 0 && raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		if s == v.cfg.Audience {
			return nil
		}
		return tokenError(detailTokenAudience, "aud %s, want %s", q(s), q(v.cfg.Audience))
	}
	var list []json.RawMessage
	if len(raw) > 0 && raw[0] == '[' && json.Unmarshal(raw, &list) == nil {
		if len(list) != 1 {
			return tokenError(detailTokenAudience, "aud has %d elements, want exactly one", len(list))
		}
		if len(list[0]) > 0 && list[0][0] == '"' && json.Unmarshal(list[0], &s) == nil && s == v.cfg.Audience {
			return nil
		}
		return tokenError(detailTokenAudience, "aud [%s], want %s", q(s), q(v.cfg.Audience))
	}
	return tokenError(detailTokenAudience, "aud is neither a string nor an array")
}

// parseScope reads scope as a space-separated string (RFC 8693 §4.2) or a
// JSON array of strings. An absent scope is empty.
func parseScope(raw json.RawMessage) ([]string, error) {
	if raw == nil {
		return nil, nil
	}
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, errScopeType
		}
		var out []string
		for _, f := range strings.Split(s, " ") {
			if f != "" {
				out = append(out, f)
			}
		}
		return out, nil
	}
	if len(raw) > 0 && raw[0] == '[' {
		var list []json.RawMessage
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, errScopeType
		}
		out := make([]string, 0, len(list))
		for _, e := range list {
			var s string
			if len(e) == 0 || e[0] != '"' || json.Unmarshal(e, &s) != nil {
				return nil, errScopeType
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errScopeType
}

var errScopeType = errors.New("scope is neither a string nor a string array")

// parseCnf reads the confirmation claim: cnf.jkt (DPoP) and/or
// cnf["x5t#S256"] (mTLS), each a base64url SHA-256; at least one.
func parseCnf(raw json.RawMessage, c *Claims) error {
	if raw == nil {
		return tokenError(detailTokenBinding, "no cnf")
	}
	m, err := decodeObject(raw)
	if err != nil {
		return tokenError(detailTokenBinding, "cnf: %v", err)
	}
	if c.JKT, _, err = stringMember(m, "jkt"); err != nil {
		return tokenError(detailTokenBinding, "cnf: %v", err)
	}
	if c.X5TS256, _, err = stringMember(m, "x5t#S256"); err != nil {
		return tokenError(detailTokenBinding, "cnf: %v", err)
	}
	if c.JKT == "" && c.X5TS256 == "" {
		return tokenError(detailTokenBinding, "cnf has neither jkt nor x5t#S256")
	}
	for name, s := range map[string]string{"jkt": c.JKT, "x5t#S256": c.X5TS256} {
		if s == "" {
			continue
		}
		if b, err := b64.DecodeString(s); err != nil || len(b) != sha256.Size {
			return tokenError(detailTokenBinding, "cnf.%s is not a base64url SHA-256", name)
		}
	}
	return nil
}
