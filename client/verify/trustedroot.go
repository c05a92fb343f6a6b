package verify

import (
	"errors"
	"fmt"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
)

// ErrIdentityPolicy: a certificate of no trusted agent key (keyless
// output) was verified without an expected identity (Options.Identities).
var ErrIdentityPolicy = fmt.Errorf("%w: certificate identity policy required", ErrVerify)

// CertIdentity is one acceptable certificate identity (cosign's
// --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp]):
// the subject alternative name and the OIDC issuer, each exact or as a
// regular expression.
type CertIdentity = attest.CertIdentity

// TrustedRoot is trust material from a sigstore trusted root
// (trusted_root.json: Fulcio's CA, the timestamp authorities, Rekor v2
// logs, the CAs of keyful keys with chains) and the agent's keys beside it
// (trusted_keys.json: status and validity window), as `signerctl trust
// export` writes them. It implements Trust: bundles of every shape the
// agent makes verify with it (attest.VerifyTrusted, sigstore-go):
//
//   - keyful, bare key: the bundle's key hint must name a trusted key that
//     is not revoked and whose window holds the signature's time;
//   - keyful, key with a certificate chain: the same, and the leaf must
//     chain to the key's CA in the trusted root;
//   - keyless: the Fulcio leaf must chain to a CA in the trusted root and
//     match one of Options.Identities; its RFC 3161 timestamp, verified
//     against the trusted root's timestamp authorities, dates the
//     signature, so it verifies after the certificate expired;
//   - transparency log entries, when present, are verified against the
//     trusted root's logs (Options.RequireTlog refuses bundles without
//     one).
//
// A signature without a trusted timestamp is dated by Options.At
// (default: now). Envelopes carry no certificates: Envelope verifies
// their signatures with the trusted keys only (keyless signatures in an
// envelope need their bundles).
type TrustedRoot struct {
	m    *trustroot.Material
	keys *KeySet // the trusted keys, for envelopes; nil without any
}

// LoadTrustedRoot reads a trusted root and its trusted keys: keysPath, or
// when it is "" trusted_keys.json beside rootPath if it exists (keyless
// and logged output need no agent keys).
func LoadTrustedRoot(rootPath, keysPath string) (*TrustedRoot, error) {
	m, err := trustroot.Load(rootPath, keysPath)
	if err != nil {
		return nil, err
	}
	return newTrustedRoot(m)
}

func newTrustedRoot(m *trustroot.Material) (*TrustedRoot, error) {
	t := &TrustedRoot{m: m}
	if len(m.Keys) > 0 {
		ks := make([]Key, 0, len(m.Keys))
		for _, k := range m.Keys {
			key := Key{ID: k.ID, Public: k.PublicKey, Hint: k.Hint, Status: k.Status}
			if !k.NotBefore.IsZero() {
				nb := k.NotBefore
				key.NotBefore = &nb
			}
			if !k.NotAfter.IsZero() {
				na := k.NotAfter
				key.NotAfter = &na
			}
			ks = append(ks, key)
		}
		s, err := NewKeySet(ks...)
		if err != nil {
			return nil, fmt.Errorf("trusted keys: %w", err)
		}
		t.keys = s
	}
	return t, nil
}

func (t *TrustedRoot) keysFor(hint string) []*Key {
	if t.keys == nil {
		return nil
	}
	return t.keys.keysFor(hint)
}

// bundle verifies with attest.VerifyTrusted.
func (t *TrustedRoot) bundle(bundleJSON []byte, exp attest.Expect, opts Options, at time.Time) (*Result, error) {
	pol := attest.TrustPolicy{Identities: opts.Identities, RequireTlog: opts.RequireTlog, Now: func() time.Time { return at }}
	v, err := attest.VerifyTrusted(bundleJSON, t.m, pol, exp)
	if err != nil {
		switch {
		case errors.Is(err, attest.ErrKeyRevoked):
			return nil, fmt.Errorf("%w (%w)", ErrKeyRevoked, err)
		case errors.Is(err, attest.ErrKeyNotValid):
			return nil, fmt.Errorf("%w (%w)", ErrKeyNotValid, err)
		case errors.Is(err, attest.ErrUnknownKey):
			return nil, fmt.Errorf("%w (%w)", ErrUnknownKey, err)
		case errors.Is(err, attest.ErrIdentityPolicy):
			return nil, fmt.Errorf("%w (%w)", ErrIdentityPolicy, err)
		}
		return nil, err
	}
	res := &Result{
		PredicateType: v.PredicateType, Subjects: v.Subjects, PayloadDigest: v.PayloadDigest,
		Mode: v.Mode, CertificateIdentity: v.CertificateIdentity, CertificateIssuer: v.CertificateIssuer,
		SignedAt: v.SignedAt, Logged: v.Logged,
	}
	if v.KeyID != "" && len(v.KeyHints) > 0 {
		// A public key revoked under any id is refused under every id.
		cands := t.keysFor(v.KeyHints[0])
		for _, k := range cands {
			if k.Status == proto.KeyStatusRevoked {
				return nil, fmt.Errorf("%w: key %q is revoked", ErrKeyRevoked, k.ID)
			}
		}
		for _, k := range cands {
			if k.ID == v.KeyID {
				res.Keys = append(res.Keys, *k)
				break
			}
		}
	}
	return res, nil
}

// Mode values of Result.Mode.
const (
	ModeKeyful  = proto.ModeKeyful
	ModeKeyless = proto.ModeKeyless
)
