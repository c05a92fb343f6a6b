//go:build cgo

package pkcs11

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	p11 "github.com/miekg/pkcs11"

	"github.com/stellaops/signer-agent/internal/keys"
)

// findToken returns the slot of the one initialised token matching u's
// token selectors.
func findToken(p *p11.Ctx, u *URI) (uint, error) {
	slots, err := p.GetSlotList(true)
	if err != nil {
		return 0, fmt.Errorf("list slots: %w", err)
	}
	var matches []uint
	for _, slot := range slots {
		if u.SlotID != nil && slot != *u.SlotID {
			continue
		}
		ti, err := p.GetTokenInfo(slot)
		if err != nil || !tokenMatches(u, ti) {
			continue // a token that cannot answer (removed, broken) is not the one
		}
		matches = append(matches, slot)
	}
	switch len(matches) {
	case 0:
		return 0, fmt.Errorf("%w: no initialised token matches %s", ErrTokenNotFound, tokenSelectors(u))
	case 1:
		return matches[0], nil
	}
	return 0, fmt.Errorf("%d tokens match %s: add serial= to choose one", len(matches), tokenSelectors(u))
}

func trimField(s string) string { return strings.TrimRight(s, " \x00") }

func tokenMatches(u *URI, ti p11.TokenInfo) bool {
	return ti.Flags&p11.CKF_TOKEN_INITIALIZED != 0 &&
		(u.Token == "" || trimField(ti.Label) == u.Token) &&
		(u.Manufacturer == "" || trimField(ti.ManufacturerID) == u.Manufacturer) &&
		(u.Serial == "" || trimField(ti.SerialNumber) == u.Serial) &&
		(u.Model == "" || trimField(ti.Model) == u.Model)
}

func tokenSelectors(u *URI) string {
	var parts []string
	for _, a := range []struct{ name, v string }{
		{"token", u.Token}, {"manufacturer", u.Manufacturer}, {"serial", u.Serial}, {"model", u.Model},
	} {
		if a.v != "" {
			parts = append(parts, fmt.Sprintf("%s=%q", a.name, a.v))
		}
	}
	if u.SlotID != nil {
		parts = append(parts, fmt.Sprintf("slot-id=%d", *u.SlotID))
	}
	return strings.Join(parts, " ")
}

// findObjects returns up to limit handles of objects matching tmpl.
func findObjects(p *p11.Ctx, s p11.SessionHandle, tmpl []*p11.Attribute, limit int) ([]p11.ObjectHandle, error) {
	if err := p.FindObjectsInit(s, tmpl); err != nil {
		return nil, fmt.Errorf("find objects: %w", err)
	}
	handles, _, err := p.FindObjects(s, limit)
	if ferr := p.FindObjectsFinal(s); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, fmt.Errorf("find objects: %w", err)
	}
	return handles, nil
}

// findKey finds the one private key matching u's object selectors, checks
// that it is an ECDSA key on a supported curve that may sign, and reads
// its public key.
func findKey(p *p11.Ctx, s p11.SessionHandle, u *URI) (p11.ObjectHandle, *ecdsa.PublicKey, error) {
	tmpl := []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)}
	if u.Object != "" {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_LABEL, u.Object))
	}
	if len(u.ID) > 0 {
		tmpl = append(tmpl, p11.NewAttribute(p11.CKA_ID, u.ID))
	}
	handles, err := findObjects(p, s, tmpl, 2)
	if err != nil {
		return 0, nil, err
	}
	switch len(handles) {
	case 0:
		return 0, nil, fmt.Errorf("%w: no private key matches on the token (is the PIN given?)", ErrKeyNotFound)
	case 1:
	default:
		return 0, nil, errors.New("several private keys match: add id= (or object=) to choose one")
	}
	priv := handles[0]
	attrs, err := p.GetAttributeValue(s, priv, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_KEY_TYPE, nil),
		p11.NewAttribute(p11.CKA_SIGN, nil),
		p11.NewAttribute(p11.CKA_ID, nil),
		p11.NewAttribute(p11.CKA_LABEL, nil),
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read private key attributes: %w", err)
	}
	keyType, canSign, id, label := attrs[0].Value, attrs[1].Value, attrs[2].Value, attrs[3].Value
	if !bytes.Equal(keyType, ulong(p11.CKK_EC)) {
		return 0, nil, fmt.Errorf("%w: the private key is not an EC key (only ECDSA P-256 and P-384 are supported)", keys.ErrUnsupportedKey)
	}
	if !bytes.Equal(canSign, []byte{1}) {
		return 0, nil, errors.New("the private key may not sign (CKA_SIGN is false)")
	}
	attrs, err = p.GetAttributeValue(s, priv, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_PARAMS, nil)})
	if err != nil {
		return 0, nil, fmt.Errorf("read private key EC parameters: %w", err)
	}
	curve, err := parseCurveParams(attrs[0].Value)
	if err != nil {
		return 0, nil, err
	}
	pub, err := findPublic(p, s, id, label, curve)
	if err != nil {
		return 0, nil, err
	}
	return priv, pub, nil
}

// ulong encodes a CK_ULONG attribute value the way the module returns it.
func ulong(v uint) []byte { return p11.NewAttribute(0, v).Value }

// findPublic reads the public key of the private key with CKA_ID id (or,
// if it has none, CKA_LABEL label): from the public key object, or else
// from an X.509 certificate.
func findPublic(p *p11.Ctx, s p11.SessionHandle, id, label []byte, curve elliptic.Curve) (*ecdsa.PublicKey, error) {
	match := p11.NewAttribute(p11.CKA_ID, id)
	if len(id) == 0 {
		if len(label) == 0 {
			return nil, fmt.Errorf("%w: the private key has neither CKA_ID nor CKA_LABEL to find its public key by", ErrKeyNotFound)
		}
		match = p11.NewAttribute(p11.CKA_LABEL, label)
	}
	handles, err := findObjects(p, s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PUBLIC_KEY),
		p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
		match,
	}, 2)
	if err != nil {
		return nil, err
	}
	if len(handles) > 1 {
		return nil, errors.New("several public keys match the private key's CKA_ID or label")
	}
	if len(handles) == 1 {
		attrs, err := p.GetAttributeValue(s, handles[0], []*p11.Attribute{
			p11.NewAttribute(p11.CKA_EC_PARAMS, nil),
			p11.NewAttribute(p11.CKA_EC_POINT, nil),
		})
		if err != nil {
			return nil, fmt.Errorf("read public key: %w", err)
		}
		c, err := parseCurveParams(attrs[0].Value)
		if err != nil {
			return nil, err
		}
		if c != curve {
			return nil, errors.New("the public key object is on another curve than the private key")
		}
		return parseECPoint(curve, attrs[1].Value)
	}
	handles, err = findObjects(p, s, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_CERTIFICATE),
		p11.NewAttribute(p11.CKA_CERTIFICATE_TYPE, p11.CKC_X_509),
		match,
	}, 2)
	if err != nil {
		return nil, err
	}
	switch len(handles) {
	case 0:
		return nil, fmt.Errorf("%w: no public key object or certificate for the private key", ErrKeyNotFound)
	case 1:
	default:
		return nil, errors.New("several certificates match the private key's CKA_ID or label")
	}
	attrs, err := p.GetAttributeValue(s, handles[0], []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(attrs[0].Value)
	if err != nil {
		return nil, fmt.Errorf("parse certificate: %w", err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != curve {
		return nil, errors.New("the certificate's public key does not fit the private key")
	}
	return pub, nil
}
