package release

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"
)

// maxBundle caps one sigstore bundle read from a registry or the offline
// directory. Release signatures are a few KiB; attestation bundles with a
// large predicate may be bigger, and are refused past this size.
const maxBundle = 8 << 20

// evalBundle verifies one sigstore bundle against the trusted keys for the
// artifact digest. manifest, when known, is the image manifest itself (its
// SHA-256 is digest); message signatures made with Ed25519 keys can only be
// verified against it.
func (c *Checker) evalBundle(where string, data []byte, digest string, manifest []byte) finding {
	f := finding{where: where, kind: "sigstore bundle"}
	if len(data) > maxBundle {
		f.problem = fmt.Sprintf("is %d bytes, over the %d-byte limit", len(data), maxBundle)
		return f
	}
	var b bundle.Bundle
	if err := b.UnmarshalJSON(data); err != nil {
		f.problem = "is malformed: " + truncate(err.Error(), 200)
		return f
	}
	pk := b.VerificationMaterial.GetPublicKey()
	if pk == nil {
		f.problem = "is not signed with a public key (keyless bundles are not release signatures)"
		return f
	}
	want, _ := hex.DecodeString(digest[len("sha256:"):])
	artifact := func() verify.ArtifactPolicyOption {
		if manifest != nil {
			return verify.WithArtifact(bytes.NewReader(manifest))
		}
		return verify.WithArtifactDigest("sha256", want)
	}
	hint, err := c.verifyBundleWith(&b, pk.GetHint(), artifact)
	if err == nil {
		f.verified = true
		f.keyHint = hint
		return f
	}
	f.problem = "does not verify with any trusted release key for this digest: " + truncate(err.Error(), 200)
	// Not verified for this digest. If it names another digest and verifies
	// for that one with a trusted key, the result is ambiguous.
	other, isDSSE := bundleClaim(&b)
	if other == "" || other == digest {
		return f
	}
	claim := func() verify.ArtifactPolicyOption {
		if isDSSE {
			return verify.WithoutArtifactUnsafe()
		}
		d, _ := hex.DecodeString(other[len("sha256:"):])
		return verify.WithArtifactDigest("sha256", d)
	}
	if hint, err := c.verifyBundleWith(&b, pk.GetHint(), claim); err == nil {
		f.problem = ""
		f.keyHint = hint
		f.conflict = fmt.Sprintf("is signed by trusted key %s for %s, not for the requested digest", hint, other)
	}
	return f
}

// verifyBundleWith tries every trusted key (the one named by hint first) and
// returns the hint of the first that verifies b under the artifact policy.
func (c *Checker) verifyBundleWith(b *bundle.Bundle, hint string, artifact func() verify.ArtifactPolicyOption) (string, error) {
	var last error
	for _, k := range orderByHint(c.keys, hint) {
		for _, v := range k.verifiers {
			tm := root.NewTrustedPublicKeyMaterial(fixedKey(v))
			sv, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
			if err != nil {
				return "", fmt.Errorf("sigstore verifier: %w", err)
			}
			if _, err := sv.Verify(b, verify.NewPolicy(artifact(), verify.WithKey())); err != nil {
				last = err
				continue
			}
			return k.hint, nil
		}
	}
	if last == nil {
		last = fmt.Errorf("no trusted keys")
	}
	return "", last
}

// fixedKey answers every key hint with one verifier: release keys are
// matched by trying them, not by trusting the bundle's hint.
func fixedKey(v signature.Verifier) func(string) (root.TimeConstrainedVerifier, error) {
	k := root.NewExpiringKey(v, time.Time{}, time.Time{})
	return func(string) (root.TimeConstrainedVerifier, error) { return k, nil }
}

// bundleClaim returns the sha256 digest a bundle claims to sign ("" when it
// names none) and whether it is a DSSE envelope. For DSSE it is the first
// subject's sha256 digest; for a message signature, its message digest.
func bundleClaim(b *bundle.Bundle) (string, bool) {
	sc, err := b.SignatureContent()
	if err != nil {
		return "", false
	}
	if env := sc.EnvelopeContent(); env != nil {
		raw := env.RawEnvelope()
		if raw == nil {
			return "", true
		}
		pl, err := raw.DecodeB64Payload()
		if err != nil {
			return "", true
		}
		var st struct {
			Subject []struct {
				Digest map[string]string `json:"digest"`
			} `json:"subject"`
		}
		if json.Unmarshal(pl, &st) != nil {
			return "", true
		}
		for _, s := range st.Subject {
			if d := s.Digest["sha256"]; ValidateDigest("sha256:"+d) == nil {
				return "sha256:" + d, true
			}
		}
		return "", true
	}
	if m := sc.MessageSignatureContent(); m != nil && m.DigestAlgorithm() == "SHA2_256" && len(m.Digest()) == 32 {
		return "sha256:" + hex.EncodeToString(m.Digest()), false
	}
	return "", false
}
