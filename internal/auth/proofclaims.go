package auth

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// proofClaims are the members of a DPoP proof's payload the agent checks
// (RFC 9449 §4.2). Other members are ignored.
type proofClaims struct {
	htm, htu, ath, jti, nonce string
	iat                       time.Time
	hasNonce, hasIat          bool
}

// parseProofClaims decodes a proof payload with the rules decodeObject,
// stringMember and dateMember apply to every other JOSE object here — one
// JSON object, no duplicate member names (compared after unescaping),
// string claims that are strings, iat a NumericDate in range — in one pass
// and without building a map: the payload is first checked to be valid
// JSON (json.Valid), then walked member by member. Errors name members,
// never values.
func parseProofClaims(b []byte) (proofClaims, error) {
	var c proofClaims
	if !json.Valid(b) {
		return c, errors.New("malformed JSON")
	}
	s := scanner{b: b}
	s.ws()
	if !s.eat('{') {
		return c, errors.New("not a JSON object")
	}
	var (
		seen  uint8 // the known claims seen so far
		other map[string]bool
		errs  []error
	)
	s.ws()
	for !s.eat('}') {
		s.eat(',')
		s.ws()
		name, err := s.name()
		if err != nil {
			return c, err
		}
		s.ws()
		s.eat(':')
		s.ws()
		start := s.i
		s.skipValue()
		raw := b[start:s.i]
		s.ws()

		bit := uint8(0)
		var dst *string
		switch name {
		case "htm":
			bit, dst = 1, &c.htm
		case "htu":
			bit, dst = 2, &c.htu
		case "ath":
			bit, dst = 4, &c.ath
		case "jti":
			bit, dst = 8, &c.jti
		case "nonce":
			bit, dst = 16, &c.nonce
		case "iat":
			bit = 32
		}
		if bit == 0 {
			if other == nil {
				other = map[string]bool{}
			}
			if other[name] {
				return c, fmt.Errorf("duplicate member %q", name)
			}
			other[name] = true
			continue
		}
		if seen&bit != 0 {
			return c, fmt.Errorf("duplicate member %q", name)
		}
		seen |= bit
		if dst != nil {
			v, err := jsonString(name, raw)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			*dst = v
			continue
		}
		t, err := numericDate(name, raw)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		c.iat = t
	}
	c.hasNonce, c.hasIat = seen&16 != 0, seen&32 != 0
	return c, errors.Join(errs...)
}

// jsonString decodes a JSON string value; anything else is an error. Plain
// printable ASCII without escapes (every claim a conforming client sends)
// is copied as is; other strings go through encoding/json, so escapes and
// invalid UTF-8 are handled exactly as stringMember handles them.
func jsonString(name string, raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", fmt.Errorf("%s is not a string", name)
	}
	body := raw[1 : len(raw)-1]
	plain := true
	for _, c := range body {
		if c < 0x20 || c > 0x7e || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		return string(body), nil
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", fmt.Errorf("%s is not a string", name)
	}
	return v, nil
}

// numericDate decodes a NumericDate (RFC 7519 §2), fractional seconds
// allowed, with dateMember's rules.
func numericDate(name string, raw []byte) (time.Time, error) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return time.Time{}, fmt.Errorf("%s is not a number", name)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s is not a number", name)
	}
	if math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, fmt.Errorf("%s is out of range", name)
	}
	sec := math.Floor(f)
	return time.Unix(int64(sec), int64((f-sec)*1e9)).UTC(), nil
}

// scanner walks JSON that json.Valid has accepted; it does not validate
// again.
type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str advances past a string starting at s.i and returns it with quotes.
func (s *scanner) str() []byte {
	start := s.i
	s.i++ // opening quote
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case '\\':
			s.i += 2
		case '"':
			s.i++
			return s.b[start:s.i]
		default:
			s.i++
		}
	}
	return s.b[start:s.i]
}

// name reads a member name, unescaped.
func (s *scanner) name() (string, error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return "", errors.New("malformed JSON")
	}
	raw := s.str()
	if n, err := jsonString("member name", raw); err == nil {
		return n, nil
	}
	return "", errors.New("malformed JSON")
}

// skipValue advances past one value.
func (s *scanner) skipValue() {
	if s.i >= len(s.b) {
		return
	}
	switch s.b[s.i] {
	case '"':
		s.str()
	case '{', '[':
		depth := 0
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case '"':
				s.str()
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			s.i++
			if depth == 0 {
				return
			}
		}
	default: // number, true, false, null
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			s.i++
		}
	}
}
