package tpm

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
)

// Key blobs are "TSS2 PRIVATE KEY" PEM files, the format of tpm2-tss-engine
// and the OpenSSL tpm2 provider ("ASN.1 Specification for TPM 2.0 Key
// Files"):
//
//	TPMKey ::= SEQUENCE {
//	    type        OBJECT IDENTIFIER,      -- id-loadablekey 2.23.133.10.1.3
//	    emptyAuth   [0] EXPLICIT BOOLEAN OPTIONAL,
//	    policy      [1] EXPLICIT SEQUENCE OF TPMPolicy OPTIONAL,
//	    secret      [2] EXPLICIT OCTET STRING OPTIONAL,
//	    authPolicy  [3] EXPLICIT SEQUENCE OF TPMAuthPolicy OPTIONAL,
//	    description [4] EXPLICIT UTF8String OPTIONAL,
//	    rsaParent   [5] EXPLICIT BOOLEAN OPTIONAL,
//	    parent      INTEGER,                -- TPM_RH_OWNER or a persistent handle
//	    pubkey      OCTET STRING,           -- TPM2B_PUBLIC
//	    privkey     OCTET STRING            -- TPM2B_PRIVATE
//	}
//
// Only loadable keys without policies are supported.
const pemKeyType = "TSS2 PRIVATE KEY"

var oidLoadableKey = asn1.ObjectIdentifier{2, 23, 133, 10, 1, 3}

// keyFile is a parsed key blob.
type keyFile struct {
	emptyAuth bool
	parent    tpm2.TPMHandle
	public    tpm2.TPM2BPublic
	private   tpm2.TPM2BPrivate
	pub       *ecdsa.PublicKey
}

// tssKeyOut is the ASN.1 of a key file, as written: emptyAuth only when
// true (DER leaves out a BOOLEAN at its default).
type tssKeyOut struct {
	Type    asn1.ObjectIdentifier
	Parent  int64
	PubKey  []byte
	PrivKey []byte
}

type tssKeyOutEmptyAuth struct {
	Type      asn1.ObjectIdentifier
	EmptyAuth bool `asn1:"explicit,tag:0"`
	Parent    int64
	PubKey    []byte
	PrivKey   []byte
}

// parseKeyFile parses a key blob. The key must be an ECDSA P-256 signing
// key that signs SHA-256 digests.
func parseKeyFile(data []byte) (*keyFile, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("no %q PEM block", pemKeyType)
	}
	if block.Type != pemKeyType {
		return nil, fmt.Errorf("PEM block %q, want %q", block.Type, pemKeyType)
	}
	if len(block.Headers) != 0 {
		return nil, errors.New("PEM headers are not allowed")
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("data after the PEM block")
	}
	k, err := parseTSSKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("malformed TSS2 key: %w", err)
	}
	pt, err := k.public.Contents()
	if err != nil {
		return nil, fmt.Errorf("TSS2 key public area: %w", err)
	}
	if k.pub, err = signingPublicKey(pt); err != nil {
		return nil, err
	}
	return k, nil
}

// parseTSSKey decodes the TPMKey SEQUENCE. It is walked element by element
// rather than unmarshalled into a struct because tpm2-tss-engine and the
// OpenSSL tpm2 provider write emptyAuth TRUE as the BER byte 0x01, which
// encoding/asn1 refuses as not DER.
func parseTSSKey(der []byte) (*keyFile, error) {
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &seq); err != nil {
		return nil, err
	} else if len(rest) != 0 {
		return nil, errors.New("trailing data")
	}
	if seq.Class != asn1.ClassUniversal || seq.Tag != asn1.TagSequence || !seq.IsCompound {
		return nil, errors.New("not a SEQUENCE")
	}
	body := seq.Bytes
	next := func(what string) (asn1.RawValue, error) {
		var v asn1.RawValue
		if len(body) == 0 {
			return v, fmt.Errorf("no %s", what)
		}
		rest, err := asn1.Unmarshal(body, &v)
		if err != nil {
			return v, fmt.Errorf("%s: %w", what, err)
		}
		body = rest
		return v, nil
	}
	v, err := next("type")
	if err != nil {
		return nil, err
	}
	var typ asn1.ObjectIdentifier
	if err := unmarshalAll(v.FullBytes, &typ); err != nil {
		return nil, fmt.Errorf("type: %w", err)
	}
	if !typ.Equal(oidLoadableKey) {
		return nil, fmt.Errorf("type %s is not a loadable key (%s)", typ, oidLoadableKey)
	}
	k := &keyFile{}
	lastTag := -1
	for {
		if v, err = next("parent"); err != nil {
			return nil, err
		}
		if v.Class != asn1.ClassContextSpecific {
			break
		}
		if !v.IsCompound || v.Tag <= lastTag || v.Tag > 5 {
			return nil, fmt.Errorf("unexpected optional field [%d]", v.Tag)
		}
		lastTag = v.Tag
		switch v.Tag {
		case 0:
			if k.emptyAuth, err = berBoolean(v.Bytes); err != nil {
				return nil, fmt.Errorf("emptyAuth: %w", err)
			}
		case 1, 2, 3:
			return nil, errors.New("keys with policies or secrets are not supported")
		case 4: // description: informational
		case 5:
			rsaParent, err := berBoolean(v.Bytes)
			if err != nil {
				return nil, fmt.Errorf("rsaParent: %w", err)
			}
			if rsaParent {
				return nil, errors.New("keys under an RSA primary are not supported")
			}
		}
	}
	var parent int64
	if err := unmarshalAll(v.FullBytes, &parent); err != nil {
		return nil, fmt.Errorf("parent: %w", err)
	}
	if parent == 0 { // older tpm2-tss-engine files
		parent = int64(tpm2.TPMRHOwner)
	}
	k.parent = tpm2.TPMHandle(parent)
	if int64(k.parent) != parent || (k.parent != tpm2.TPMRHOwner && !isPersistent(k.parent)) {
		return nil, fmt.Errorf("parent %#x is neither the owner hierarchy (0x40000001) nor a persistent handle", parent)
	}
	var pubBytes, privBytes []byte
	for _, f := range []struct {
		name string
		dst  *[]byte
	}{{"pubkey", &pubBytes}, {"privkey", &privBytes}} {
		if v, err = next(f.name); err != nil {
			return nil, err
		}
		if err := unmarshalAll(v.FullBytes, f.dst); err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if len(body) != 0 {
		return nil, errors.New("unexpected fields after privkey")
	}
	public, err := unmarshalExact[tpm2.TPM2BPublic](pubBytes)
	if err != nil {
		return nil, fmt.Errorf("public area: %w", err)
	}
	private, err := unmarshalExact[tpm2.TPM2BPrivate](privBytes)
	if err != nil {
		return nil, fmt.Errorf("private area: %w", err)
	}
	if len(private.Buffer) == 0 {
		return nil, errors.New("private area is empty")
	}
	k.public, k.private = *public, *private
	return k, nil
}

