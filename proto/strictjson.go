package proto

import (
	"bytes"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/stellaops/signer-agent/proto/jsonstr"
)

// A strict JSON scanner (RFC 8259 plus the rules of SPEC §15). It is the
// only JSON reader of request bodies: DecodeStrict decodes Go values with it
// (strictdecode.go) and CheckJSONObject validates with it. Beyond the
// grammar it refuses what encoding/json repairs or tolerates:
//
//   - invalid UTF-8 anywhere, and \u escapes that are lone surrogates
//     (encoding/json substitutes U+FFFD for both);
//   - a member name repeated in one object, at any depth, comparing decoded
//     names ("a" and "\u0061" are the same name);
//   - numbers whose RFC 8785 form is another value (number.go);
//   - nesting deeper than its limit, and anything after the value.
//
// Error messages carry a byte offset but never input bytes: they reach the
// caller's problem detail and the audit log.

// syntaxError is a scanner or decoder failure at a byte offset. path names
// the request field being decoded (schema names and indexes only).
type syntaxError struct {
	off  int
	path string
	msg  string
}

func (e *syntaxError) Error() string {
	if e.path == "" {
		return fmt.Sprintf("%s at offset %d", e.msg, e.off)
	}
	return fmt.Sprintf("%s: %s at offset %d", e.path, e.msg, e.off)
}

// nameSpan locates one decoded member name: in the input when it had no
// escapes, else in the scanner's name arena.
type nameSpan struct {
	start, end int
	arena      bool
}

// scanner reads one JSON text. The names and arena stacks hold the member
// names of the open objects (each object truncates them on exit), so
// duplicate detection allocates nothing in steady state.
type scanner struct {
	data     []byte
	pos      int
	depth    int
	maxDepth int
	names    []nameSpan
	arena    []byte
	err      *syntaxError // first error; path filled in by the decoder
	pathFn   func() string
	strBuf   []byte
}

func (s *scanner) fail(off int, format string, args ...any) error {
	if s.err == nil {
		msg := format
		if len(args) > 0 {
			msg = fmt.Sprintf(format, args...)
		}
		s.err = &syntaxError{off: off, msg: msg}
		if s.pathFn != nil {
			s.err.path = s.pathFn()
		}
	}
	return s.err
}

func (s *scanner) skipWS() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end.
func (s *scanner) peek() byte {
	s.skipWS()
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

// more consumes the separator after a member or an element: a comma
// (more follow) or the container's close byte (it ends here).
func (s *scanner) more(close byte) (bool, error) {
	switch s.peek() {
	case ',':
		s.pos++
		return true, nil
	case close:
		s.pos++
		return false, nil
	}
	return false, s.unexpected()
}

func (s *scanner) expect(c byte) error {
	if s.peek() != c {
		return s.unexpected()
	}
	s.pos++
	return nil
}

func (s *scanner) unexpected() error {
	if s.pos >= len(s.data) {
		return s.fail(s.pos, "truncated JSON")
	}
	return s.fail(s.pos, "malformed JSON")
}

// enter and leave bound the nesting of arrays and objects.
func (s *scanner) enter() error {
	s.depth++
	if s.depth > s.maxDepth {
		return s.fail(s.pos, "nested deeper than %d", s.maxDepth)
	}
	return nil
}

func (s *scanner) leave() { s.depth-- }

// end refuses anything but whitespace after the value.
func (s *scanner) end() error {
	s.skipWS()
	if s.pos != len(s.data) {
		return s.fail(s.pos, "trailing data after JSON value")
	}
	return nil
}

// scanString reads a string at s.pos (which must be at its opening quote)
// and returns the bytes between the quotes and whether they contain escapes.
// It validates UTF-8, escapes and surrogate pairs (internal/jsonstr).
func (s *scanner) scanString() (start, end int, escaped bool, err error) {
	start = s.pos + 1
	end, escaped, serr := jsonstr.Scan(s.data, start)
	if serr != nil {
		return 0, 0, false, s.fail(serr.Off, "%s", serr.Msg)
	}
	s.pos = end + 1
	return start, end, escaped, nil
}

// appendUnescaped appends the decoded form of a string body that
// scanString accepted.
func appendUnescaped(dst, raw []byte) []byte { return jsonstr.Unescape(dst, raw) }

// readString reads a string value and returns it decoded.
func (s *scanner) readString() (string, error) {
	start, end, escaped, err := s.scanString()
	if err != nil {
		return "", err
	}
	if !escaped {
		return string(s.data[start:end]), nil
	}
	s.strBuf = appendUnescaped(s.strBuf[:0], s.data[start:end])
	return string(s.strBuf), nil
}

// scanNumber reads a number at s.pos and applies the RFC 8785 value rule.
func (s *scanner) scanNumber() (start, end int, err error) {
	d := s.data
	start = s.pos
	i := start
	for i < len(d) {
		c := d[i]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			i++
			continue
		}
		break
	}
	// string(…) of a literal up to 32 bytes stays on the stack.
	if err := checkNumber(string(d[start:i])); err != nil {
		return 0, 0, s.fail(start, "%v", err)
	}
	s.pos = i
	return start, i, nil
}

