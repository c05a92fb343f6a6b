package attest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/internal/trustroot"
	"github.com/stellaops/signer-agent/proto"
)

// Refusals of VerifyTrusted that callers may tell apart; each also wraps
// ErrVerify.
var (
	ErrKeyRevoked     = errors.New("key is revoked")
	ErrKeyNotValid    = errors.New("signature time outside the key's validity window")
	ErrUnknownKey     = errors.New("key is not in the trusted keys")
	ErrIdentityPolicy = errors.New("certificate identity policy required")
)

// CertIdentity is one acceptable certificate identity: the subject
// alternative name and the OIDC issuer, each exact or as a regular
// expression (cosign's --certificate-identity[-regexp] and
// --certificate-oidc-issuer[-regexp]).
type CertIdentity struct {
	Identity, IdentityRegexp string
	Issuer, IssuerRegexp     string
}

// TrustPolicy constrains VerifyTrusted.
type TrustPolicy struct {
	// Identities: a certificate that does not certify one of the trusted
	// agent keys (a keyless Fulcio certificate) must match one of them.
	// Such bundles are refused when Identities is empty. For a keyful
	// key's certificate they are checked when given.
	Identities []CertIdentity
	// RequireTlog refuses bundles without a verified transparency log
	// entry.
	RequireTlog bool
	// Now is the verifier's clock (nil: time.Now): it places a bundle
	// without a trusted timestamp in time, for key validity windows and
	// certificate lifetimes.
	Now func() time.Time
}

// TrustedVerified is what VerifyTrusted established.
type TrustedVerified struct {
	Verified
	// Mode is proto.ModeKeyless for a certificate of no agent key,
	// proto.ModeKeyful otherwise; KeyID names the agent key.
	Mode  string
	KeyID string
	// CertificateIdentity and CertificateIssuer of the leaf, if any.
	CertificateIdentity string
	CertificateIssuer   string
	// SignedAt are the verified times of the signature (RFC 3161
	// timestamps, log integration times); empty when only the verifier's
	// clock placed it.
	SignedAt []time.Time
	// Logged reports a verified transparency log entry.
	Logged bool
}

