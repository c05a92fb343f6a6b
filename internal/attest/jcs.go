package attest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/proto/jsonstr"
)

// An RFC 8785 (JCS) canonicaliser that writes the canonical bytes straight
// from the input, without a tree of the document.
//
// Each value is written to the output as it is parsed: strings without
// escapes and short integers are copied as they are, other strings are
// re-escaped (only '"', '\' and control characters), other numbers are
// written in ECMAScript form. An object's members are written in input
// order, each remembered as a span of the output with its decoded name;
// when the object closes, the members are checked for order (UTF-16 code
// units) and, only if they are out of order, moved into place through a
// scratch buffer. So an already-canonical object costs no extra copy and an
// unsorted one costs one; nesting is bounded (proto.MaxJSONDepth), so the
// copying is at most that many times the input, and memory is the output
// plus one scratch buffer and one span per open member.
//
// It is strict on its own: invalid UTF-8, lone surrogate escapes, repeated
// names, numbers that proto.CheckNumber refuses, excess nesting and trailing
// data are errors, never repaired.

// errCanon is wrapped by every canonicalisation failure.
var errCanon = errors.New("canonicalize JSON")

type canonError struct {
	off int
	msg string
}

func (e *canonError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.off) }

// member is one object member being canonicalised: its decoded name (in
// the input, or in the names arena when it had escapes) and the span of its
// `"name":value` bytes in the output. The arena is only appended to while
// a member's name is referenced (an inner object truncates it back to
// where it started), so name stays valid even if the arena is regrown.
type member struct {
	name             []byte
	outStart, outEnd int
}

type canonicaliser struct {
	in       []byte
	pos      int
	depth    int
	maxDepth int
	out      []byte
	members  []member
	names    []byte
	scratch  []byte
	err      *canonError
}

var canonPool = sync.Pool{New: func() any { return new(canonicaliser) }}

// maxPooledScratch keeps one huge document's buffers out of the pool.
const maxPooledScratch = 1 << 20

func getCanon(in, out []byte, maxDepth int) *canonicaliser {
	c := canonPool.Get().(*canonicaliser)
	c.in, c.pos, c.depth, c.maxDepth, c.out, c.err = in, 0, 0, maxDepth, out, nil
	return c
}

func putCanon(c *canonicaliser) {
	c.in, c.out = nil, nil
	clear(c.members[:cap(c.members)]) // drop references to the input
	if cap(c.scratch) > maxPooledScratch || cap(c.names) > maxPooledScratch || cap(c.members) > maxPooledScratch/32 {
		return
	}
	c.members, c.names, c.scratch = c.members[:0], c.names[:0], c.scratch[:0]
	canonPool.Put(c)
}

func (c *canonicaliser) fail(off int, msg string) error {
	if c.err == nil {
		c.err = &canonError{off: off, msg: msg}
	}
	return c.err
}

func (c *canonicaliser) peek() byte {
	for c.pos < len(c.in) {
		switch b := c.in[c.pos]; b {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return b
		}
	}
	return 0
}

func (c *canonicaliser) unexpected() error {
	if c.pos >= len(c.in) {
		return c.fail(c.pos, "truncated JSON")
	}
	return c.fail(c.pos, "malformed JSON")
}

// document canonicalises one JSON text (a value with optional whitespace
// around it).
func (c *canonicaliser) document() error {
	if err := c.value(); err != nil {
		return err
	}
	if c.peek(); c.pos != len(c.in) {
		return c.fail(c.pos, "trailing data after JSON value")
	}
	return nil
}

func (c *canonicaliser) value() error {
	switch b := c.peek(); {
	case b == '{':
		return c.object(nil)
	case b == '[':
		return c.array()
	case b == '"':
		return c.str()
	case b == '-' || b >= '0' && b <= '9':
		return c.number()
	case b == 't':
		return c.literal("true")
	case b == 'f':
		return c.literal("false")
	case b == 'n':
		return c.literal("null")
	}
	return c.unexpected()
}

func (c *canonicaliser) literal(word string) error {
	if !bytes.HasPrefix(c.in[c.pos:], []byte(word)) {
		return c.unexpected()
	}
	c.pos += len(word)
	c.out = append(c.out, word...)
	return nil
}

func (c *canonicaliser) enter() error {
	c.depth++
	if c.depth > c.maxDepth {
		return c.fail(c.pos, fmt.Sprintf("nested deeper than %d", c.maxDepth))
	}
	return nil
}

