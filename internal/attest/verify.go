package attest

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// ErrVerify is wrapped by every verification failure.
var ErrVerify = errors.New("verification failed")

// Verified describes what a successful verification established.
type Verified struct {
	PredicateType string
	Subjects      []proto.Subject
	PayloadDigest string
	// KeyHints are the publicKey hints of the keys whose signatures verified.
	KeyHints []string
}

// Expect constrains a verification. Zero fields are not checked, but a
// verification needs at least one artifact digest unless AnyArtifact is set.
type Expect struct {
	PredicateType string
	// ArtifactSHA256 is the hex SHA-256 of the artifact that must be one of
	// the statement's subjects.
	ArtifactSHA256 string
	AnyArtifact    bool
}

// ArtifactDigest hashes an artifact for Expect.ArtifactSHA256.
func ArtifactDigest(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", fmt.Errorf("hash artifact: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func verifierFor(pub crypto.PublicKey) (signature.Verifier, error) {
	_, h, err := keys.Algorithm(pub)
	if err != nil {
		return nil, err
	}
	if h == 0 {
		return signature.LoadED25519Verifier(pub.(ed25519.PublicKey))
	}
	return signature.LoadVerifier(pub, h)
}

// VerifyBundle verifies a sigstore bundle offline with sigstore-go against
// the given public keys (matched by hint), and checks the statement.
func VerifyBundle(bundleJSON []byte, pubs []crypto.PublicKey, exp Expect) (*Verified, error) {
	var b bundle.Bundle
	if err := b.UnmarshalJSON(bundleJSON); err != nil {
		return nil, fmt.Errorf("%w: parse bundle: %v", ErrVerify, err)
	}
	byHint := map[string]*root.ExpiringKey{}
	for _, pub := range pubs {
		v, err := verifierFor(pub)
		if err != nil {
			return nil, err
		}
		hint, err := keys.PublicKeyHint(pub)
		if err != nil {
			return nil, err
		}
		byHint[hint] = root.NewExpiringKey(v, time.Time{}, time.Time{})
	}
	tm := root.NewTrustedPublicKeyMaterialFromMapping(byHint)
	v, err := verify.NewVerifier(tm, verify.WithNoObserverTimestamps())
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	art, err := artifactOption(exp)
	if err != nil {
		return nil, err
	}
	if _, err := v.Verify(&b, verify.NewPolicy(art, verify.WithKey())); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVerify, err)
	}
	out, err := bundleStatement(&b, exp)
	if err != nil {
		return nil, err
	}
	if pk := b.VerificationMaterial.GetPublicKey(); pk != nil {
		out.KeyHints = []string{pk.GetHint()}
	}
	return out, nil
}

// VerifyEnvelope verifies a DSSE envelope (the agent's standalone envelope
// JSON) offline: every signature must verify with one of pubs (matched by
// trying each), at least one must, and the statement must satisfy exp.
func VerifyEnvelope(ctx context.Context, envJSON []byte, pubs []crypto.PublicKey, exp Expect) (*Verified, error) {
	var env proto.Envelope
	if err := json.Unmarshal(envJSON, &env); err != nil {
		return nil, fmt.Errorf("%w: parse envelope: %v", ErrVerify, err)
	}
	if env.PayloadType != proto.PayloadTypeInToto {
		return nil, fmt.Errorf("%w: payloadType %q", ErrVerify, env.PayloadType)
	}
	if len(env.Signatures) == 0 {
		return nil, fmt.Errorf("%w: envelope has no signatures", ErrVerify)
	}
	pae := dsse.PAE(env.PayloadType, env.Payload)
	var hints []string
	for i, s := range env.Signatures {
		ok := false
		for _, pub := range pubs {
			v, err := verifierFor(pub)
			if err != nil {
				return nil, err
			}
			if v.VerifySignature(bytes.NewReader(s.Sig), bytes.NewReader(pae)) == nil {
				h, _ := keys.PublicKeyHint(pub)
				hints = append(hints, h)
				ok = true
				break
			}
		}
		if !ok {
			return nil, fmt.Errorf("%w: signature %d (keyid %q) does not verify with any given key", ErrVerify, i, s.KeyID)
		}
	}
	out, err := checkStatement(env.Payload, exp)
	if err != nil {
		return nil, err
	}
	out.KeyHints = hints
	_ = ctx
	return out, nil
}

// bundleStatement checks the statement a verified bundle's envelope
// carries against exp.
func bundleStatement(b *bundle.Bundle, exp Expect) (*Verified, error) {
	env, err := b.Envelope()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrVerify, err)
	}
	payload, err := env.RawEnvelope().DecodeB64Payload()
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrVerify, err)
	}
	return checkStatement(payload, exp)
}

func checkStatement(payload []byte, exp Expect) (*Verified, error) {
	var st statement
	if err := json.Unmarshal(payload, &st); err != nil {
		return nil, fmt.Errorf("%w: statement: %v", ErrVerify, err)
	}
	if st.Type != proto.StatementType {
		return nil, fmt.Errorf("%w: statement _type %q", ErrVerify, st.Type)
	}
	if exp.PredicateType != "" && st.PredicateType != exp.PredicateType {
		return nil, fmt.Errorf("%w: predicateType %q, want %q", ErrVerify, st.PredicateType, exp.PredicateType)
	}
	if exp.ArtifactSHA256 != "" {
		found := false
		for _, s := range st.Subject {
			if s.Digest["sha256"] == exp.ArtifactSHA256 {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: artifact is not a subject of the statement", ErrVerify)
		}
	} else if !exp.AnyArtifact {
		return nil, fmt.Errorf("%w: no artifact to check the subjects against", ErrVerify)
	}
	return &Verified{PredicateType: st.PredicateType, Subjects: st.Subject, PayloadDigest: Digest(payload)}, nil
}
