package verify

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
)

// ErrVerify is wrapped by every verification failure (and by the more
// precise sentinels below).
var ErrVerify = attest.ErrVerify

// Sentinels for failures a caller may branch on; each wraps ErrVerify.
var (
	// ErrKeyRevoked: the signature verifies only with a revoked key.
	ErrKeyRevoked = fmt.Errorf("%w: key revoked", ErrVerify)
	// ErrKeyNotValid: the signature verifies only with a key outside its
	// validity window (or of an unknown status) at Options.At.
	ErrKeyNotValid = fmt.Errorf("%w: key not valid", ErrVerify)
	// ErrUnknownKey: no trusted key has the bundle's key hint.
	ErrUnknownKey = fmt.Errorf("%w: no trusted key", ErrVerify)
)

// Options say what a verified statement must be.
type Options struct {
	// PredicateType, when set, must be the statement's predicate type.
	PredicateType string
	// ArtifactSHA256 is the lowercase hex SHA-256 of an artifact that must
	// be one of the statement's subjects. Exactly one of ArtifactSHA256
	// and AnyArtifact is required.
	ArtifactSHA256 string
	// AnyArtifact skips the subject check.
	AnyArtifact bool
	// At is the time at which key validity windows are checked; zero
	// means now. With a TrustedRoot it dates only signatures that carry
	// no trusted timestamp.
	At time.Time
	// Identities are the acceptable certificate identities of keyless
	// output (TrustedRoot only): a keyless bundle must match one, and is
	// refused (ErrIdentityPolicy) when none is given. A keyful key's
	// certificate is checked against them when they are given.
	Identities []CertIdentity
	// RequireTlog refuses a bundle without a verified transparency log
	// entry (TrustedRoot only).
	RequireTlog bool
}

// Result is what a successful verification established.
type Result struct {
	PredicateType string
	Subjects      []proto.Subject
	PayloadDigest string
	// Keys are the trusted keys whose signatures verified.
	Keys []Key
	// With a TrustedRoot: Mode is ModeKeyless for a certificate of no
	// trusted key, else ModeKeyful; CertificateIdentity and
	// CertificateIssuer are the leaf's, if any; SignedAt are the
	// verified times of the signature (RFC 3161 timestamps, log
	// integration times); Logged reports a verified transparency log
	// entry.
	Mode                string
	CertificateIdentity string
	CertificateIssuer   string
	SignedAt            []time.Time
	Logged              bool
}

// Trust is a source of trusted keys: a KeySet (public keys with their
// status and window) or a TrustedRoot (a sigstore trusted root with the
// agent's keys: keyless certificates, timestamps, log entries too).
type Trust interface {
	// keysFor returns the keys with the given hint ("" for all keys).
	keysFor(hint string) []*Key
	// bundle verifies a bundle whose statement must satisfy exp, dating
	// untimestamped signatures at.
	bundle(bundleJSON []byte, exp attest.Expect, opts Options, at time.Time) (*Result, error)
}

func (s *KeySet) keysFor(hint string) []*Key {
	if hint == "" {
		return s.keys
	}
	return s.byHint[hint]
}

// refusal says why k may not verify a signature at t ("" when it may). A
// public key revoked under any id in all is refused under every id.
func refusal(all []*Key, k *Key, t time.Time) (why string, revoked bool) {
	for _, x := range all {
		if x.Hint == k.Hint && x.Status == proto.KeyStatusRevoked {
			return fmt.Sprintf("key %q is revoked", k.ID), true
		}
	}
	if r := k.usableAt(t); r != "" {
		return fmt.Sprintf("key %q is %s", k.ID, r), false
	}
	return "", false
}

// partition splits keys into those usable at t and the reason for the
// first refused one.
func partition(ks []*Key, t time.Time) (usable []*Key, why string, revoked bool) {
	for _, k := range ks {
		r, rev := refusal(ks, k, t)
		if r == "" {
			usable = append(usable, k)
			continue
		}
		if why == "" {
			why, revoked = r, rev
		}
	}
	return usable, why, revoked
}

func pubs(ks []*Key) []crypto.PublicKey {
	out := make([]crypto.PublicKey, len(ks))
	for i, k := range ks {
		out[i] = k.Public
	}
	return out
}

func (o Options) expect() (attest.Expect, time.Time, error) {
	if (o.ArtifactSHA256 == "") == !o.AnyArtifact {
		return attest.Expect{}, time.Time{}, fmt.Errorf("%w: give exactly one of an artifact digest and AnyArtifact", ErrVerify)
	}
	at := o.At
	if at.IsZero() {
		at = time.Now()
	}
	return attest.Expect{PredicateType: o.PredicateType, ArtifactSHA256: o.ArtifactSHA256, AnyArtifact: o.AnyArtifact}, at, nil
}

