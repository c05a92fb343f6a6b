package verify

import (
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// maxKeysFile bounds what LoadKeysJSON and KeysFromPEM read from one file.
const maxKeysFile = 16 << 20

// Key is one trusted public key and what is known about it.
type Key struct {
	// ID is the agent's key id, or for a PEM key "FILE#N" (the N-th
	// PUBLIC KEY block of FILE, from 1).
	ID string
	// Public is the key (ECDSA P-256/P-384 or Ed25519).
	Public crypto.PublicKey
	// Hint is base64(SHA-256(PKIX DER)), as in sigstore bundles.
	Hint string
	// Status is proto.KeyStatusActive, KeyStatusVerifyOnly or
	// KeyStatusRevoked; PEM keys are active.
	Status string
	// NotBefore and NotAfter bound the key's validity; nil means open.
	NotBefore, NotAfter *time.Time
}

// usableAt reports why k may not verify a signature at t ("" when it may).
func (k *Key) usableAt(t time.Time) string {
	switch k.Status {
	case proto.KeyStatusActive, proto.KeyStatusVerifyOnly:
	case proto.KeyStatusRevoked:
		return "revoked"
	default:
		return fmt.Sprintf("status %q is not known", k.Status)
	}
	if k.NotBefore != nil && t.Before(*k.NotBefore) {
		return fmt.Sprintf("not valid before %s", k.NotBefore.UTC().Format(time.RFC3339))
	}
	if k.NotAfter != nil && t.After(*k.NotAfter) {
		return fmt.Sprintf("expired at %s", k.NotAfter.UTC().Format(time.RFC3339))
	}
	return ""
}

// KeySet is a set of trusted keys. It implements Trust.
type KeySet struct {
	keys   []*Key
	byHint map[string][]*Key
}

// NewKeySet builds a set from keys; each needs a Public key (its Hint is
// computed; a Hint given must match it). An empty Status means active; a
// status other than active, verify-only and revoked is kept and refuses
// the key at verification. Keys of algorithms the agent does not sign
// with are an error.
func NewKeySet(ks ...Key) (*KeySet, error) {
	s := &KeySet{byHint: map[string][]*Key{}}
	for i := range ks {
		k := ks[i]
		if k.Public == nil {
			return nil, fmt.Errorf("key %q: no public key", k.ID)
		}
		if _, _, err := keys.Algorithm(k.Public); err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		hint, err := keys.PublicKeyHint(k.Public)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.ID, err)
		}
		if k.Hint != "" && k.Hint != hint {
			return nil, fmt.Errorf("key %q: publicKeyHint %q does not match its public key", k.ID, k.Hint)
		}
		k.Hint = hint
		if k.Status == "" {
			k.Status = proto.KeyStatusActive
		}
		s.keys = append(s.keys, &k)
		s.byHint[hint] = append(s.byHint[hint], &k)
	}
	if len(s.keys) == 0 {
		return nil, errors.New("no keys")
	}
	return s, nil
}

// Keys returns the set's keys.
func (s *KeySet) Keys() []Key {
	out := make([]Key, len(s.keys))
	for i, k := range s.keys {
		out[i] = *k
	}
	return out
}

// Merge returns a set with the keys of s and o.
func (s *KeySet) Merge(o *KeySet) *KeySet {
	n := &KeySet{byHint: map[string][]*Key{}}
	for _, set := range []*KeySet{s, o} {
		if set == nil {
			continue
		}
		for _, k := range set.keys {
			n.keys = append(n.keys, k)
			n.byHint[k.Hint] = append(n.byHint[k.Hint], k)
		}
	}
	return n
}

// KeysFromResponse builds a set from the agent's GET /keys answer: every
// key with its PEM public key, status and validity window.
func KeysFromResponse(r *proto.KeysResponse) (*KeySet, error) {
	if r == nil || len(r.Keys) == 0 {
		return nil, errors.New("keys: the answer lists no key")
	}
	ks := make([]Key, 0, len(r.Keys))
	for _, ki := range r.Keys {
		if ki.ID == "" {
			return nil, errors.New("keys: a key without an id")
		}
		if ki.Status == "" {
			// The agent always names a status; without one the key's
			// standing is unknown, so it is not trusted.
			return nil, fmt.Errorf("keys: key %q: no status", ki.ID)
		}
		pubs, err := ParsePublicKeysPEM([]byte(ki.PublicKey))
		if err != nil {
			return nil, fmt.Errorf("keys: key %q: %w", ki.ID, err)
		}
		if len(pubs) != 1 {
			return nil, fmt.Errorf("keys: key %q: %d PUBLIC KEY blocks, want 1", ki.ID, len(pubs))
		}
		ks = append(ks, Key{ID: ki.ID, Public: pubs[0], Hint: ki.PublicKeyHint, Status: ki.Status, NotBefore: ki.NotBefore, NotAfter: ki.NotAfter})
	}
	s, err := NewKeySet(ks...)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	return s, nil
}