// VerifyTrusted verifies a sigstore bundle offline against trust
// material (a trusted_root.json and the agent's trusted keys) with
// sigstore-go:
//
//   - a bundle with a public key hint must name a trusted agent key; a
//     bundle with a certificate either certifies a trusted agent key (a
//     keyful key with a chain: it must chain to the key's CA in the
//     trusted root) or is keyless (it must chain to a CA in the trusted
//     root and match pol.Identities);
//   - a revoked key is refused, whatever the bundle's time;
//   - RFC 3161 timestamps in the bundle are verified against the trusted
//     root's timestamp authorities and then date the signature: key
//     windows and certificate chains are checked at that time, so a
//     keyless bundle verifies after its certificate expired. Without
//     one, the signature is dated by pol.Now: an expired certificate or a
//     key outside its window is refused;
//   - transparency log entries, when present, are verified (inclusion
//     proof and checkpoint against the trusted root's log keys);
//   - the statement is checked against exp as VerifyBundle does.
func VerifyTrusted(bundleJSON []byte, m *trustroot.Material, pol TrustPolicy, exp Expect) (*TrustedVerified, error) {
	if m == nil || m.Root == nil {
		return nil, fmt.Errorf("%w: no trust material", ErrVerify)
	}
	now := time.Now
	if pol.Now != nil {
		now = pol.Now
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return nil, fmt.Errorf("%w: parse bundle: %v", ErrVerify, err)
	}
	vc, err := b.VerificationContent()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVerify, err)
	}
	out := &TrustedVerified{Mode: proto.ModeKeyful}
	var key *trustroot.Key
	leaf := vc.Certificate()
	switch {
	case leaf != nil:
		hint, err := keys.PublicKeyHint(leaf.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("%w: leaf certificate key: %v", ErrVerify, err)
		}
		key = m.Key(hint)
		if key == nil {
			out.Mode = proto.ModeKeyless
		}
		out.CertificateIdentity, out.CertificateIssuer = CertificateIdentity(leaf)
	case vc.PublicKey() != nil:
		hint := b.VerificationMaterial.GetPublicKey().GetHint()
		if key = m.Key(hint); key == nil {
			return nil, fmt.Errorf("%w: %w (hint %s)", ErrVerify, ErrUnknownKey, hint)
		}
	default:
		return nil, fmt.Errorf("%w: bundle has neither a public key nor a certificate", ErrVerify)
	}
	if key != nil {
		out.KeyID = key.ID
		if key.Revoked() {
			return nil, fmt.Errorf("%w: key %q: %w", ErrVerify, key.ID, ErrKeyRevoked)
		}
	}

	tm, err := trustedMaterial(m)
	if err != nil {
		return nil, err
	}
	hasTS := len(b.VerificationMaterial.GetTimestampVerificationData().GetRfc3161Timestamps()) > 0
	hasTlog := len(b.VerificationMaterial.GetTlogEntries()) > 0
	if pol.RequireTlog && !hasTlog {
		return nil, fmt.Errorf("%w: no transparency log entry", ErrVerify)
	}
	var vopts []verify.VerifierOption
	if hasTS {
		vopts = append(vopts, verify.WithSignedTimestamps(1))
	}
	if hasTlog {
		vopts = append(vopts, verify.WithTransparencyLog(1))
		if hasIntegratedTime(&b) {
			vopts = append(vopts, verify.WithIntegratedTimestamps(1))
		}
	}
	if !hasTS && !hasIntegratedTime(&b) {
		if leaf != nil {
			// Dated by the verifier's clock: sigstore-go checks the chain
			// at the real time; the leaf is also checked at pol.Now below.
			vopts = append(vopts, verify.WithCurrentTime())
		} else {
			vopts = append(vopts, verify.WithNoObserverTimestamps())
		}
	}
	v, err := verify.NewVerifier(tm, vopts...)
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	art, err := artifactOption(exp)
	if err != nil {
		return nil, err
	}
	var popts []verify.PolicyOption
	switch {
	case leaf == nil:
		popts = append(popts, verify.WithKey())
	case len(pol.Identities) > 0:
		for _, id := range pol.Identities {
			ci, err := verify.NewShortCertificateIdentity(id.Issuer, id.IssuerRegexp, id.Identity, id.IdentityRegexp)
			if err != nil {
				return nil, fmt.Errorf("%w: certificate identity: %v", ErrVerify, err)
			}
			popts = append(popts, verify.WithCertificateIdentity(ci))
		}
	case key != nil:
		// A keyful key's own certificate: the trusted key pins it.
		popts = append(popts, verify.WithoutIdentitiesUnsafe())
	default:
		return nil, fmt.Errorf("%w: %w for a keyless certificate (give the expected identity and issuer)", ErrVerify, ErrIdentityPolicy)
	}
	res, err := v.Verify(&b, verify.NewPolicy(art, popts...))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVerify, err)
	}
	for _, ts := range res.VerifiedTimestamps {
		if ts.Type != "CurrentTime" {
			out.SignedAt = append(out.SignedAt, ts.Timestamp)
		}
	}
	out.Logged = hasTlog
	times := out.SignedAt
	if len(times) == 0 {
		times = []time.Time{now()}
		if leaf != nil && (times[0].Before(leaf.NotBefore) || times[0].After(leaf.NotAfter)) {
			return nil, fmt.Errorf("%w: certificate not valid at %s and no trusted timestamp dates the signature", ErrVerify, times[0].UTC().Format(time.RFC3339))
		}
	}
	if key != nil {
		for _, t := range times {
			if !key.ValidAt(t) {
				return nil, fmt.Errorf("%w: key %q at %s: %w", ErrVerify, key.ID, t.UTC().Format(time.RFC3339), ErrKeyNotValid)
			}
		}
	}
	st, err := bundleStatement(&b, exp)
	if err != nil {
		return nil, err
	}
	out.Verified = *st
	if key != nil {
		out.KeyHints = []string{key.Hint}
	}
	return out, nil
}

// trustedMaterial is the trusted root plus the non-revoked agent keys,
// each with its validity window.
func trustedMaterial(m *trustroot.Material) (root.TrustedMaterial, error) {
	byHint := map[string]*root.ExpiringKey{}
	for _, k := range m.Keys {
		if k.Revoked() {
			continue
		}
		v, err := verifierFor(k.PublicKey)
		if err != nil {
			return nil, err
		}
		byHint[k.Hint] = root.NewExpiringKey(v, k.NotBefore, k.NotAfter)
	}
	return root.TrustedMaterialCollection{m.Root, root.NewTrustedPublicKeyMaterialFromMapping(byHint)}, nil
}

// hasIntegratedTime reports a tlog entry with an integration time (Rekor
// v1; Rekor v2 entries have none and need a signed timestamp).
func hasIntegratedTime(b *bundle.Bundle) bool {
	for _, e := range b.VerificationMaterial.GetTlogEntries() {
		if e.GetIntegratedTime() > 0 {
			return true
		}
	}
	return false
}

// artifactOption turns exp into sigstore-go's artifact policy.
func artifactOption(exp Expect) (verify.ArtifactPolicyOption, error) {
	switch {
	case exp.ArtifactSHA256 != "":
		d, err := hex.DecodeString(exp.ArtifactSHA256)
		if err != nil {
			return nil, fmt.Errorf("%w: artifact digest is not hex", ErrVerify)
		}
		return verify.WithArtifactDigest("sha256", d), nil
	case exp.AnyArtifact:
		return verify.WithoutArtifactUnsafe(), nil
	}
	return nil, fmt.Errorf("%w: no artifact to check the subjects against", ErrVerify)
}