// bundleHint is the key hint of a bundle's verification material.
type bundleHint struct {
	VerificationMaterial struct {
		PublicKey *struct {
			Hint string `json:"hint"`
		} `json:"publicKey"`
	} `json:"verificationMaterial"`
}

// Bundle verifies a sigstore bundle (one of a sign response's bundles)
// offline: with a KeySet, its key hint must name a trusted key usable at
// Options.At, the DSSE signature must verify with it (sigstore-go), and
// the statement must satisfy opts; with a TrustedRoot, see TrustedRoot.
func Bundle(t Trust, bundleJSON []byte, opts Options) (*Result, error) {
	exp, at, err := opts.expect()
	if err != nil {
		return nil, err
	}
	return t.bundle(bundleJSON, exp, opts, at)
}

// bundle verifies a bundle with a public key hint against the set.
func (s *KeySet) bundle(bundleJSON []byte, exp attest.Expect, opts Options, at time.Time) (*Result, error) {
	if len(opts.Identities) > 0 || opts.RequireTlog {
		// A key set cannot check either: refuse rather than ignore.
		return nil, fmt.Errorf("%w: certificate identities and transparency log entries need a trusted root", ErrVerify)
	}
	t := s
	var bh bundleHint
	if err := json.Unmarshal(bundleJSON, &bh); err != nil {
		return nil, fmt.Errorf("%w: parse bundle: %s", ErrVerify, proto.DescribeJSONError(err))
	}
	pk := bh.VerificationMaterial.PublicKey
	if pk == nil || pk.Hint == "" {
		return nil, fmt.Errorf("%w: the bundle names no public key hint (certificate bundles need a trusted root)", ErrVerify)
	}
	cands := t.keysFor(pk.Hint)
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w: hint %s", ErrUnknownKey, pk.Hint)
	}
	usable, why, revoked := partition(cands, at)
	if len(usable) == 0 {
		if revoked {
			return nil, fmt.Errorf("%w: %s", ErrKeyRevoked, why)
		}
		return nil, fmt.Errorf("%w: %s at %s", ErrKeyNotValid, why, at.UTC().Format(time.RFC3339))
	}
	v, err := attest.VerifyBundle(bundleJSON, pubs(usable[:1]), exp)
	if err != nil {
		return nil, err
	}
	return &Result{PredicateType: v.PredicateType, Subjects: v.Subjects, PayloadDigest: v.PayloadDigest, Keys: []Key{*usable[0]}}, nil
}

// Envelope verifies a standalone DSSE envelope offline: every signature
// must verify with a trusted key usable at Options.At, and the statement
// must satisfy opts. When a signature verifies only with a key that is
// revoked or outside its window, the error says so (ErrKeyRevoked,
// ErrKeyNotValid).
func Envelope(ctx context.Context, t Trust, envJSON []byte, opts Options) (*Result, error) {
	exp, at, err := opts.expect()
	if err != nil {
		return nil, err
	}
	all := t.keysFor("")
	usable, _, _ := partition(all, at)
	var v *attest.Verified
	if len(usable) > 0 {
		v, err = attest.VerifyEnvelope(ctx, envJSON, pubs(usable), exp)
	} else {
		err = fmt.Errorf("%w: no usable key", ErrVerify)
	}
	if err != nil {
		// Would a key we refused have verified it? Then say which.
		if len(usable) < len(all) && (len(usable) == 0 || strings.Contains(err.Error(), "does not verify with any given key")) {
			for _, k := range all {
				if contains(usable, k) {
					continue
				}
				trial := append(usable[:len(usable):len(usable)], k)
				if _, err2 := attest.VerifyEnvelope(ctx, envJSON, pubs(trial), exp); err2 != nil {
					continue
				}
				why, revoked := refusal(all, k, at)
				if revoked {
					return nil, fmt.Errorf("%w: %s", ErrKeyRevoked, why)
				}
				return nil, fmt.Errorf("%w: %s at %s", ErrKeyNotValid, why, at.UTC().Format(time.RFC3339))
			}
		}
		return nil, err
	}
	res := &Result{PredicateType: v.PredicateType, Subjects: v.Subjects, PayloadDigest: v.PayloadDigest}
	for _, h := range v.KeyHints {
		for _, k := range usable {
			if k.Hint == h {
				res.Keys = append(res.Keys, *k)
				break
			}
		}
	}
	return res, nil
}

func contains(ks []*Key, k *Key) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}