// LoadKeysJSON reads a saved GET /keys answer (`signerctl keys list
// --json`, or curl) and builds its set.
func LoadKeysJSON(path string) (*KeySet, error) {
	b, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("keys JSON: %w", err)
	}
	var r proto.KeysResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("keys JSON %s: %s", path, proto.DescribeJSONError(err))
	}
	s, err := KeysFromResponse(&r)
	if err != nil {
		return nil, fmt.Errorf("keys JSON %s: %w", path, err)
	}
	return s, nil
}

// KeysFromPEM builds a set from every PUBLIC KEY block of files (each must
// hold at least one) and of the *.pub and *.pem regular files directly in
// dir (files without one are skipped; the directory must yield at least
// one key; dir may be ""). The keys are active and have no window.
func KeysFromPEM(files []string, dir string) (*KeySet, error) {
	var ks []Key
	add := func(name string, pubs []crypto.PublicKey) {
		for i, p := range pubs {
			ks = append(ks, Key{ID: fmt.Sprintf("%s#%d", name, i+1), Public: p, Status: proto.KeyStatusActive})
		}
	}
	for _, f := range files {
		b, err := readBounded(f)
		if err != nil {
			return nil, fmt.Errorf("public key: %w", err)
		}
		ps, err := ParsePublicKeysPEM(b)
		if err != nil {
			return nil, fmt.Errorf("public key %s: %w", f, err)
		}
		if len(ps) == 0 {
			return nil, fmt.Errorf("public key %s: no PEM \"PUBLIC KEY\" block", f)
		}
		add(f, ps)
	}
	if dir != "" {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("trust dir: %w", err)
		}
		var names []string
		for _, e := range ents {
			if ext := filepath.Ext(e.Name()); ext == ".pub" || ext == ".pem" {
				names = append(names, e.Name())
			}
		}
		sort.Strings(names)
		found := 0
		for _, name := range names {
			p := filepath.Join(dir, name)
			fi, err := os.Stat(p) // follows symlinks
			if err != nil {
				return nil, fmt.Errorf("trust dir: %w", err)
			}
			if !fi.Mode().IsRegular() {
				continue
			}
			b, err := readBounded(p)
			if err != nil {
				return nil, fmt.Errorf("trust dir: %w", err)
			}
			ps, err := ParsePublicKeysPEM(b)
			if err != nil {
				return nil, fmt.Errorf("trust dir: %s: %w", p, err)
			}
			found += len(ps)
			add(p, ps)
		}
		if found == 0 {
			return nil, fmt.Errorf("trust dir %s: no PEM \"PUBLIC KEY\" block in any *.pub or *.pem file", dir)
		}
	}
	if len(ks) == 0 {
		return nil, errors.New("no public key given")
	}
	return NewKeySet(ks...)
}

// ParsePublicKeysPEM returns the keys of every "PUBLIC KEY" (PKIX) block.
// Other blocks are skipped without being decoded further, so a private key
// that happens to sit in the same file is never parsed. Keys must be of an
// algorithm the agent signs with. Data that is not PEM at all is an error.
func ParsePublicKeysPEM(data []byte) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "PUBLIC KEY" {
			clear(b.Bytes)
			continue
		}
		pub, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse PUBLIC KEY: %w", err)
		}
		if _, _, err := keys.Algorithm(pub); err != nil {
			return nil, err
		}
		out = append(out, pub)
	}
	if out == nil && len(data) > 0 && !strings.Contains(string(data), "-----BEGIN") {
		return nil, errors.New("not PEM")
	}
	return out, nil
}

func readBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > maxKeysFile {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxKeysFile)
	}
	return b, nil
}
