package trustroot

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/sigstore/rekor-tiles/v2/pkg/note"
	"github.com/sigstore/sigstore-go/pkg/root"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// MediaTypeKeys is the media type of trusted_keys.json.
const MediaTypeKeys = "application/vnd.stellaops.signer-agent.trusted-keys+json;version=1"

// ErrInvalid is wrapped by every refusal of malformed trust material.
var ErrInvalid = errors.New("invalid trust material")

// Key is an agent key an offline verifier trusts, within its window and
// unless it is revoked.
type Key struct {
	ID        string
	PublicKey crypto.PublicKey
	// Hint is base64(SHA-256(PKIX DER)): the bundle's publicKey.hint.
	Hint      string
	Algorithm string
	Status    string // proto.KeyStatus*
	NotBefore time.Time
	NotAfter  time.Time // zero: open-ended
	// Chain is the key's certificate chain (leaf first), if any.
	Chain []*x509.Certificate
	info  proto.KeyInfo
}

// Revoked reports whether the key is revoked.
func (k *Key) Revoked() bool { return k.Status == proto.KeyStatusRevoked }

// ValidAt reports whether t is inside the key's validity window.
func (k *Key) ValidAt(t time.Time) bool {
	if !k.NotBefore.IsZero() && t.Before(k.NotBefore) {
		return false
	}
	if !k.NotAfter.IsZero() && t.After(k.NotAfter) {
		return false
	}
	return true
}

// RekorLog is a Rekor v2 log: its base URL, checkpoint origin (the URL's
// host, e.g. "rekor.example" or "127.0.0.1") and public key.
type RekorLog struct {
	URL       string
	Origin    string
	PublicKey crypto.PublicKey
	// Start is when the log key became valid (default: Unix epoch).
	Start time.Time
}

// Input is what Build assembles.
type Input struct {
	// Keys are the agent's keys as GET /keys lists them.
	Keys []proto.KeyInfo
	// FulcioChain is Fulcio's CA chain: intermediates, then the root.
	FulcioChain []*x509.Certificate
	FulcioURL   string
	// TSAChain is the timestamp authority's chain: its signing
	// certificate first, the root last.
	TSAChain []*x509.Certificate
	TSAURL   string
	Rekor    []RekorLog
}

// Material is a trusted root and the agent's keys.
type Material struct {
	Root *root.TrustedRoot
	Keys []*Key
}

