package release

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/stellaops/signer-agent/internal/keys"
)

// ErrNoKeys is returned by LoadKeys when the paths hold no public key.
var ErrNoKeys = errors.New("no release public keys found")

// maxKeyFile caps a key file read by LoadKeys.
const maxKeyFile = 1 << 20

// LoadKeys reads trusted release public keys from PEM files. A path that is a
// directory contributes every *.pem and *.pub file directly in it (sorted by
// name), so the trust-root directory /etc/signer-agent/trust/release can be
// passed as is. Accepted blocks: "PUBLIC KEY" (PKIX), "RSA PUBLIC KEY"
// (PKCS#1) and "CERTIFICATE" (its subject public key). Private keys are
// refused, other blocks are ignored. Keys must be ECDSA P-256/P-384/P-521,
// RSA of at least 2048 bits, or Ed25519. Duplicates are dropped; finding no
// key at all is ErrNoKeys.
func LoadKeys(paths ...string) ([]crypto.PublicKey, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("release keys: %w", err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			return nil, fmt.Errorf("release keys: %w", err)
		}
		for _, e := range ents {
			n := e.Name()
			if e.Type().IsRegular() || e.Type()&os.ModeSymlink != 0 {
				if strings.HasSuffix(n, ".pem") || strings.HasSuffix(n, ".pub") {
					files = append(files, filepath.Join(p, n))
				}
			}
		}
	}
	var out []crypto.PublicKey
	seen := map[string]bool{}
	for _, f := range files {
		data, err := readCapped(f, maxKeyFile)
		if err != nil {
			return nil, fmt.Errorf("release keys: %w", err)
		}
		pubs, err := parsePublicKeysPEM(data)
		if err != nil {
			return nil, fmt.Errorf("release keys: %s: %w", f, err)
		}
		for _, pub := range pubs {
			h, err := KeyHint(pub)
			if err != nil {
				return nil, fmt.Errorf("release keys: %s: %w", f, err)
			}
			if !seen[h] {
				seen[h] = true
				out = append(out, pub)
			}
		}
	}
	if len(out) == 0 {
		return nil, ErrNoKeys
	}
	return out, nil
}

// parsePublicKeysPEM parses a trust-root PEM file (keys.ParsePublicKeysPEM)
// and checks that each key is of a type release signatures use.
func parsePublicKeysPEM(data []byte) ([]crypto.PublicKey, error) {
	out, err := keys.ParsePublicKeysPEM(data)
	if errors.Is(err, keys.ErrNoPublicKey) {
		return nil, ErrNoKeys
	}
	if err != nil {
		return nil, err
	}
	for _, pub := range out {
		if err := checkKeyType(pub); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func checkKeyType(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return fmt.Errorf("unsupported ECDSA curve %s", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Errorf("RSA key of %d bits is too small (minimum 2048)", k.N.BitLen())
		}
		return nil
	case ed25519.PublicKey:
		return nil
	}
	return fmt.Errorf("unsupported public key type %T", pub)
}

// KeyHint is the base64 (standard, padded) SHA-256 of a public key's PKIX
// DER encoding: the hint sigstore bundles carry and Verdict.KeyHint reports.
func KeyHint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("marshal public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.StdEncoding.EncodeToString(sum[:]), nil
}

// trustedKey is one release key with the verifiers tried for it: the key's
// natural hash first, then SHA-256 for ECDSA P-384/P-521 keys (cosign signs
// with SHA-256 whatever the curve).
type trustedKey struct {
	hint      string
	verifiers []signature.Verifier
}

func newTrustedKey(pub crypto.PublicKey) (trustedKey, error) {
	if err := checkKeyType(pub); err != nil {
		return trustedKey{}, err
	}
	hint, err := KeyHint(pub)
	if err != nil {
		return trustedKey{}, err
	}
	hashes := []crypto.Hash{crypto.SHA256}
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		switch k.Curve {
		case elliptic.P384():
			hashes = []crypto.Hash{crypto.SHA384, crypto.SHA256}
		case elliptic.P521():
			hashes = []crypto.Hash{crypto.SHA512, crypto.SHA256}
		}
	}
	tk := trustedKey{hint: hint}
	for _, h := range hashes {
		v, err := signature.LoadVerifier(pub, h)
		if err != nil {
			return trustedKey{}, fmt.Errorf("load verifier: %w", err)
		}
		tk.verifiers = append(tk.verifiers, v)
	}
	return tk, nil
}

// orderByHint puts the key whose hint equals hint first, so a bundle naming
// its key is verified with that key before the others are tried.
func orderByHint(ks []trustedKey, hint string) []trustedKey {
	out := slices.Clone(ks)
	slices.SortStableFunc(out, func(a, b trustedKey) int {
		switch {
		case a.hint == hint && b.hint != hint:
			return -1
		case b.hint == hint && a.hint != hint:
			return 1
		}
		return 0
	})
	return out
}
