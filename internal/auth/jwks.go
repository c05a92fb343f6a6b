package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// minRSABits is the smallest RSA modulus accepted in a JWKS.
const minRSABits = 2048

// verifyKey is one usable JWKS key. The key's type fixes the single
// algorithm it verifies; verification always uses the typed public key, never
// a JSONWebKey, so no header can turn it into an HMAC secret.
type verifyKey struct {
	kid string
	id  string // kid, RFC 7638 thumbprint and alg: the key's identity across reloads
	alg jose.SignatureAlgorithm
	pub crypto.PublicKey

	// Set once the key has disappeared from the JWKS (see the package doc).
	retiredAt time.Time
	deadline  time.Time
}

func (k *verifyKey) retired() bool { return !k.retiredAt.IsZero() }

// keySet is an immutable snapshot: published keys first, then retired ones.
type keySet struct {
	keys     []*verifyKey
	loadedAt time.Time
}

// parseJWKS reads a JWKS document. Structural errors, private keys and
// symmetric keys fail the whole document; keys the agent cannot use are
// skipped. A document with no usable key is an error.
func parseJWKS(b []byte) ([]*verifyKey, error) {
	if len(b) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS larger than %d bytes", maxJWKSBytes)
	}
	top, err := decodeObject(b)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	var raws []json.RawMessage
	if rk, ok := top["keys"]; !ok || json.Unmarshal(rk, &raws) != nil || raws == nil {
		return nil, errors.New(`JWKS: no "keys" array`)
	}
	var out []*verifyKey
	seen := map[string]bool{}
	for i, raw := range raws {
		k, err := parseJWKSKey(raw)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %d: %w", i, err)
		}
		if k == nil || seen[k.id] {
			continue
		}
		seen[k.id] = true
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("JWKS has no usable signature verification key")
	}
	return out, nil
}

// privateMembers are the JWK members that carry private or secret key
// material (RFC 7518 §6, RFC 8037, ML-DSA "priv").
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"}

// parseJWKSKey returns nil, nil for a key to skip.
func parseJWKSKey(raw json.RawMessage) (*verifyKey, error) {
	m, err := decodeObject(raw)
	if err != nil {
		return nil, err
	}
	kty, _, err := stringMember(m, "kty")
	if err != nil {
		return nil, err
	}
	kid, _, err := stringMember(m, "kid")
	if err != nil {
		return nil, err
	}
	if kty == "oct" {
		return nil, fmt.Errorf("kid %s is a symmetric key", q(kid))
	}
	for _, p := range privateMembers {
		if _, ok := m[p]; ok {
			return nil, fmt.Errorf("kid %s contains private key material", q(kid))
		}
	}
	if use, ok, err := stringMember(m, "use"); err != nil {
		return nil, err
	} else if ok && use != "sig" {
		return nil, nil
	}
	if ops, ok := m["key_ops"]; ok {
		var list []string
		if err := json.Unmarshal(ops, &list); err != nil {
			return nil, errors.New("key_ops is not a string array")
		}
		if !slices.Contains(list, "verify") {
			return nil, nil
		}
	}
	declared, _, err := stringMember(m, "alg")
	if err != nil {
		return nil, err
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		if errors.Is(err, jose.ErrUnsupportedKeyType) {
			return nil, nil
		}
		return nil, fmt.Errorf("kid %s: invalid key", q(kid))
	}
	k := &verifyKey{kid: kid}
	switch pub := jwk.Key.(type) {
	case *ecdsa.PublicKey:
		switch pub.Curve {
		case elliptic.P256():
			k.alg = jose.ES256
		case elliptic.P384():
			k.alg = jose.ES384
		default:
			return nil, nil
		}
		k.pub = pub
	case ed25519.PublicKey:
		k.alg = jose.EdDSA
		k.pub = pub
	case *rsa.PublicKey:
		if pub.N.BitLen() < minRSABits {
			return nil, nil
		}
		// RSA only with an explicit declaration (SPEC §5).
		switch jose.SignatureAlgorithm(declared) {
		case jose.RS256, jose.PS256:
			k.alg = jose.SignatureAlgorithm(declared)
		default:
			return nil, nil
		}
		k.pub = pub
	default:
		return nil, nil
	}
	if declared != "" && jose.SignatureAlgorithm(declared) != k.alg {
		return nil, nil // declared alg does not fit the key: unusable
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("kid %s: thumbprint: %w", q(kid), err)
	}
	k.id = kid + "|" + base64.RawURLEncoding.EncodeToString(tp) + "|" + string(k.alg)
	return k, nil
}

// merge builds the successor of old after a successful load: the fresh keys
// are published; old published keys missing from it are retired now with
// deadline now+grace; retired keys stay until their deadline unless they
// are published again.
func merge(old *keySet, fresh []*verifyKey, now time.Time, grace time.Duration) *keySet {
	ns := &keySet{keys: append([]*verifyKey(nil), fresh...), loadedAt: now}
	in := map[string]bool{}
	for _, k := range fresh {
		in[k.id] = true
	}
	if old == nil {
		return ns
	}
	for _, k := range old.keys {
		if in[k.id] {
			continue
		}
		if !k.retired() {
			r := *k
			r.retiredAt, r.deadline = now, now.Add(grace)
			ns.keys = append(ns.keys, &r)
		} else if !now.After(k.deadline) {
			ns.keys = append(ns.keys, k)
		}
	}
	return ns
}

type lookupResult int

const (
	lookupOK lookupResult = iota
	lookupUnknownKid
	lookupKidRequired
	lookupAlgMismatch
)

// lookup returns the keys that may verify a token with this kid and alg.
// Without a kid, the only published key is used (when there is exactly one).
func (s *keySet) lookup(kid string, alg jose.SignatureAlgorithm, now time.Time) ([]*verifyKey, lookupResult) {
	var byKid []*verifyKey
	if kid == "" {
		for _, k := range s.keys {
			if !k.retired() {
				byKid = append(byKid, k)
			}
		}
		if len(byKid) > 1 {
			return nil, lookupKidRequired
		}
	} else {
		for _, k := range s.keys {
			if k.kid == kid && (!k.retired() || !now.After(k.deadline)) {
				byKid = append(byKid, k)
			}
		}
	}
	if len(byKid) == 0 {
		return nil, lookupUnknownKid
	}
	var out []*verifyKey
	for _, k := range byKid {
		if k.alg == alg {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, lookupAlgMismatch
	}
	return out, lookupOK
}

func (s *keySet) counts(now time.Time) (published, retired int) {
	for _, k := range s.keys {
		switch {
		case !k.retired():
			published++
		case !now.After(k.deadline):
			retired++
		}
	}
	return
}
