package pkcs11

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DefaultMaxSessions is the session pool size when a URI has no
// max-sessions attribute; MaxMaxSessions is the largest it accepts.
const (
	DefaultMaxSessions = 8
	MaxMaxSessions     = 256
)

// ErrInvalidURI marks a pkcs11: URI that does not parse or lacks what the
// operation needs.
var ErrInvalidURI = errors.New("invalid pkcs11 URI")

// URI is a parsed pkcs11: URI (RFC 7512). Path attributes choose the token
// and the object; query attributes say how to load the module and log in.
//
// The PIN of a pin-value attribute is held unexported: String redacts it,
// and only Encode writes it back.
type URI struct {
	// Token selectors (CK_TOKEN_INFO fields; at least one is needed to open
	// a key). SlotID is not stable on every module (SoftHSM2 derives it
	// from the token serial), so prefer Token.
	Token        string // token=: token label
	Manufacturer string // manufacturer=: token manufacturer ID
	Serial       string // serial=: token serial number
	Model        string // model=: token model
	SlotID       *uint  // slot-id= (path, as in RFC 7512; also accepted in the query)

	// Object selectors: the private key's CKA_LABEL and/or CKA_ID.
	Object string // object=
	ID     []byte // id= (binary after percent-decoding)
	Type   string // type=: empty or "private"

	// Query attributes.
	ModulePath  string // module-path=: absolute path of the PKCS#11 module
	PINSource   string // pin-source=: file:/abs/path or /abs/path; the file holds the PIN
	MaxSessions int    // max-sessions=: session pool size; 0 means DefaultMaxSessions

	pinValue string // pin-value=: the PIN itself (discouraged)
}

// attribute kinds: where an attribute may appear and how its value is
// checked.
type attrDef struct {
	path, query bool
	maxLen      int  // bytes after decoding; 0 means no limit
	secret      bool // never describe the value in an error
	binary      bool // any bytes (id); otherwise UTF-8 without NUL
}

var attrDefs = map[string]attrDef{
	"token":        {path: true, maxLen: 32},
	"manufacturer": {path: true, maxLen: 32},
	"serial":       {path: true, maxLen: 16},
	"model":        {path: true, maxLen: 16},
	"slot-id":      {path: true, query: true},
	"object":       {path: true},
	"id":           {path: true, binary: true},
	"type":         {path: true},
	"module-path":  {query: true},
	"pin-source":   {query: true},
	"pin-value":    {query: true, secret: true},
	"max-sessions": {query: true},
}

// ParseURI parses a pkcs11: URI. It percent-decodes every value, refuses
// unknown and repeated attributes, characters RFC 7512 requires to be
// percent-encoded, fragments, and values that cannot name what they
// should (a token label over 32 bytes, a relative module-path, …). It does
// not require any attribute: see Opener.Open and GenerateKey for what
// they need. Errors wrap ErrInvalidURI and never contain the PIN (nor any
// other value: they name the attribute).
func ParseURI(s string) (*URI, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || !strings.EqualFold(scheme, "pkcs11") {
		return nil, invalid("want a pkcs11: URI")
	}
	if strings.Contains(rest, "#") {
		return nil, invalid("fragments are not allowed")
	}
	path, query, _ := strings.Cut(rest, "?")
	u := &URI{}
	seen := make(map[string]bool)
	for _, part := range []struct {
		raw, sep string
		query    bool
	}{{path, ";", false}, {query, "&", true}} {
		if part.raw == "" {
			continue
		}
		for _, attr := range strings.Split(part.raw, part.sep) {
			if err := u.set(attr, part.query, seen); err != nil {
				return nil, err
			}
		}
	}
	if u.PINSource != "" && u.pinValue != "" {
		return nil, invalid("give pin-source or pin-value, not both")
	}
	return u, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidURI, fmt.Sprintf(format, args...))
}