func (c *canonicaliser) array() error {
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++
	c.out = append(c.out, '[')
	if c.peek() == ']' {
		c.pos++
	} else {
		for {
			if err := c.value(); err != nil {
				return err
			}
			b := c.peek()
			if b != ',' && b != ']' {
				return c.unexpected()
			}
			c.pos++
			if b == ']' {
				break
			}
			c.out = append(c.out, ',')
		}
	}
	c.out = append(c.out, ']')
	c.depth--
	return nil
}

// extraMember is a member the caller adds to the top-level object (the
// request policy): its name and canonical value. The object must not
// already have that name.
type extraMember struct {
	name  string
	value []byte
}

// errExtraConflict reports that the object already has the extra member.
var errExtraConflict = errors.New("member already present")

func (c *canonicaliser) object(extra *extraMember) error {
	objStart := c.pos
	if err := c.enter(); err != nil {
		return err
	}
	c.pos++
	start := len(c.out)
	c.out = append(c.out, '{')
	base, namesBase := len(c.members), len(c.names)
	if c.peek() == '}' {
		c.pos++
	} else {
		for {
			if c.peek() != '"' {
				return c.unexpected()
			}
			if len(c.members) > base {
				c.out = append(c.out, ',')
			}
			m := member{outStart: len(c.out)}
			nameStart, nameEnd, escaped, err := c.writeString()
			if err != nil {
				return err
			}
			m.name = c.in[nameStart:nameEnd]
			if escaped {
				a := len(c.names)
				c.names = jsonstr.Unescape(c.names, m.name)
				m.name = c.names[a:len(c.names):len(c.names)]
			}
			if c.peek() != ':' {
				return c.unexpected()
			}
			c.pos++
			c.out = append(c.out, ':')
			if err := c.value(); err != nil {
				return err
			}
			m.outEnd = len(c.out)
			c.members = append(c.members, m)
			b := c.peek()
			if b != ',' && b != '}' {
				return c.unexpected()
			}
			c.pos++
			if b == '}' {
				break
			}
		}
	}
	if extra != nil {
		for _, m := range c.members[base:] {
			if string(m.name) == extra.name {
				return errExtraConflict
			}
		}
		if len(c.members) > base {
			c.out = append(c.out, ',')
		}
		m := member{outStart: len(c.out)}
		c.out = appendString(c.out, extra.name)
		c.out = append(c.out, ':')
		c.out = append(c.out, extra.value...)
		m.outEnd = len(c.out)
		m.name = []byte(extra.name)
		c.members = append(c.members, m)
	}
	if err := c.order(start+1, base, objStart); err != nil {
		return err
	}
	c.out = append(c.out, '}')
	c.members, c.names = c.members[:base], c.names[:namesBase]
	c.depth--
	return nil
}

// order puts the members[base:], written from c.out[from:], in RFC 8785
// order, refusing a repeated name.
func (c *canonicaliser) order(from, base, objStart int) error {
	ms := c.members[base:]
	sorted := true
	for i := 1; i < len(ms); i++ {
		if compareUTF16(ms[i-1].name, ms[i].name) >= 0 {
			sorted = false
			break
		}
	}
	if sorted {
		return nil
	}
	slices.SortFunc(ms, func(a, b member) int { return compareUTF16(a.name, b.name) })
	for i := 1; i < len(ms); i++ {
		if bytes.Equal(ms[i-1].name, ms[i].name) {
			return c.fail(objStart, "duplicate member name in object")
		}
	}
	c.scratch = append(c.scratch[:0], c.out[from:]...)
	c.out = c.out[:from]
	for i, m := range ms {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, c.scratch[m.outStart-from:m.outEnd-from]...)
	}
	return nil
}

// compareUTF16 orders two valid UTF-8 strings by their UTF-16 code units,
// as RFC 8785 §3.2.3 sorts names. UTF-8 byte order is code point order,
// which differs from UTF-16 order in one case only: where the strings first
// differ, one has a supplementary character (lead byte 0xF0–0xF4; UTF-16
// surrogates 0xD800–0xDBFF) and the other U+E000–U+FFFF (lead byte 0xEE or
// 0xEF). Continuation bytes are below 0xC0, so both bytes being 0xEE or
// more means both are lead bytes.
func compareUTF16(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		x, y := a[i], b[i]
		if x == y {
			continue
		}
		if x >= 0xEE && y >= 0xEE && (x >= 0xF0) != (y >= 0xF0) {
			if x >= 0xF0 {
				return -1
			}
			return 1
		}
		return int(x) - int(y)
	}
	return len(a) - len(b)
}