// unmarshalAll unmarshals one ASN.1 value that must fill der.
func unmarshalAll(der []byte, v any) error {
	rest, err := asn1.Unmarshal(der, v)
	if err == nil && len(rest) != 0 {
		err = errors.New("trailing data")
	}
	return err
}

// berBoolean decodes a BOOLEAN, accepting any non-zero byte as TRUE (BER)
// where DER wants 0xff.
func berBoolean(der []byte) (bool, error) {
	var v asn1.RawValue
	if err := unmarshalAll(der, &v); err != nil {
		return false, err
	}
	if v.Class != asn1.ClassUniversal || v.Tag != asn1.TagBoolean || v.IsCompound || len(v.Bytes) != 1 {
		return false, errors.New("not a BOOLEAN")
	}
	return v.Bytes[0] != 0, nil
}

// unmarshalExact unmarshals a TPM structure that must fill data exactly.
func unmarshalExact[T tpm2.Marshallable, P interface {
	*T
	tpm2.Unmarshallable
}](data []byte) (v *T, err error) {
	defer func() {
		// go-tpm's reflection-based unmarshalling is not written for
		// hostile input; a panic is a malformed structure.
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("malformed: %v", r)
		}
	}()
	v, err = tpm2.Unmarshal[T, P](data)
	if err != nil {
		return nil, fmt.Errorf("malformed: %w", err)
	}
	if !bytes.Equal(tpm2.Marshal(*v), data) {
		return nil, errors.New("malformed: trailing or non-canonical data")
	}
	return v, nil
}

// marshalKeyFile encodes a key blob.
func marshalKeyFile(k *keyFile) ([]byte, error) {
	pubBytes := tpm2.Marshal(k.public)
	privBytes := tpm2.Marshal(k.private)
	var (
		der []byte
		err error
	)
	if k.emptyAuth {
		der, err = asn1.Marshal(tssKeyOutEmptyAuth{oidLoadableKey, true, int64(k.parent), pubBytes, privBytes})
	} else {
		der, err = asn1.Marshal(tssKeyOut{oidLoadableKey, int64(k.parent), pubBytes, privBytes})
	}
	if err != nil {
		return nil, fmt.Errorf("encode TSS2 key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: pemKeyType, Bytes: der}), nil
}

// signingPublicKey checks that pub is an unrestricted ECC P-256 signing key
// whose scheme, if fixed, is ECDSA with SHA-256, and returns its public key.
func signingPublicKey(pub *tpm2.TPMTPublic) (*ecdsa.PublicKey, error) {
	if pub.Type != tpm2.TPMAlgECC {
		return nil, fmt.Errorf("TPM key is not an ECC key (type %#x); only ECDSA P-256 is supported", uint16(pub.Type))
	}
	a := pub.ObjectAttributes
	if !a.SignEncrypt || a.Restricted {
		return nil, errors.New("TPM key is not an unrestricted signing key")
	}
	params, err := pub.Parameters.ECCDetail()
	if err != nil {
		return nil, fmt.Errorf("TPM key parameters: %w", err)
	}
	if params.CurveID != tpm2.TPMECCNistP256 {
		return nil, fmt.Errorf("TPM key curve %#x is not NIST P-256", uint16(params.CurveID))
	}
	switch params.Scheme.Scheme {
	case tpm2.TPMAlgNull:
	case tpm2.TPMAlgECDSA:
		s, err := params.Scheme.Details.ECDSA()
		if err != nil || s.HashAlg != tpm2.TPMAlgSHA256 {
			return nil, errors.New("TPM key scheme is ECDSA with a hash other than SHA-256")
		}
	default:
		return nil, fmt.Errorf("TPM key scheme %#x is not ECDSA", uint16(params.Scheme.Scheme))
	}
	point, err := pub.Unique.ECC()
	if err != nil {
		return nil, fmt.Errorf("TPM key point: %w", err)
	}
	x, y := point.X.Buffer, point.Y.Buffer
	if len(x) > 32 || len(y) > 32 {
		return nil, errors.New("TPM key point is not a P-256 point")
	}
	raw := make([]byte, 65)
	raw[0] = 4 // uncompressed
	copy(raw[1+32-len(x):33], x)
	copy(raw[33+32-len(y):], y)
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("TPM key point: %w", err)
	}
	return key, nil
}
