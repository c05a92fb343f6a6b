package attest

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// Signer is one key taking part in a signature: the agent's key id, the
// backend it lives in, and the signer itself. A key with an X.509 chain
// (a Fulcio certificate for keyless, or a keyful key's certificate) gets a
// bundle carrying its leaf certificate instead of a public key hint, and
// its signingIdentity carries the chain; with a Timestamper its bundle
// also carries an RFC 3161 timestamp over the signature (see
// certbundle.go).
type Signer struct {
	ID     string
	Source string
	Key    crypto.Signer
	// Mode is proto.ModeKeyless for a Fulcio-certified ephemeral key, which
	// needs Chain and Timestamper; empty means keyful.
	Mode string
	// Chain is the key's certificate chain, DER, leaf first; nil for a
	// bare public key.
	Chain [][]byte
	// Timestamper, when set, timestamps the signature.
	Timestamper Timestamper
	// Hint and Algorithm, when set, are the key's public key hint
	// (keys.PublicKeyHint) and algorithm (keys.Algorithm), computed once
	// when the key was opened instead of at every signature.
	Hint, Algorithm string
}

// Result is the signed output of one request.
type Result struct {
	Envelope        proto.Envelope
	Bundles         []json.RawMessage // canonical JSON, one per signature
	SigningIdentity []proto.SigningIdentity
	PayloadDigest   string
	BundleHash      string
}

// SigningError wraps a failure of one key's backend, naming the key so the
// agent can fall back or report signing_backend_unavailable.
type SigningError struct {
	KeyID string
	Err   error
}

func (e *SigningError) Error() string { return fmt.Sprintf("sign with key %q: %v", e.KeyID, e.Err) }
func (e *SigningError) Unwrap() error { return e.Err }

type dsseSigner struct {
	s Signer
}

func (d dsseSigner) Sign(ctx context.Context, data []byte) ([]byte, error) {
	sig, err := keys.SignMessage(ctx, d.s.Key, data)
	if err != nil {
		return nil, &SigningError{KeyID: d.s.ID, Err: err}
	}
	return sig, nil
}

func (d dsseSigner) KeyID() (string, error) { return d.s.ID, nil }

// Sign signs canonical statement bytes with every signer: one DSSE envelope
// carrying all signatures (all or nothing) and one sigstore bundle per
// signature.
func Sign(ctx context.Context, payload []byte, signers []Signer) (*Result, error) {
	if len(signers) == 0 {
		return nil, errors.New("sign: no keys")
	}
	ds := make([]dsse.Signer, len(signers))
	leaves := make([]*x509.Certificate, len(signers))
	for i, s := range signers {
		ds[i] = dsseSigner{s}
		leaf, err := checkSigner(s)
		if err != nil {
			return nil, fmt.Errorf("sign: %w", err)
		}
		leaves[i] = leaf
	}
	es, err := dsse.NewEnvelopeSigner(ds...)
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	env, err := es.SignPayload(ctx, proto.PayloadTypeInToto, payload)
	if err != nil {
		return nil, err
	}
	if len(env.Signatures) != len(signers) {
		return nil, fmt.Errorf("sign: got %d signatures for %d keys", len(env.Signatures), len(signers))
	}
	res := &Result{
		Envelope:      proto.Envelope{PayloadType: env.PayloadType, Payload: payload},
		PayloadDigest: Digest(payload),
	}
	for i, s := range signers {
		sig, err := decodeB64(env.Signatures[i].Sig)
		if err != nil {
			return nil, fmt.Errorf("sign: decode signature: %w", err)
		}
		alg, hint := s.Algorithm, s.Hint
		if alg == "" {
			if alg, _, err = keys.Algorithm(s.Key.Public()); err != nil {
				return nil, err
			}
		}
		if hint == "" {
			if hint, err = keys.PublicKeyHint(s.Key.Public()); err != nil {
				return nil, err
			}
		}
		var b json.RawMessage
		if s.certified() {
			b, err = certBundle(ctx, s, leaves[i], payload, sig)
		} else {
			b, err = BundleJSON(payload, sig, hint)
		}
		if err != nil {
			return nil, err
		}
		res.Envelope.Signatures = append(res.Envelope.Signatures, proto.Signature{KeyID: s.ID, Sig: sig})
		res.Bundles = append(res.Bundles, b)
		res.SigningIdentity = append(res.SigningIdentity, identityFor(s, leaves[i], alg, hint, b))
	}
	res.BundleHash = Digest(canonicalArray(res.Bundles))
	return res, nil
}

// BundleJSON builds a sigstore bundle v0.3 for one DSSE signature made with a
// public key (no certificate, no tlog entries) and returns its RFC 8785
// canonical JSON. The signature's keyid inside the bundle is empty (omitted):
// cosign v3 rejects other values.
//
// The bytes are written directly: every value is a constant or standard
// base64, so no escaping applies and the member order below is the RFC 8785
// order. TestBundleJSONMatchesProtobufSpecs checks the output byte for byte
// against the protobuf-specs types marshalled with protojson and
// canonicalised with jcs, which is what this replaces on the hot path (it
// cost a tenth of each request).
func BundleJSON(payload, sig []byte, hint string) (json.RawMessage, error) {
	if len(payload) == 0 || len(sig) == 0 || hint == "" {
		// proto3 JSON omits empty fields; the agent never emits them.
		return nil, fmt.Errorf("encode bundle: empty payload, signature or hint")
	}
	if !isStdBase64(hint) {
		return nil, fmt.Errorf("encode bundle: public key hint is not standard base64")
	}
	enc := base64.StdEncoding
	n := len(bundlePrefix) + enc.EncodedLen(len(payload)) + len(bundleMid1) + enc.EncodedLen(len(sig)) + len(bundleMid2) + len(hint) + len(bundleSuffix)
	out := make([]byte, 0, n)
	out = append(out, bundlePrefix...)
	out = enc.AppendEncode(out, payload)
	out = append(out, bundleMid1...)
	out = enc.AppendEncode(out, sig)
	out = append(out, bundleMid2...)
	out = append(out, hint...)
	out = append(out, bundleSuffix...)
	return out, nil
}

const (
	bundlePrefix = `{"dsseEnvelope":{"payload":"`
	bundleMid1   = `","payloadType":"` + proto.PayloadTypeInToto + `","signatures":[{"sig":"`
	bundleMid2   = `"}]},"mediaType":"` + proto.MediaTypeBundle + `","verificationMaterial":{"publicKey":{"hint":"`
	bundleSuffix = `"}}}`
)

func isStdBase64(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

// canonicalArray is the RFC 8785 form of a JSON array whose elements are
// already canonical: the elements in order, comma-separated, no whitespace.
// (Re-canonicalising the whole array would give the same bytes at the cost
// of parsing every bundle again.)
func canonicalArray(elems []json.RawMessage) []byte {
	n := 2
	for _, e := range elems {
		n += len(e) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, '[')
	for i, e := range elems {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e...)
	}
	return append(out, ']')
}