// set parses one name=value attribute into u.
func (u *URI) set(attr string, inQuery bool, seen map[string]bool) error {
	where := "path"
	if inQuery {
		where = "query"
	}
	rawName, rawValue, ok := strings.Cut(attr, "=")
	if !ok {
		if attr == "" {
			return invalid("empty %s attribute", where)
		}
		// Not named: a bare word here may well be a misplaced PIN.
		return invalid("a %s attribute has no '=' (want name=value)", where)
	}
	def, known := attrDefs[rawName]
	switch {
	case rawName == "module-name" && inQuery:
		return invalid("module-name is not supported: give module-path=/absolute/path/to/module.so")
	case !known:
		return invalid("unknown %s attribute %s", where, nameForError(rawName))
	case inQuery && !def.query:
		return invalid("%s belongs in the path", rawName)
	case !inQuery && !def.path:
		return invalid("%s belongs in the query", rawName)
	case seen[rawName]:
		return invalid("%s given twice", rawName)
	}
	seen[rawName] = true // slot-id counts once, in the path or the query
	v, err := unescape(rawValue, inQuery)
	if err != nil {
		if def.secret {
			return invalid("%s: malformed value", rawName)
		}
		return invalid("%s: %v", rawName, err)
	}
	switch {
	case v == "":
		return invalid("%s has an empty value", rawName)
	case def.maxLen > 0 && len(v) > def.maxLen:
		return invalid("%s is %d bytes long, at most %d fit", rawName, len(v), def.maxLen)
	case !def.binary && !utf8.ValidString(v):
		return invalid("%s is not valid UTF-8", rawName)
	case !def.binary && strings.ContainsRune(v, 0):
		return invalid("%s contains a NUL byte", rawName)
	}
	switch rawName {
	case "token", "manufacturer", "serial", "model":
		// CK_TOKEN_INFO pads these fields with spaces: a trailing space
		// cannot be matched.
		if strings.HasSuffix(v, " ") {
			return invalid("%s ends in a space, which PKCS#11 padding cannot keep", rawName)
		}
	}
	switch rawName {
	case "token":
		u.Token = v
	case "manufacturer":
		u.Manufacturer = v
	case "serial":
		u.Serial = v
	case "model":
		u.Model = v
	case "slot-id":
		n, err := parseDecimal(v, 64)
		if err != nil {
			return invalid("slot-id: %v", err)
		}
		id := uint(n)
		u.SlotID = &id
	case "object":
		u.Object = v
	case "id":
		u.ID = []byte(v)
	case "type":
		if v != "private" {
			return invalid("type must be private (only private keys sign)")
		}
		u.Type = v
	case "module-path":
		if !filepath.IsAbs(v) {
			return invalid("module-path must be an absolute path")
		}
		u.ModulePath = v
	case "pin-source":
		if _, err := pinSourcePath(v); err != nil {
			return invalid("pin-source: %v", err)
		}
		u.PINSource = v
	case "pin-value":
		u.pinValue = v
	case "max-sessions":
		n, err := parseDecimal(v, 16)
		if err != nil || n < 1 || n > MaxMaxSessions {
			return invalid("max-sessions must be a number from 1 to %d", MaxMaxSessions)
		}
		u.MaxSessions = int(n)
	}
	return nil
}

// nameForError quotes an attribute name for an error message if it looks
// like one; anything else (a misplaced PIN, binary junk) is not repeated.
func nameForError(name string) string {
	if name == "" || len(name) > 32 || name[0] < 'a' || name[0] > 'z' {
		return "(unnamed)"
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return "(unnamed)"
		}
	}
	return strconv.Quote(name)
}

func parseDecimal(v string, bits int) (uint64, error) {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, errors.New("not a decimal number")
		}
	}
	n, err := strconv.ParseUint(v, 10, bits)
	if err != nil {
		return 0, errors.New("number out of range")
	}
	return n, nil
}

// pinSourcePath returns the file a pin-source names: file:/abs/path,
// file:///abs/path or /abs/path.
func pinSourcePath(v string) (string, error) {
	p := v
	if rest, ok := strings.CutPrefix(v, "file:"); ok {
		p = rest
		if after, ok := strings.CutPrefix(rest, "//"); ok {
			if !strings.HasPrefix(after, "/") {
				return "", errors.New("a host is not allowed; use file:/absolute/path")
			}
			p = after
		}
	}
	if !filepath.IsAbs(p) {
		return "", errors.New("want file:/absolute/path (or /absolute/path)")
	}
	return filepath.Clean(p), nil
}

