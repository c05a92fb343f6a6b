package kit

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
)

// ErrSums is wrapped by every SHA256SUMS parse failure.
var ErrSums = errors.New("malformed SHA256SUMS")

// MaxSumsBytes bounds the SHA256SUMS file (a kit lists some dozens of files).
const MaxSumsBytes = 1 << 20

// Sum is one line of SHA256SUMS.
type Sum struct {
	Path   string // kit-relative, slash-separated, clean
	SHA256 string // lowercase hex
}

// ParseSums parses SHA256SUMS in the format `sha256sum` writes and
// `sha256sum -c` reads: one "HEX  PATH" line per file ("HEX *PATH", binary
// mode, is accepted too), each ending in "\n". It is strict, because the
// file is the root of the kit's integrity: no blank lines or comments, no
// escaped names (a leading '\'), lowercase hex, paths relative and clean
// (no "", ".", "..", leading "./" or "/", doubled or trailing slashes), no
// path twice, and never the kit's signature files themselves.
func ParseSums(data []byte) ([]Sum, error) {
	if len(data) > MaxSumsBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrSums, MaxSumsBytes)
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrSums)
	}
	if data[len(data)-1] != '\n' {
		return nil, fmt.Errorf("%w: the last line does not end in a newline", ErrSums)
	}
	lines := bytes.Split(data[:len(data)-1], []byte("\n"))
	out := make([]Sum, 0, len(lines))
	seen := make(map[string]bool, len(lines))
	for i, l := range lines {
		s, err := parseSumLine(string(l))
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrSums, i+1, err)
		}
		if seen[s.Path] {
			return nil, fmt.Errorf("%w: line %d: %q listed twice", ErrSums, i+1, s.Path)
		}
		seen[s.Path] = true
		out = append(out, s)
	}
	return out, nil
}

func parseSumLine(l string) (Sum, error) {
	const hexLen = 64
	if strings.HasPrefix(l, "\\") {
		return Sum{}, errors.New("escaped file names are not supported")
	}
	if len(l) < hexLen+3 {
		return Sum{}, errors.New("want \"HEX  PATH\"")
	}
	hex, sep, p := l[:hexLen], l[hexLen:hexLen+2], l[hexLen+2:]
	if !isLowerHex(hex) {
		return Sum{}, errors.New("the digest is not 64 lowercase hex characters")
	}
	if sep != "  " && sep != " *" {
		return Sum{}, errors.New("want two spaces (or \" *\") between digest and path")
	}
	if err := CheckPath(p); err != nil {
		return Sum{}, err
	}
	if p == SumsFile || p == SumsBundleFile {
		return Sum{}, fmt.Errorf("%q cannot list itself or its signature", p)
	}
	return Sum{Path: p, SHA256: hex}, nil
}

// CheckPath accepts a kit-relative path: slash-separated, clean, relative,
// printable ASCII without backslashes, and without "." or ".." elements.
func CheckPath(p string) error {
	switch {
	case p == "":
		return errors.New("empty path")
	case len(p) > 1024:
		return errors.New("path longer than 1024 bytes")
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("absolute path %q", p)
	case path.Clean(p) != p:
		return fmt.Errorf("path %q is not clean", p)
	case p == "." || p == ".." || strings.HasPrefix(p, "../"):
		return fmt.Errorf("path %q leaves the kit", p)
	}
	for _, c := range []byte(p) {
		if c < 0x21 || c > 0x7e || c == '\\' {
			return fmt.Errorf("path %q: only printable ASCII without spaces or backslashes", p)
		}
	}
	return nil
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// FormatSums writes sums in ParseSums' format, sorted by path (byte order),
// so that the same files always give the same bytes.
func FormatSums(sums []Sum) []byte {
	s := append([]Sum(nil), sums...)
	sort.Slice(s, func(i, j int) bool { return s[i].Path < s[j].Path })
	var b bytes.Buffer
	for _, e := range s {
		b.WriteString(e.SHA256)
		b.WriteString("  ")
		b.WriteString(e.Path)
		b.WriteByte('\n')
	}
	return b.Bytes()
}
