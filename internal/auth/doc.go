// Package auth is the agent's authentication gate (SPEC §1 steps 2–3, §5):
// it verifies the OpTok, a short-lived JWT issued by the Authority, and the
// DPoP proof (RFC 9449) that binds it to the caller's key.
//
// A Verifier is built once from a Config and is safe for concurrent use.
// The request path is:
//
//	tok, err := auth.ParseAuthorization(r.Header.Get("Authorization"))
//	claims, err := v.VerifyToken(ctx, tok)
//	err = v.VerifyDPoP(ctx, r.Header.Get("DPoP"), r.Method, r.URL.Path, claims, tok)
//	w.Header().Set("DPoP-Nonce", v.Nonce()) // on every response
//
// Every failure is an *Error carrying exactly one proto code: invalid_token,
// invalid_dpop_proof, use_dpop_nonce, insufficient_scope or tenant_mismatch.
// Its Reason is precise and meant for the audit log; its Detail is safe to
// send to the client. Neither ever contains a token or a proof.
//
// # Keys
//
// The Authority's JWKS comes from a file (offline; reloaded when the file
// changes, including by atomic rename) or from the issuer's discovery
// document (online; cached, refetched in the background, and refetched when
// a token names an unknown kid, at most once per RefetchMinInterval). A JWKS
// that cannot be loaded or parsed never replaces the keys in use, so an
// unreachable issuer leaves the cached keys working.
//
// A JWKS containing a private or symmetric key is refused as a whole: it is a
// sign that the Authority's secret material leaked, and the agent keeps the
// keys it had. Keys of unknown type, with use other than "sig", or on curves
// the agent does not accept are skipped.
//
// A key that disappears from the JWKS is retired, not dropped: tokens it
// signed stay valid until they expire. Its deadline is fixed when the agent
// first sees it missing, at that moment + MaxLifetime + Skew, which is the
// latest any token issued before then can expire (longer-lived tokens are
// refused anyway). Until the deadline the retired key verifies only tokens
// whose iat (or nbf) is no later than the retirement (+ Skew): a retired key
// can never introduce new tokens. After the deadline it is forgotten.
//
// # Tokens
//
// Only JWS compact serialisation with exactly one signature is read, with
// canonical unpadded base64url segments and no duplicate JSON members.
// Algorithms: ES256, ES384, EdDSA, and RS256/PS256 only for an RSA key whose
// JWK declares that alg; the key's type fixes the algorithm, so "none", HMAC
// and algorithm-confusion tokens never verify. A header with "crit" or "b64"
// is refused, and so is typ "dpop+jwt" (a proof is not a token). A successful
// verification is cached by the token's SHA-256 until the token expires; the
// time checks are repeated on every use.
//
// # DPoP
//
// A proof is checked in this order, and the first failure decides the code:
// syntax and header (typ, alg, public jwk) → jwk thumbprint = cnf.jkt →
// signature → htm → htu → iat → ath → jti replay (invalid_dpop_proof) →
// nonce (use_dpop_nonce) → the jti is recorded. The nonce comes last so that
// a client is told to fetch a nonce only for a proof that is otherwise
// acceptable, and a replayed proof is always invalid_dpop_proof, whatever
// its nonce.
//
// Each proof is parsed once. Its protected header — everything that is a
// function of the header's bytes alone: typ, alg, the jwk and its RFC 7638
// thumbprint — is checked once per distinct header and kept in a bounded
// LRU keyed by those exact bytes, added to only after the proof's signature
// verified; the thumbprint against the token, the signature, the claims,
// the nonce and the jti are checked on every request.
//
// Nonces are stateless: the index of the current time window and an HMAC of
// it. The current and the previous window are accepted. A jti is remembered
// for max(2×Skew, 2×NonceWindow); when the bounded replay cache is full the
// oldest entries are evicted and every proof whose iat is not newer than
// theirs is refused from then on, so eviction can never re-open a replay.
package auth
