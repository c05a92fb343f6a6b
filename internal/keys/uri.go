package keys

import (
	"errors"
	"fmt"
	"net/url"
)

// parseURI parses a key URI. Its errors leave the URI out (url.Parse's
// repeat it whole, query included).
func parseURI(uri string) (*url.URL, error) {
	u, err := url.Parse(uri)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("malformed: %w", err)
	}
	return u, nil
}

// SingleValuedQuery parses a key URI's query: each parameter may appear at
// most once and must be among allowed. Backends in subpackages use it too.
func SingleValuedQuery(raw string, allowed ...string) (map[string]string, error) {
	values, err := url.ParseQuery(raw)
	if err != nil {
		return nil, errors.New("malformed query")
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