// Build assembles trust material from in. Keys are checked (PEM, hint,
// algorithm, status, window, chain); every certificate chain is checked to
// be a chain.
func Build(in Input) (*Material, error) {
	var cas []root.CertificateAuthority
	var tsas []root.TimestampingAuthority
	tlogs := map[string]*root.TransparencyLog{}
	if len(in.FulcioChain) > 0 {
		if err := checkChain(in.FulcioChain); err != nil {
			return nil, fmt.Errorf("%w: Fulcio chain: %v", ErrInvalid, err)
		}
		r := in.FulcioChain[len(in.FulcioChain)-1]
		cas = append(cas, &root.FulcioCertificateAuthority{
			Root: r, Intermediates: in.FulcioChain[:len(in.FulcioChain)-1],
			ValidityPeriodStart: r.NotBefore, URI: in.FulcioURL,
		})
	}
	if len(in.TSAChain) > 0 {
		if err := checkChain(in.TSAChain); err != nil {
			return nil, fmt.Errorf("%w: TSA chain: %v", ErrInvalid, err)
		}
		c := in.TSAChain
		tsa := &root.SigstoreTimestampingAuthority{Root: c[len(c)-1], ValidityPeriodStart: c[0].NotBefore, URI: in.TSAURL}
		if len(c) > 1 {
			tsa.Leaf = c[0]
			tsa.Intermediates = c[1 : len(c)-1]
		}
		tsas = append(tsas, tsa)
	}
	for _, l := range in.Rekor {
		if l.URL == "" || l.Origin == "" || l.PublicKey == nil {
			return nil, fmt.Errorf("%w: a Rekor log needs a URL, an origin and a public key", ErrInvalid)
		}
		_, id, err := note.KeyHash(l.Origin, l.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("%w: Rekor log key: %v", ErrInvalid, err)
		}
		start := l.Start
		if start.IsZero() {
			start = time.Unix(0, 0)
		}
		tlogs[hex.EncodeToString(id)] = &root.TransparencyLog{
			BaseURL: l.URL, ID: id, HashFunc: crypto.SHA256, PublicKey: l.PublicKey,
			SignatureHashFunc: signatureHash(l.PublicKey), ValidityPeriodStart: start,
		}
	}
	m := &Material{}
	seenCA := map[[32]byte]bool{}
	for _, info := range in.Keys {
		k, err := parseKey(info)
		if err != nil {
			return nil, err
		}
		m.Keys = append(m.Keys, k)
		if len(k.Chain) > 1 {
			// The key's CA: its chain above the leaf.
			caChain := k.Chain[1:]
			r := caChain[len(caChain)-1]
			fp := sha256.Sum256(r.Raw)
			if !seenCA[fp] {
				seenCA[fp] = true
				cas = append(cas, &root.FulcioCertificateAuthority{
					Root: r, Intermediates: caChain[:len(caChain)-1],
					ValidityPeriodStart: r.NotBefore, ValidityPeriodEnd: r.NotAfter,
				})
			}
		}
	}
	tr, err := root.NewTrustedRoot(root.TrustedRootMediaType01, cas, map[string]*root.TransparencyLog{}, tsas, tlogs)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	m.Root = tr
	return m, nil
}

func signatureHash(pub crypto.PublicKey) crypto.Hash {
	if _, ok := pub.(ed25519.PublicKey); ok {
		return crypto.SHA512
	}
	_, h, err := keys.Algorithm(pub)
	if err != nil || h == 0 {
		return crypto.SHA256
	}
	return h
}

// checkChain checks that each certificate is signed by the next one.
func checkChain(chain []*x509.Certificate) error {
	for i := 0; i+1 < len(chain); i++ {
		if err := chain[i].CheckSignatureFrom(chain[i+1]); err != nil {
			return fmt.Errorf("certificate %d (%s) is not signed by certificate %d (%s): %v",
				i, chain[i].Subject.CommonName, i+1, chain[i+1].Subject.CommonName, err)
		}
	}
	return nil
}

// parseKey checks one GET /keys entry.
func parseKey(info proto.KeyInfo) (*Key, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: key %q: %s", ErrInvalid, info.ID, fmt.Sprintf(format, args...))
	}
	if info.ID == "" {
		return nil, fmt.Errorf("%w: a key without an id", ErrInvalid)
	}
	switch info.Status {
	case proto.KeyStatusActive, proto.KeyStatusVerifyOnly, proto.KeyStatusRevoked:
	default:
		return nil, bad("status %q", info.Status)
	}
	blk, rest := pem.Decode([]byte(info.PublicKey))
	if blk == nil || blk.Type != "PUBLIC KEY" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, bad("publicKey is not one PEM PUBLIC KEY block")
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, bad("publicKey: %v", err)
	}
	alg, _, err := keys.Algorithm(pub)
	if err != nil {
		return nil, bad("%v", err)
	}
	hint, err := keys.PublicKeyHint(pub)
	if err != nil {
		return nil, bad("%v", err)
	}
	if info.PublicKeyHint != "" && info.PublicKeyHint != hint {
		return nil, bad("publicKeyHint does not match the public key")
	}
	if info.Algorithm != "" && info.Algorithm != alg {
		return nil, bad("algorithm %q, but the key is %s", info.Algorithm, alg)
	}
	k := &Key{ID: info.ID, PublicKey: pub, Hint: hint, Algorithm: alg, Status: info.Status}
	if info.NotBefore != nil {
		k.NotBefore = *info.NotBefore
	}
	if info.NotAfter != nil {
		k.NotAfter = *info.NotAfter
	}
	if !k.NotBefore.IsZero() && !k.NotAfter.IsZero() && !k.NotBefore.Before(k.NotAfter) {
		return nil, bad("notBefore is not before notAfter")
	}
	for i, p := range info.CertificateChain {
		blk, rest := pem.Decode([]byte(p))
		if blk == nil || blk.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, bad("certificateChain[%d] is not one PEM CERTIFICATE block", i)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, bad("certificateChain[%d]: %v", i, err)
		}
		k.Chain = append(k.Chain, c)
	}
	if len(k.Chain) > 0 {
		if !k.Chain[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
			return nil, bad("the leaf certificate does not certify the public key")
		}
		if err := checkChain(k.Chain); err != nil {
			return nil, bad("%v", err)
		}
	}
	info.PublicKeyHint, info.Algorithm = hint, alg
	k.info = info
	return k, nil
}

