package auth

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
)

// compactJWS is a JWS compact serialisation split and decoded, before any
// signature check. go-jose parses it again for verification; this first pass
// enforces what go-jose leaves open: exactly three canonical base64url
// segments, no duplicate members, no "crit" or "b64".
type compactJWS struct {
	header  map[string]json.RawMessage
	payload []byte
	alg     string
	kid     string
	typ     string
	hasKid  bool
}

var b64 = base64.RawURLEncoding.Strict()

// parseCompact returns a reason (no input bytes) on failure.
func parseCompact(s string, limit int) (*compactJWS, error) {
	if len(s) > limit {
		return nil, fmt.Errorf("longer than %d bytes", limit)
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("%d segments, want 3 (JWS compact serialisation)", len(parts))
	}
	if parts[0] == "" || parts[1] == "" {
		return nil, errors.New("empty header or payload segment")
	}
	if parts[2] == "" {
		return nil, errors.New("empty signature")
	}
	hb, err := b64.DecodeString(parts[0])
	if err != nil {
		return nil, errors.New("header is not canonical base64url")
	}
	payload, err := b64.DecodeString(parts[1])
	if err != nil {
		return nil, errors.New("payload is not canonical base64url")
	}
	if _, err := b64.DecodeString(parts[2]); err != nil {
		return nil, errors.New("signature is not canonical base64url")
	}
	h, err := decodeObject(hb)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	j := &compactJWS{header: h, payload: payload}
	if j.alg, _, err = stringMember(h, "alg"); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if j.alg == "" {
		return nil, errors.New("header: no alg")
	}
	if j.kid, j.hasKid, err = stringMember(h, "kid"); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if j.typ, _, err = stringMember(h, "typ"); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	for _, k := range []string{"crit", "b64", "zip", "enc"} {
		if _, ok := h[k]; ok {
			return nil, fmt.Errorf("header: %q is not accepted", k)
		}
	}
	return j, nil
}

// decodeObject decodes one JSON object into its members, refusing
// duplicate names (a parser-differential risk), trailing data and anything
// that is not an object.
func decodeObject(b []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	m := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("malformed JSON")
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("malformed JSON")
		}
		if _, dup := m[name]; dup {
			return nil, fmt.Errorf("duplicate member %q", name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, errors.New("malformed JSON")
		}
		m[name] = v
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, errors.New("malformed JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON object")
	}
	return m, nil
}

// stringMember reads an optional string member; null and other types are
// errors.
func stringMember(m map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := m[name]
	if !ok {
		return "", false, nil
	}
	if len(raw) == 0 || raw[0] != '"' {
		return "", true, fmt.Errorf("%s is not a string", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, fmt.Errorf("%s is not a string", name)
	}
	return s, true, nil
}

// maxNumericDate bounds NumericDate values (year 5138) so conversions cannot
// overflow.
const maxNumericDate = 1e11

// dateMember reads an optional NumericDate (RFC 7519 §2), fractional
// seconds allowed.
func dateMember(m map[string]json.RawMessage, name string) (time.Time, bool, error) {
	raw, ok := m[name]
	if !ok {
		return time.Time{}, false, nil
	}
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return time.Time{}, true, fmt.Errorf("%s is not a number", name)
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil {
		return time.Time{}, true, fmt.Errorf("%s is not a number", name)
	}
	if math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, true, fmt.Errorf("%s is out of range", name)
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)).UTC(), true, nil
}
