package pkcs11

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/stellaops/signer-agent/internal/keys"
)

// Named curves the backend signs with, by their CKA_EC_PARAMS OID.
var (
	oidP256 = asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}
	oidP384 = asn1.ObjectIdentifier{1, 3, 132, 0, 34}
)

// curveParams returns the DER CKA_EC_PARAMS (a namedCurve OID) for curve.
func curveParams(curve elliptic.Curve) ([]byte, error) {
	var oid asn1.ObjectIdentifier
	switch curve {
	case elliptic.P256():
		oid = oidP256
	case elliptic.P384():
		oid = oidP384
	default:
		name := "nil"
		if curve != nil {
			name = curve.Params().Name
		}
		return nil, fmt.Errorf("%w: curve %s (want P-256 or P-384)", keys.ErrUnsupportedKey, name)
	}
	return asn1.Marshal(oid)
}

// parseCurveParams reads DER CKA_EC_PARAMS: a namedCurve OID.
func parseCurveParams(der []byte) (elliptic.Curve, error) {
	var oid asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(der, &oid)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: EC parameters are not a named curve", keys.ErrUnsupportedKey)
	}
	switch {
	case oid.Equal(oidP256):
		return elliptic.P256(), nil
	case oid.Equal(oidP384):
		return elliptic.P384(), nil
	}
	return nil, fmt.Errorf("%w: EC curve %s (want P-256 or P-384)", keys.ErrUnsupportedKey, oid)
}

// parseECPoint reads CKA_EC_POINT: a DER OCTET STRING holding the
// uncompressed point, as PKCS#11 specifies, or (some modules) the bare
// point.
func parseECPoint(curve elliptic.Curve, v []byte) (*ecdsa.PublicKey, error) {
	size := (curve.Params().BitSize + 7) / 8
	point := v
	if len(v) != 1+2*size {
		var octets []byte
		rest, err := asn1.Unmarshal(v, &octets)
		if err != nil || len(rest) != 0 {
			return nil, errors.New("EC point is neither DER nor an uncompressed point")
		}
		point = octets
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
	if err != nil {
		return nil, fmt.Errorf("EC point: %w", err)
	}
	return pub, nil
}

// rawToDER turns a CKM_ECDSA signature (r||s, each the curve's byte
// size) into the ASN.1 DER SEQUENCE{r, s} callers expect.
func rawToDER(raw []byte, curve elliptic.Curve) ([]byte, error) {
	size := (curve.Params().BitSize + 7) / 8
	if len(raw) != 2*size {
		return nil, fmt.Errorf("token returned a %d-byte ECDSA signature, want %d", len(raw), 2*size)
	}
	r := new(big.Int).SetBytes(raw[:size])
	s := new(big.Int).SetBytes(raw[size:])
	if r.Sign() == 0 || s.Sign() == 0 {
		return nil, errors.New("token returned an ECDSA signature with a zero r or s")
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, s})
}

// checkSignerOpts refuses a request that does not fit the key's algorithm:
// ECDSA keys here sign SHA-256 digests only (keys.Algorithm).
func checkSignerOpts(alg string, want crypto.Hash, digest []byte, opts crypto.SignerOpts) error {
	if opts == nil {
		return fmt.Errorf("sign with %s: no signer options", alg)
	}
	if got := opts.HashFunc(); got != want {
		name := "none"
		if got != 0 {
			name = got.String()
		}
		return fmt.Errorf("sign with %s: digest hash %s does not match the key's algorithm", alg, name)
	}
	if len(digest) != want.Size() {
		return fmt.Errorf("sign with %s: digest is %d bytes, want %d", alg, len(digest), want.Size())
	}
	return nil
}
