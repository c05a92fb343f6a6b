package auth

import (
	"crypto"

	jose "github.com/go-jose/go-jose/v4"
	lru "github.com/hashicorp/golang-lru/v2"
)

// DefaultProofKeyCacheSize bounds the proof-header cache: distinct DPoP
// headers (in practice, distinct client keys) whose parsed key is kept.
const DefaultProofKeyCacheSize = 4096

// proofKey is what a DPoP proof's protected header establishes once it
// has passed every header check: the algorithm, the embedded public key
// and its RFC 7638 thumbprint.
type proofKey struct {
	alg jose.SignatureAlgorithm
	pub crypto.PublicKey // *ecdsa.PublicKey (P-256) or ed25519.PublicKey
	jkt string
}

// proofKeyCache maps a proof's header segment — its exact base64url bytes
// — to the proofKey parsed from it. Everything in a proofKey is a pure
// function of those bytes, so a hit stands for a repeat of the checks
// (no duplicate members, typ, alg, no crit/b64/zip/enc, a public P-256 or
// Ed25519 jwk matching alg, its thumbprint) with the same result; what
// depends on the request (the token's cnf.jkt, the signature, the claims,
// nonce and replay) is checked on every request. Only headers whose proof
// signature verified are added, so filling the cache takes a valid token
// and its key; eviction (LRU) costs a re-parse, never a check.
type proofKeyCache struct{ c *lru.Cache[string, *proofKey] }

func newProofKeyCache(size int) *proofKeyCache {
	if size <= 0 {
		size = DefaultProofKeyCacheSize
	}
	c, err := lru.New[string, *proofKey](size)
	if err != nil { // only for a size <= 0
		panic(err)
	}
	return &proofKeyCache{c: c}
}

func (p *proofKeyCache) get(header string) (*proofKey, bool) { return p.c.Get(header) }

func (p *proofKeyCache) add(header string, k *proofKey) { p.c.Add(header, k) }

// len reports the number of cached headers, for tests.
func (p *proofKeyCache) len() int { return p.c.Len() }