// Character classes of RFC 7512 §2.3: pk11-pchar and pk11-qchar, less
// pct-encoded.
func isUnreserved(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

func isResAvail(c byte) bool {
	return strings.IndexByte(":[]@!$'()*+,=", c) >= 0
}

func allowed(c byte, inQuery bool) bool {
	if isUnreserved(c) || isResAvail(c) {
		return true
	}
	if inQuery {
		return c == '/' || c == '?' || c == '|'
	}
	return c == '&'
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unescape percent-decodes a value, refusing characters that must be
// percent-encoded. '+' is a plus sign, not a space.
func unescape(v string, inQuery bool) (string, error) {
	var b strings.Builder
	b.Grow(len(v))
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '%':
			if i+2 >= len(v) {
				return "", errors.New("truncated percent-encoding")
			}
			hi, ok1 := unhex(v[i+1])
			lo, ok2 := unhex(v[i+2])
			if !ok1 || !ok2 {
				return "", errors.New("malformed percent-encoding")
			}
			b.WriteByte(hi<<4 | lo)
			i += 2
		case allowed(c, inQuery):
			b.WriteByte(c)
		case c > ' ' && c < 0x7f:
			return "", fmt.Errorf("character %q must be percent-encoded", c)
		default:
			return "", errors.New("a space, control or non-ASCII character must be percent-encoded")
		}
	}
	return b.String(), nil
}

// escape percent-encodes v for a path or query value; all is true for
// binary values (id), whose every byte is encoded.
func escape(v string, inQuery, all bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		// '=' is allowed but kept encoded in values for readability; '?'
		// and '/' in the query are kept as they are (module-path).
		if !all && allowed(c, inQuery) && c != '=' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// HasPINValue reports whether the URI carries its PIN in a pin-value
// attribute.
func (u URI) HasPINValue() bool { return u.pinValue != "" }

// Encode writes the URI in RFC 7512 form, pin-value included. Attributes
// appear in a fixed order, so ParseURI(u.Encode()) equals u.
func (u URI) Encode() string { return u.encode(false) }

// String is Encode with any pin-value replaced by REDACTED: safe to log.
func (u URI) String() string { return u.encode(true) }

// GoString is String, so that %#v does not print the PIN either.
func (u URI) GoString() string { return u.encode(true) }

func (u *URI) encode(redact bool) string {
	var path, query []string
	add := func(list *[]string, name, v string, inQuery, all bool) {
		if v != "" {
			*list = append(*list, name+"="+escape(v, inQuery, all))
		}
	}
	add(&path, "token", u.Token, false, false)
	add(&path, "manufacturer", u.Manufacturer, false, false)
	add(&path, "serial", u.Serial, false, false)
	add(&path, "model", u.Model, false, false)
	if u.SlotID != nil {
		add(&path, "slot-id", strconv.FormatUint(uint64(*u.SlotID), 10), false, false)
	}
	add(&path, "object", u.Object, false, false)
	add(&path, "id", string(u.ID), false, true)
	add(&path, "type", u.Type, false, false)
	add(&query, "module-path", u.ModulePath, true, false)
	add(&query, "pin-source", u.PINSource, true, false)
	if u.pinValue != "" {
		if redact {
			query = append(query, "pin-value=REDACTED")
		} else {
			add(&query, "pin-value", u.pinValue, true, false)
		}
	}
	if u.MaxSessions != 0 {
		add(&query, "max-sessions", strconv.Itoa(u.MaxSessions), true, false)
	}
	s := "pkcs11:" + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// label describes the key a URI names for error messages: token and
// object selectors only, never the PIN.
func (u *URI) label() string {
	var parts []string
	if u.Token != "" {
		parts = append(parts, "token="+strconv.Quote(u.Token))
	}
	if u.Serial != "" {
		parts = append(parts, "serial="+strconv.Quote(u.Serial))
	}
	if u.SlotID != nil {
		parts = append(parts, "slot-id="+strconv.FormatUint(uint64(*u.SlotID), 10))
	}
	if u.Object != "" {
		parts = append(parts, "object="+strconv.Quote(u.Object))
	}
	if len(u.ID) > 0 {
		parts = append(parts, fmt.Sprintf("id=%x", u.ID))
	}
	return strings.Join(parts, " ")
}
