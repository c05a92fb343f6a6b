package attest

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// Timestamper obtains an RFC 3161 timestamp over a signature (the
// keyless backend's TSA client). notBefore and notAfter bound the
// certificate the signature was made under (zero: unbounded); the
// timestamp must fall inside. It returns the DER TimeStampResp.
type Timestamper interface {
	Timestamp(ctx context.Context, sig []byte, notBefore, notAfter time.Time) ([]byte, error)
}

// certified reports whether s needs a certificate bundle: it has a chain
// or its signatures are timestamped.
func (s Signer) certified() bool { return len(s.Chain) > 0 || s.Timestamper != nil }

// leaf parses s's leaf certificate and checks that it certifies s's key.
func (s Signer) leaf() (*x509.Certificate, error) {
	if len(s.Chain) == 0 {
		return nil, nil
	}
	leaf, err := x509.ParseCertificate(s.Chain[0])
	if err != nil {
		return nil, fmt.Errorf("key %q: parse leaf certificate: %w", s.ID, err)
	}
	if err := cryptoutils.EqualKeys(leaf.PublicKey, s.Key.Public()); err != nil {
		return nil, fmt.Errorf("key %q: the leaf certificate does not certify the key", s.ID)
	}
	return leaf, nil
}

// CertificateIdentity returns a certificate's subject alternative name
// (URI, e-mail or other name, as sigstore verifiers match it) and its
// Fulcio OIDC issuer extension; either may be empty for a certificate not
// issued by Fulcio.
func CertificateIdentity(leaf *x509.Certificate) (san, issuer string) {
	if sum, err := certificate.SummarizeCertificate(leaf); err == nil {
		return sum.SubjectAlternativeName, sum.Issuer
	}
	if ext, err := certificate.ParseExtensions(leaf.Extensions); err == nil {
		issuer = ext.Issuer
	}
	return "", issuer
}

// DERChain is the DER form of certificates, in order: an attest.Signer's
// Chain from a parsed chain (config.ReadCertificateChain).
func DERChain(certs []*x509.Certificate) [][]byte {
	out := make([][]byte, 0, len(certs))
	for _, c := range certs {
		out = append(out, c.Raw)
	}
	return out
}

// ChainPEM encodes DER certificates as PEM strings, in order.
func ChainPEM(chain [][]byte) []string {
	out := make([]string, 0, len(chain))
	for _, der := range chain {
		out = append(out, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})))
	}
	return out
}

// certBundle builds the sigstore bundle v0.3 of one signature made with a
// certified key: verificationMaterial.certificate is the leaf (bundle
// v0.3 carries the leaf only; verifiers take intermediates and the root
// from their trusted root) and, with a Timestamper, one RFC 3161 timestamp
// in timestampVerificationData. It returns RFC 8785 canonical JSON.
func certBundle(ctx context.Context, s Signer, leaf *x509.Certificate, payload, sig []byte) (json.RawMessage, error) {
	vm := &protobundle.VerificationMaterial{}
	if leaf != nil {
		vm.Content = &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: leaf.Raw}}
	} else {
		hint, err := keys.PublicKeyHint(s.Key.Public())
		if err != nil {
			return nil, err
		}
		vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: &protocommon.PublicKeyIdentifier{Hint: hint}}
	}
	if s.Timestamper != nil {
		var nb, na time.Time
		if leaf != nil {
			nb, na = leaf.NotBefore, leaf.NotAfter
		}
		ts, err := s.Timestamper.Timestamp(ctx, sig, nb, na)
		if err != nil {
			return nil, &SigningError{KeyID: s.ID, Err: err}
		}
		vm.TimestampVerificationData = &protobundle.TimestampVerificationData{
			Rfc3161Timestamps: []*protocommon.RFC3161SignedTimestamp{{SignedTimestamp: ts}},
		}
	}
	b := &protobundle.Bundle{
		MediaType:            proto.MediaTypeBundle,
		VerificationMaterial: vm,
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload: payload, PayloadType: proto.PayloadTypeInToto,
			Signatures: []*protodsse.Signature{{Sig: sig}},
		}},
	}
	raw, err := protojson.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	return Canonicalize(raw)
}

// identityFor is the signingIdentity entry of one signature.
func identityFor(s Signer, leaf *x509.Certificate, alg, hint string, bundle []byte) proto.SigningIdentity {
	mode := s.Mode
	if mode == "" {
		mode = proto.ModeKeyful
	}
	id := proto.SigningIdentity{
		Mode:             mode,
		KeyID:            s.ID,
		KeySource:        s.Source,
		Algorithm:        alg,
		PublicKeyHint:    hint,
		CertificateChain: ChainPEM(s.Chain),
		BundleHash:       Digest(bundle),
	}
	if leaf != nil {
		id.CertificateIdentity, id.CertificateIssuer = CertificateIdentity(leaf)
	}
	return id
}

// errNoCertificate: a keyless signer must come with its certificate.
var errNoCertificate = errors.New("keyless signer without a certificate")

// checkSigner refuses a signer whose certificate material does not fit.
func checkSigner(s Signer) (*x509.Certificate, error) {
	if s.Mode == proto.ModeKeyless && (len(s.Chain) == 0 || s.Timestamper == nil) {
		return nil, fmt.Errorf("key %q: %w and timestamp authority", s.ID, errNoCertificate)
	}
	return s.leaf()
}