// literal reads true, false or null at s.pos.
func (s *scanner) literal(word string) error {
	if !bytes.HasPrefix(s.data[s.pos:], []byte(word)) {
		return s.unexpected()
	}
	s.pos += len(word)
	return nil
}

// memberName reads an object member name and its colon, records it on the
// names stack and returns its span.
func (s *scanner) memberName() (nameSpan, error) {
	if s.peek() != '"' {
		return nameSpan{}, s.unexpected()
	}
	start, end, escaped, err := s.scanString()
	if err != nil {
		return nameSpan{}, err
	}
	n := nameSpan{start: start, end: end}
	if escaped {
		a := len(s.arena)
		s.arena = appendUnescaped(s.arena, s.data[start:end])
		n = nameSpan{start: a, end: len(s.arena), arena: true}
	}
	if err := s.expect(':'); err != nil {
		return nameSpan{}, err
	}
	return n, nil
}

func (s *scanner) name(n nameSpan) []byte {
	if n.arena {
		return s.arena[n.start:n.end]
	}
	return s.data[n.start:n.end]
}

// checkDuplicates refuses a name repeated among names[base:], the members
// of one object: sorted, a repeat is adjacent (O(n log n), no allocation).
func (s *scanner) checkDuplicates(base, objStart int) error {
	m := s.names[base:]
	if len(m) < 2 {
		return nil
	}
	if len(m) <= 16 {
		for i := 1; i < len(m); i++ {
			for j := 0; j < i; j++ {
				if bytes.Equal(s.name(m[i]), s.name(m[j])) {
					return s.fail(objStart, "duplicate member name in object")
				}
			}
		}
		return nil
	}
	slices.SortFunc(m, func(a, b nameSpan) int { return bytes.Compare(s.name(a), s.name(b)) })
	for i := 1; i < len(m); i++ {
		if bytes.Equal(s.name(m[i-1]), s.name(m[i])) {
			return s.fail(objStart, "duplicate member name in object")
		}
	}
	return nil
}

// skipValue validates one value at s.pos and moves past it.
func (s *scanner) skipValue() error {
	switch c := s.peek(); {
	case c == '{':
		return s.skipObject()
	case c == '[':
		return s.skipArray()
	case c == '"':
		_, _, _, err := s.scanString()
		return err
	case c == '-' || c >= '0' && c <= '9':
		_, _, err := s.scanNumber()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return s.unexpected()
}

func (s *scanner) skipObject() error {
	objStart := s.pos
	if err := s.enter(); err != nil {
		return err
	}
	s.pos++ // '{'
	base, arenaBase := len(s.names), len(s.arena)
	if s.peek() == '}' {
		s.pos++
		s.leave()
		return nil
	}
	for {
		n, err := s.memberName()
		if err != nil {
			return err
		}
		s.names = append(s.names, n)
		if err := s.skipValue(); err != nil {
			return err
		}
		if more, err := s.more('}'); err != nil {
			return err
		} else if !more {
			break
		}
	}
	if err := s.checkDuplicates(base, objStart); err != nil {
		return err
	}
	s.names, s.arena = s.names[:base], s.arena[:arenaBase]
	s.leave()
	return nil
}

func (s *scanner) skipArray() error {
	if err := s.enter(); err != nil {
		return err
	}
	s.pos++ // '['
	if s.peek() == ']' {
		s.pos++
		s.leave()
		return nil
	}
	for {
		if err := s.skipValue(); err != nil {
			return err
		}
		if more, err := s.more(']'); err != nil {
			return err
		} else if !more {
			break
		}
	}
	s.leave()
	return nil
}

// quoteName renders a member name for an error message: quoted, at most 64
// bytes. Only used for names outside the predicate (schema positions).
func quoteName(b []byte) string {
	const max = 64
	if len(b) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(b[cut]) {
			cut--
		}
		return fmt.Sprintf("%q…", b[:cut])
	}
	return fmt.Sprintf("%q", b)
}

// jsonKind names the JSON type of the value starting with c, for errors
// ("" when no value starts with c).
func jsonKind(c byte) string {
	switch {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || c >= '0' && c <= '9':
		return "number"
	}
	return ""
}
