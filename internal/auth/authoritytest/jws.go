package authoritytest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"math/big"
	"strings"
)

var enc = base64.RawURLEncoding

// SignJWS builds a JWS compact serialisation from a header and claims,
// without validating either. The signing method follows hdr["alg"]:
// "none" gives an empty signature; HS256/384/512 an HMAC with secret;
// anything else a signature by key according to its type (ECDSA with the
// curve's hash as r||s, Ed25519, RSA PKCS#1 v1.5 or PSS when alg starts with
// "PS"), whatever the header claims — which is how algorithm-confusion
// variants are made.
func SignJWS(hdr, claims map[string]any, key crypto.Signer, secret []byte) (string, error) {
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return SignRaw(hdr, cb, key, secret)
}

// SignRaw is SignJWS with the payload given as bytes, for payloads a map
// cannot express (duplicate members, non-JSON).
func SignRaw(hdr map[string]any, payload []byte, key crypto.Signer, secret []byte) (string, error) {
	hb, err := json.Marshal(hdr)
	if err != nil {
		return "", err
	}
	input := enc.EncodeToString(hb) + "." + enc.EncodeToString(payload)
	alg, _ := hdr["alg"].(string)
	var sig []byte
	switch {
	case alg == "none":
	case strings.HasPrefix(alg, "HS"):
		var h func() hash.Hash
		switch alg {
		case "HS384":
			h = sha512.New384
		case "HS512":
			h = sha512.New
		default:
			h = sha256.New
		}
		m := hmac.New(h, secret)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	default:
		if sig, err = signBy(key, alg, []byte(input)); err != nil {
			return "", err
		}
	}
	return input + "." + enc.EncodeToString(sig), nil
}

func signBy(key crypto.Signer, alg string, input []byte) ([]byte, error) {
	switch k := key.Public().(type) {
	case *ecdsa.PublicKey:
		var h crypto.Hash
		var size int
		switch k.Curve {
		case elliptic.P256():
			h, size = crypto.SHA256, 32
		case elliptic.P384():
			h, size = crypto.SHA384, 48
		case elliptic.P521():
			h, size = crypto.SHA512, 66
		default:
			return nil, fmt.Errorf("unsupported curve")
		}
		d := h.New()
		d.Write(input)
		der, err := key.Sign(rand.Reader, d.Sum(nil), h)
		if err != nil {
			return nil, err
		}
		var rs struct{ R, S *big.Int }
		if _, err := asn1.Unmarshal(der, &rs); err != nil {
			return nil, err
		}
		out := make([]byte, 2*size)
		rs.R.FillBytes(out[:size])
		rs.S.FillBytes(out[size:])
		return out, nil
	case ed25519.PublicKey:
		return key.Sign(rand.Reader, input, crypto.Hash(0))
	case *rsa.PublicKey:
		d := sha256.Sum256(input)
		if strings.HasPrefix(alg, "PS") {
			return key.Sign(rand.Reader, d[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256})
		}
		return key.Sign(rand.Reader, d[:], crypto.SHA256)
	default:
		return nil, fmt.Errorf("unsupported key type %T", k)
	}
}
