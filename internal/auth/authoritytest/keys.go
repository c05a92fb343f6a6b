package authoritytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
)

// GenerateKey makes a key for alg: ES256 (P-256), ES384 (P-384), EdDSA
// (Ed25519), RS256 or PS256 (RSA 2048).
func GenerateKey(alg string) (crypto.Signer, error) {
	switch alg {
	case "ES256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ES384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "EdDSA":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "RS256", "PS256":
		return rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("authoritytest: no key for alg %q", alg)
	}
}

// NewDPoPKey returns a fresh P-256 key for DPoP proofs; it panics on
// failure (tests only).
func NewDPoPKey() *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return k
}

// Thumbprint is the RFC 7638 SHA-256 thumbprint (base64url) of a public
// key: the value of cnf.jkt.
func Thumbprint(pub crypto.PublicKey) string {
	j := jose.JSONWebKey{Key: pub}
	tp, err := j.Thumbprint(crypto.SHA256)
	if err != nil {
		panic(err)
	}
	return enc.EncodeToString(tp)
}

// PublicJWK is pub as a JWK map (with alg and kid when not empty).
func PublicJWK(pub crypto.PublicKey, alg, kid string) map[string]any {
	return jwkMap(jose.JSONWebKey{Key: pub, Algorithm: alg, KeyID: kid})
}

// PrivateJWK is key as a JWK map including its private part, for negative
// tests.
func PrivateJWK(key crypto.Signer) map[string]any {
	return jwkMap(jose.JSONWebKey{Key: key})
}

func jwkMap(j jose.JSONWebKey) map[string]any {
	b, err := j.MarshalJSON()
	if err != nil {
		panic(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		panic(err)
	}
	return m
}

// PublicKeyPEM is the PKIX PEM of pub, the classic "HMAC secret" of an
// algorithm-confusion attack.
func PublicKeyPEM(pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// TokenHash is base64url(SHA-256(token)), the DPoP ath.
func TokenHash(token string) string {
	h := sha256.Sum256([]byte(token))
	return enc.EncodeToString(h[:])
}
