//go:build cgo

package pkcs11

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"
)

// idSize is the length of the random CKA_ID GenerateKey gives a key pair.
const idSize = 8

// GenerateKey generates an ECDSA key pair (curve elliptic.P256() or
// elliptic.P384()) on the token labelled tokenLabel, with CKA_LABEL
// objectLabel on both halves, and returns the key's URI and public key.
//
// moduleURI says how to reach and unlock the token: a pkcs11: URI with
// module-path and pin-source (or pin-value), for example
//
//	pkcs11:?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/signer-agent/hsm.pin
//
// It may also give serial= or slot-id= to tell tokens apart, token= (equal
// to tokenLabel), id= (the CKA_ID to use; by default a random 8-byte id)
// and max-sessions=; it must not name an object. The returned URI is
// moduleURI with token, object and id set: pass it to Open. It keeps a
// pin-value if moduleURI had one (print it with care).
//
// The private key is a token object, private, sensitive and not
// extractable. GenerateKey refuses an objectLabel or id already in use on
// the token, so the URI names exactly one key.
func (o *Opener) GenerateKey(ctx context.Context, moduleURI, tokenLabel, objectLabel string, curve elliptic.Curve) (string, crypto.PublicKey, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, err
	}
	u, err := ParseURI(moduleURI)
	if err != nil {
		return "", nil, err
	}
	switch {
	case u.Object != "" || u.Type != "":
		return "", nil, fmt.Errorf("%w: the module URI must not name an object: objectLabel does", ErrInvalidURI)
	case tokenLabel == "":
		return "", nil, errors.New("generate PKCS#11 key: no token label")
	case u.Token != "" && u.Token != tokenLabel:
		return "", nil, fmt.Errorf("%w: the module URI names token %q, not %q", ErrInvalidURI, u.Token, tokenLabel)
	case objectLabel == "":
		return "", nil, errors.New("generate PKCS#11 key: no object label")
	}
	params, err := curveParams(curve)
	if err != nil {
		return "", nil, err
	}
	u.Token, u.Object = tokenLabel, objectLabel
	if len(u.ID) == 0 {
		u.ID = make([]byte, idSize)
		if _, err := rand.Read(u.ID); err != nil {
			return "", nil, fmt.Errorf("generate PKCS#11 key id: %w", err)
		}
	}
	// The labels must survive the URI: check them as ParseURI would.
	if _, err := ParseURI(u.Encode()); err != nil {
		return "", nil, err
	}
	if err := checkKeyURI(u); err != nil {
		return "", nil, err
	}
	desc := "generate pkcs11 key " + u.label()
	pin, ok, err := o.pin(u)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", desc, err)
	}
	if !ok {
		return "", nil, fmt.Errorf("%s: %w: pin-source (or pin-value) is required", desc, ErrInvalidURI)
	}
	m, err := o.acquire(u.ModulePath)
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", desc, err)
	}
	defer o.release(m)
	gen, err := m.ensure()
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", desc, err)
	}
	var pub *ecdsa.PublicKey
	err = m.with(gen, func(p *p11.Ctx) error {
		slot, err := findToken(p, u)
		if err != nil {
			return err
		}
		s, err := p.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			return fmt.Errorf("open session: %w", err)
		}
		defer func() { _ = p.CloseSession(s) }()
		if err := login(p, s, pin); err != nil {
			return err
		}
		for _, a := range []*p11.Attribute{
			p11.NewAttribute(p11.CKA_LABEL, objectLabel),
			p11.NewAttribute(p11.CKA_ID, u.ID),
		} {
			found, err := findObjects(p, s, []*p11.Attribute{a}, 1)
			if err != nil {
				return err
			}
			if len(found) > 0 {
				what := "object label"
				if a.Type == p11.CKA_ID {
					what = "id"
				}
				return fmt.Errorf("the %s is already in use on the token", what)
			}
		}
		common := func(class uint) []*p11.Attribute {
			return []*p11.Attribute{
				p11.NewAttribute(p11.CKA_CLASS, class),
				p11.NewAttribute(p11.CKA_KEY_TYPE, p11.CKK_EC),
				p11.NewAttribute(p11.CKA_TOKEN, true),
				p11.NewAttribute(p11.CKA_LABEL, objectLabel),
				p11.NewAttribute(p11.CKA_ID, u.ID),
			}
		}
		pubTmpl := append(common(p11.CKO_PUBLIC_KEY),
			p11.NewAttribute(p11.CKA_PRIVATE, false),
			p11.NewAttribute(p11.CKA_VERIFY, true),
			p11.NewAttribute(p11.CKA_EC_PARAMS, params),
		)
		privTmpl := append(common(p11.CKO_PRIVATE_KEY),
			p11.NewAttribute(p11.CKA_PRIVATE, true),
			p11.NewAttribute(p11.CKA_SENSITIVE, true),
			p11.NewAttribute(p11.CKA_EXTRACTABLE, false),
			p11.NewAttribute(p11.CKA_SIGN, true),
			p11.NewAttribute(p11.CKA_DERIVE, false),
		)
		pubH, _, err := p.GenerateKeyPair(s,
			[]*p11.Mechanism{p11.NewMechanism(p11.CKM_EC_KEY_PAIR_GEN, nil)}, pubTmpl, privTmpl)
		if err != nil {
			return fmt.Errorf("generate key pair: %w", err)
		}
		attrs, err := p.GetAttributeValue(s, pubH, []*p11.Attribute{p11.NewAttribute(p11.CKA_EC_POINT, nil)})
		if err != nil {
			return fmt.Errorf("read the new public key: %w", err)
		}
		pub, err = parseECPoint(curve, attrs[0].Value)
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("%s: %w", desc, err)
	}
	return u.Encode(), pub, nil
}

// ListTokens lists the tokens in the module's slots, free uninitialised
// ones included (see TokenInfo.Initialized).
func (o *Opener) ListTokens(modulePath string) ([]TokenInfo, error) {
	m, err := o.acquire(modulePath)
	if err != nil {
		return nil, err
	}
	defer o.release(m)
	gen, err := m.ensure()
	if err != nil {
		return nil, err
	}
	var out []TokenInfo
	err = m.with(gen, func(p *p11.Ctx) error {
		slots, err := p.GetSlotList(true)
		if err != nil {
			return fmt.Errorf("list slots: %w", err)
		}
		for _, slot := range slots {
			ti, err := p.GetTokenInfo(slot)
			if err != nil {
				return fmt.Errorf("slot %d: token info: %w", slot, err)
			}
			t := TokenInfo{
				SlotID:        slot,
				Label:         trimField(ti.Label),
				Manufacturer:  trimField(ti.ManufacturerID),
				Model:         trimField(ti.Model),
				Serial:        trimField(ti.SerialNumber),
				Initialized:   ti.Flags&p11.CKF_TOKEN_INITIALIZED != 0,
				LoginRequired: ti.Flags&p11.CKF_LOGIN_REQUIRED != 0,
			}
			if t.Initialized {
				t.URI = (&URI{Token: t.Label, Serial: t.Serial, ModulePath: modulePath}).Encode()
			}
			out = append(out, t)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("PKCS#11 module %s: %w", modulePath, err)
	}
	return out, nil
}