// writeString validates the string at c.pos and writes its canonical form.
// It returns the span of its raw body in the input and whether it had
// escapes (then the body must be unescaped to get the string's value).
func (c *canonicaliser) writeString() (start, end int, escaped bool, err error) {
	start = c.pos + 1
	end, escaped, serr := jsonstr.Scan(c.in, start)
	if serr != nil {
		return 0, 0, false, c.fail(serr.Off, serr.Msg)
	}
	if !escaped {
		// Nothing to escape in the canonical form either.
		c.out = append(c.out, c.in[start-1:end+1]...)
	} else {
		c.out = appendEscaped(c.out, c.in[start:end])
	}
	c.pos = end + 1
	return start, end, escaped, nil
}

func (c *canonicaliser) str() error {
	_, _, _, err := c.writeString()
	return err
}

// appendEscaped writes the canonical string of a validated raw body that
// has escapes.
func appendEscaped(dst, raw []byte) []byte {
	dst = append(dst, '"')
	for len(raw) > 0 {
		j := bytes.IndexByte(raw, '\\')
		if j < 0 {
			dst = append(dst, raw...)
			break
		}
		dst = append(dst, raw[:j]...)
		raw = raw[j:]
		n := 2
		if raw[1] == 'u' {
			n = 6
			if r, _ := jsonstr.Hex4(raw, 2); r >= 0xD800 && r <= 0xDBFF {
				n = 12
			}
		}
		var one [4]byte
		dst = appendStringBody(dst, jsonstr.Unescape(one[:0], raw[:n]))
		raw = raw[n:]
	}
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendStringBody escapes valid UTF-8 as RFC 8785 §3.2.2.2 requires: '"',
// '\' and control characters only, with the short forms where JSON has one.
func appendStringBody[T string | []byte](dst []byte, s T) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 0x20 && b != '"' && b != '\\' {
			continue
		}
		dst = append(dst, s[last:i]...)
		last = i + 1
		switch b {
		case '"', '\\':
			dst = append(dst, '\\', b)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
		}
	}
	return append(dst, s[last:]...)
}

// errInvalidUTF8 is returned for a Go string that is not valid UTF-8.
var errInvalidUTF8 = errors.New("string is not valid UTF-8")

// appendString writes the canonical JSON string of s, which must be valid
// UTF-8 (checked by the callers that take strings from Go values).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	return append(appendStringBody(dst, s), '"')
}

// AppendString appends s, valid UTF-8, as an RFC 8785 string.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s) }

// number writes the canonical form of the number at c.pos.
func (c *canonicaliser) number() error {
	in := c.in
	start := c.pos
	i := start
	plainInt := true
	for i < len(in) {
		b := in[i]
		if b >= '0' && b <= '9' || b == '-' {
			i++
			continue
		}
		if b == '+' || b == '.' || b == 'e' || b == 'E' {
			plainInt = false
			i++
			continue
		}
		break
	}
	lit := in[start:i]
	c.pos = i
	// A short integer without a leading zero is its own canonical form
	// (ECMAScript writes integers below 1e21 in full); -0 is written 0.
	if plainInt && isShortInt(lit) {
		if string(lit) == "-0" {
			c.out = append(c.out, '0')
		} else {
			c.out = append(c.out, lit...)
		}
		return nil
	}
	if err := proto.CheckNumber(string(lit)); err != nil {
		return c.fail(start, err.Error())
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return c.fail(start, "number out of range")
	}
	c.out = appendES6(c.out, f)
	return nil
}

// isShortInt: -?(0|[1-9][0-9]{0,14}), exact as a double and written as is.
func isShortInt(s []byte) bool {
	if len(s) > 0 && s[0] == '-' {
		s = s[1:]
	}
	if len(s) == 0 || len(s) > 15 || len(s) > 1 && s[0] == '0' {
		return false
	}
	for _, b := range s {
		if b < '0' || b > '9' {
			return false
		}
	}
	return true
}

// appendES6 writes f as ECMAScript's Number.prototype.toString does
// (RFC 8785 §3.2.2.3): the shortest digits that read back as f, in fixed
// notation for 1e-7 < |f| < 1e21 and exponent notation otherwise.
func appendES6(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // -0 included
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d[.ddd]e±XX
	x := bytes.IndexByte(e, 'e')
	var digits [24]byte
	k := 0
	for _, b := range e[:x] {
		if b != '.' {
			digits[k] = b
			k++
		}
	}
	exp, _ := strconv.Atoi(string(e[x+1:]))
	n := exp + 1 // f = 0.digits × 10^n
	d := digits[:k]
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, d...)
	default:
		dst = append(dst, d[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}