// MarshalRoot returns trusted_root.json: the sigstore trusted root as RFC
// 8785 canonical JSON (sigstore-go sorts its entries; protojson's spacing
// is not stable, so it is canonicalised).
func (m *Material) MarshalRoot() ([]byte, error) {
	raw, err := m.Root.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode trusted root: %w", err)
	}
	return jcs.Transform(raw)
}

// keysFile is trusted_keys.json.
type keysFile struct {
	MediaType string          `json:"mediaType"`
	Keys      []proto.KeyInfo `json:"keys"`
}

// MarshalKeys returns trusted_keys.json: the keys sorted by id, each as
// GET /keys lists it (tenants and the default flag dropped: a verifier
// does not need them), as RFC 8785 canonical JSON.
func (m *Material) MarshalKeys() ([]byte, error) {
	out := keysFile{MediaType: MediaTypeKeys, Keys: []proto.KeyInfo{}}
	for _, k := range m.Keys {
		info := k.info
		info.Tenants = []string{}
		info.Default = false
		out.Keys = append(out.Keys, info)
	}
	sort.Slice(out.Keys, func(i, j int) bool { return out.Keys[i].ID < out.Keys[j].ID })
	raw, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}

// ParseKeys reads trusted_keys.json, or a GET /keys response
// ({"keys": […]}, as `signerctl keys list --json` prints it).
func ParseKeys(data []byte) ([]*Key, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f keysFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: keys file: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: keys file: trailing data", ErrInvalid)
	}
	if f.MediaType != "" && f.MediaType != MediaTypeKeys {
		return nil, fmt.Errorf("%w: keys file media type %q", ErrInvalid, f.MediaType)
	}
	seen := map[string]bool{}
	var out []*Key
	for _, info := range f.Keys {
		if seen[info.ID] {
			return nil, fmt.Errorf("%w: key %q listed twice", ErrInvalid, info.ID)
		}
		seen[info.ID] = true
		k, err := parseKey(info)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// ParseRoot reads trusted_root.json with sigstore-go (which refuses
// unknown fields and other media types).
func ParseRoot(data []byte) (*root.TrustedRoot, error) {
	tr, err := root.NewTrustedRootFromJSON(data)
	if err != nil {
		return nil, fmt.Errorf("%w: trusted root: %v", ErrInvalid, err)
	}
	return tr, nil
}

// KeysPathFor is where trusted_keys.json lives beside a trusted root:
// "…/trusted_root.json" → "…/trusted_keys.json"; any other name gets
// ".keys.json" in place of its ".json".
func KeysPathFor(rootPath string) string {
	if strings.HasSuffix(rootPath, "trusted_root.json") {
		return strings.TrimSuffix(rootPath, "trusted_root.json") + "trusted_keys.json"
	}
	return strings.TrimSuffix(rootPath, ".json") + ".keys.json"
}

// Key returns the key with hint, or nil.
func (m *Material) Key(hint string) *Key {
	for _, k := range m.Keys {
		if k.Hint == hint {
			return k
		}
	}
	return nil
}
