package keys

import (
	"fmt"
	"net/url"
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
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("memory key URI: %w", err)
	}
	if u.Opaque == "" {
		return nil, fmt.Errorf("memory key URI %q: want memory:NAME[?alg=ALG]", uri)
	}
	if u.Fragment != "" {
		return nil, fmt.Errorf("memory key URI %q: fragments are not allowed", uri)
	}
	q, err := singleValuedQuery(u.RawQuery, "alg")
	if err != nil {
		return nil, fmt.Errorf("memory key URI %q: %w", uri, err)
	}
	key, err := NewMemoryKey(q["alg"])
	if err != nil {
		return nil, fmt.Errorf("memory key %q: %w", u.Opaque, err)
	}
	return key, nil
}

// singleValuedQuery parses a URI query whose parameters may each appear at
// most once and must be among allowed.
func singleValuedQuery(raw string, allowed ...string) (map[string]string, error) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	out := make(map[string]string, len(values))
	for name, vs := range values {
		known := false
		for _, a := range allowed {
			known = known || name == a
		}
		if !known {
			return nil, fmt.Errorf("unknown query parameter %q", name)
		}
		if len(vs) != 1 {
			return nil, fmt.Errorf("query parameter %q given %d times", name, len(vs))
		}
		out[name] = vs[0]
	}
	return out, nil
}
