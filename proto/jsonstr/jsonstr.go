// Package jsonstr scans and decodes JSON string bodies strictly: valid
// UTF-8 only, no control characters, and every \u high surrogate paired
// with a low one. It is the one string lexer shared by the strict request
// decoder (proto) and the RFC 8785 canonicaliser (internal/attest), so the
// two can never disagree on which strings are acceptable.
package jsonstr

import (
	"bytes"
	"unicode/utf8"
)

// safe marks the bytes a string may hold as they are: printable ASCII
// except the quote and the backslash.
var safe = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Error is a string that failed the strict rules: Off is the offset in the
// scanned input of the offending byte or escape.
type Error struct {
	Off int
	Msg string
}

func (e *Error) Error() string { return e.Msg }

// Scan validates the string body that starts at d[start] (the byte after
// the opening quote). It returns the offset of the closing quote and
// whether the body holds escapes (then Unescape gives its value).
func Scan(d []byte, start int) (end int, escaped bool, err *Error) {
	i := start
	for {
		for i < len(d) && safe[d[i]] {
			i++
		}
		if i >= len(d) {
			return 0, false, &Error{len(d), "truncated JSON string"}
		}
		switch c := d[i]; {
		case c == '"':
			return i, escaped, nil
		case c == '\\':
			n, err := escapeLen(d, i)
			if err != nil {
				return 0, false, err
			}
			escaped = true
			i += n
		case c < 0x20:
			return 0, false, &Error{i, "control character in string"}
		default:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size <= 1 {
				return 0, false, &Error{i, "invalid UTF-8 in string"}
			}
			i += size
		}
	}
}

// escapeLen validates the escape at d[i] (a backslash) and returns its
// length: a \u high surrogate must be followed by a \u low surrogate.
func escapeLen(d []byte, i int) (int, *Error) {
	if i+1 >= len(d) {
		return 0, &Error{i, "truncated JSON string"}
	}
	switch d[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
		r, ok := Hex4(d, i+2)
		if !ok {
			return 0, &Error{i, `malformed \u escape`}
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return 0, &Error{i, "lone surrogate escape in string"}
		case r >= 0xD800 && r <= 0xDBFF:
			if i+7 >= len(d) || d[i+6] != '\\' || d[i+7] != 'u' {
				return 0, &Error{i, "lone surrogate escape in string"}
			}
			if lo, ok := Hex4(d, i+8); !ok || lo < 0xDC00 || lo > 0xDFFF {
				return 0, &Error{i, "lone surrogate escape in string"}
			}
			return 12, nil
		}
		return 6, nil
	}
	return 0, &Error{i, "invalid escape in string"}
}

// Hex4 reads the four hex digits at d[i:i+4].
func Hex4(d []byte, i int) (rune, bool) {
	if i+4 > len(d) {
		return 0, false
	}
	var r rune
	for _, c := range d[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// Unescape appends the value of a string body that Scan accepted.
func Unescape(dst, raw []byte) []byte {
	for len(raw) > 0 {
		j := bytes.IndexByte(raw, '\\')
		if j < 0 {
			return append(dst, raw...)
		}
		dst = append(dst, raw[:j]...)
		raw = raw[j:]
		var r rune
		n := 2
		switch raw[1] {
		case 'b':
			r = '\b'
		case 'f':
			r = '\f'
		case 'n':
			r = '\n'
		case 'r':
			r = '\r'
		case 't':
			r = '\t'
		case 'u':
			r, _ = Hex4(raw, 2)
			n = 6
			if r >= 0xD800 && r <= 0xDBFF {
				lo, _ := Hex4(raw, 8)
				r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
				n = 12
			}
		default: // '"', '\\', '/'
			r = rune(raw[1])
		}
		dst = utf8.AppendRune(dst, r)
		raw = raw[n:]
	}
	return dst
}
