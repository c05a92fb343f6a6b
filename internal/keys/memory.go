package keys

import (
	"errors"
	"fmt"
)

// NewMemoryKey generates a fresh in-process key for alg (AlgECDSAP256,
// AlgECDSAP384 or AlgEd25519; "" means AlgECDSAP256). Nothing is persisted:
// it is a dev and test key.
func NewMemoryKey(alg string) (Key, error) {
	priv, err := generatePrivateKey(alg)
	if err != nil {
		return nil, err
	}
	return newSoftKey(priv)
}

// openMemory opens memory:NAME[?alg=ALG], generating a new key each time.
func openMemory(uri string) (Key, error) {
	u, err := parseURI(uri)
	if err != nil {
		return nil, fmt.Errorf("memory key URI: %w", err)
	}
	if u.Opaque == "" {
		return nil, errors.New("memory key URI: want memory:NAME[?alg=ALG]")
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("memory key URI %s: fragments are not allowed", u.Opaque)
	}
	q, err := SingleValuedQuery(u.RawQuery, "alg")
	if err != nil {
		return nil, fmt.Errorf("memory key URI %s: %w", u.Opaque, err)
	}
	key, err := NewMemoryKey(q["alg"])
	if err != nil {
		return nil, fmt.Errorf("memory key %s: %w", u.Opaque, err)
	}
	return key, nil
}
