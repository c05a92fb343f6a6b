//go:build cgo

package pkcs11

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"

	p11 "github.com/miekg/pkcs11"

	"github.com/stellaops/signer-agent/internal/keys"
)

// maxChain bounds the certificate chain read from a token.
const maxChain = 8

// CertificateChain reads the key's X.509 chain from the token, DER, leaf
// first: the certificate object with the private key's CKA_ID (or, when
// it has none, its CKA_LABEL), which must certify the key, then each
// issuer found among the token's certificate objects by CKA_SUBJECT,
// until a self-signed certificate or one whose issuer is not on the
// token. A key without a certificate object returns nil and no error.
func (k *Key) CertificateChain(ctx context.Context) ([][]byte, error) {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return nil, keys.ErrClosed
	}
	k.busy.Add(1)
	k.mu.Unlock()
	defer k.busy.Done()
	select {
	case k.sessions <- struct{}{}:
	case <-k.done:
		return nil, keys.ErrClosed
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: waiting for a free session: %w", k.desc, ctx.Err())
	}
	defer func() { <-k.sessions }()
	c, s, err := k.borrow(ctx)
	if err != nil {
		return nil, err
	}
	var chain [][]byte
	err = k.mod.with(c.gen, func(p *p11.Ctx) error {
		var err error
		chain, err = readChain(p, s, c.priv)
		return err
	})
	k.giveBack(c, s, err)
	if err != nil {
		if isLost(err) {
			return nil, fmt.Errorf("%w: %s: read certificates: %w", keys.ErrBackendUnavailable, k.desc, err)
		}
		return nil, fmt.Errorf("%s: read certificates: %w", k.desc, err)
	}
	if len(chain) > 0 {
		leaf, err := x509.ParseCertificate(chain[0])
		if err != nil {
			return nil, fmt.Errorf("%s: leaf certificate: %w", k.desc, err)
		}
		if !k.pub.Equal(leaf.PublicKey) {
			return nil, fmt.Errorf("%s: the certificate object does not certify the key", k.desc)
		}
	}
	return chain, nil
}

func readChain(p *p11.Ctx, s p11.SessionHandle, priv p11.ObjectHandle) ([][]byte, error) {
	attrs, err := p.GetAttributeValue(s, priv, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_ID, nil), p11.NewAttribute(p11.CKA_LABEL, nil),
	})
	if err != nil {
		return nil, fmt.Errorf("read private key attributes: %w", err)
	}
	match := p11.NewAttribute(p11.CKA_ID, attrs[0].Value)
	if len(attrs[0].Value) == 0 {
		match = p11.NewAttribute(p11.CKA_LABEL, attrs[1].Value)
	}
	certClass := []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_CERTIFICATE),
		p11.NewAttribute(p11.CKA_CERTIFICATE_TYPE, p11.CKC_X_509),
	}
	handles, err := findObjects(p, s, append(certClass, match), 2)
	if err != nil {
		return nil, err
	}
	switch len(handles) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, errors.New("several certificates match the private key's CKA_ID or label")
	}
	value := func(h p11.ObjectHandle) ([]byte, error) {
		a, err := p.GetAttributeValue(s, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)})
		if err != nil {
			return nil, fmt.Errorf("read certificate: %w", err)
		}
		return a[0].Value, nil
	}
	der, err := value(handles[0])
	if err != nil {
		return nil, err
	}
	chain := [][]byte{der}
	for len(chain) < maxChain {
		cur, err := x509.ParseCertificate(chain[len(chain)-1])
		if err != nil {
			return nil, fmt.Errorf("parse certificate: %w", err)
		}
		if bytes.Equal(cur.RawIssuer, cur.RawSubject) {
			break // self-signed: the root
		}
		hs, err := findObjects(p, s, append(certClass, p11.NewAttribute(p11.CKA_SUBJECT, cur.RawIssuer)), 4)
		if err != nil {
			return nil, err
		}
		var next []byte
		for _, h := range hs {
			d, err := value(h)
			if err != nil {
				return nil, err
			}
			if issuer, err := x509.ParseCertificate(d); err == nil && cur.CheckSignatureFrom(issuer) == nil {
				next = d
				break
			}
		}
		if next == nil {
			break // the issuer is not on the token
		}
		chain = append(chain, next)
	}
	return chain, nil
}
