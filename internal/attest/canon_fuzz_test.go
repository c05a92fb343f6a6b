package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/gowebpki/jcs"

	"github.com/stellaops/signer-agent/proto"
)

// exactTree parses JSON into a value tree whose numbers are exact decimals:
// the reference the differential fuzz targets compare with. It is
// deliberately independent of the code under test: encoding/json tokens,
// math/big for the numbers. Objects are map[string]any (a repeated name is
// an error), arrays []any, numbers canonical "sign digits e exponent"
// strings of the exact value, strings, bools and nil as they are.
func exactTree(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := exactValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

func exactValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch x := tok.(type) {
	case json.Delim:
		if x == '[' {
			a := []any{}
			for dec.More() {
				v, err := exactValue(dec)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		}
		m := map[string]any{}
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				return nil, err
			}
			if _, dup := m[k.(string)]; dup {
				return nil, fmt.Errorf("duplicate name %q", k)
			}
			if m[k.(string)], err = exactValue(dec); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token()
		return m, err
	case json.Number:
		return exactDecimal(string(x))
	}
	return tok, nil
}

// exactDecimal normalises a JSON number to sign, significant digits and
// the exponent of the last digit, all exact (big.Int exponent).
func exactDecimal(s string) (string, error) {
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	mant, expStr, _ := strings.Cut(strings.ToLower(s), "e")
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := strings.TrimLeft(intPart+frac, "0")
	if digits == "" {
		return "0", nil
	}
	exp := new(big.Int)
	if expStr != "" {
		if _, ok := exp.SetString(strings.TrimPrefix(expStr, "+"), 10); !ok {
			return "", fmt.Errorf("exponent %q", expStr)
		}
	}
	trimmed := strings.TrimRight(digits, "0")
	exp.Sub(exp, big.NewInt(int64(len(frac))))
	exp.Add(exp, big.NewInt(int64(len(digits)-len(trimmed))))
	sign := "+"
	if neg {
		sign = "-"
	}
	return sign + trimmed + "e" + exp.String(), nil
}

func canonSeeds(f *testing.F) {
	for _, s := range []string{
		`{"b":1,"a":[true,false,null],"c":{"é":"\u00e9","\u20ac":"x"}}`,
		`{"n":[0,-0,1e2,1.5,-2.25e-7,9007199254740992,1.0,0.1,5e-324,1.7976931348623157e308,1e21,1e-7,123456789012345680000]}`,
		`{"s":"\"\\\/\b\f\n\r\t\u0001\u001f\u007f\u2028\ud83d\ude00"}`,
		`{"\ud83d\ude00":1,"\uffff":2,"\ue000":3,"a":4,"":5}`,
		`{"n":9007199254740993.0,"m":1e-400,"o":1.00000000000000000001}`,
		`{"a":{"b":1,"b":2}}`,
		"{\"s\":\"registry\xc3\x28app\"}",
		`{"s":"\ud800"}`,
		`[{"z":1,"y":{"x":[{"w":0,"v":1}]}}]`,
		`{}`, `[]`, `"x"`, `-0`, `null`,
	} {
		f.Add([]byte(s))
	}
	for _, p := range []string{"testdata/statement.json", "../../proto/testdata/sign_request.json"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add(benchBody(f, 2000))
}

// FuzzCanonicalize: the canonicaliser never panics, is never laxer than the
// strict decoder, and its output is a fixed point.
func FuzzCanonicalize(f *testing.F) {
	canonSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Canonicalize(b)
		if err != nil {
			return
		}
		var v any
		if err := proto.DecodeStrict(b, &v); err != nil {
			t.Fatalf("canonicalised what the strict decoder refuses (%v): %q", err, b)
		}
		c2, err := Canonicalize(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not a fixed point (%v):\n%s\n%s", err, c, c2)
		}
	})
}

// FuzzCanonicalDifferential: for every input the strict decoder accepts,
// the canonical bytes denote the same value tree, numbers compared as
// exact decimals, and are byte for byte what gowebpki/jcs produces.
func FuzzCanonicalDifferential(f *testing.F) {
	canonSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		if proto.DecodeStrict(b, &v) != nil {
			return
		}
		c, err := Canonicalize(b)
		if err != nil {
			t.Fatalf("strict decoder accepts, canonicaliser refuses: %v\n%q", err, b)
		}
		checkSameValue(t, b, c)
		want, err := jcs.Transform(b)
		if err != nil {
			t.Fatalf("jcs refuses what the strict decoder accepts: %v\n%q", err, b)
		}
		if !bytes.Equal(c, want) {
			t.Fatalf("differs from gowebpki/jcs:\n got %s\nwant %s", c, want)
		}
	})
}

func checkSameValue(t *testing.T, in, canon []byte) {
	t.Helper()
	ti, err := exactTree(in)
	if err != nil {
		t.Fatalf("reference parser refuses accepted input: %v\n%q", err, in)
	}
	tc, err := exactTree(canon)
	if err != nil {
		t.Fatalf("reference parser refuses canonical output: %v\n%q", err, canon)
	}
	if !reflect.DeepEqual(ti, tc) {
		t.Fatalf("value changed:\n in %q\nout %q\n%v\n%v", in, canon, ti, tc)
	}
}

// FuzzBuildStatementMatchesLegacy: for every request the strict decoder
// accepts, the statement is byte for byte what encoding/json + gowebpki/jcs
// produced before (legacy_test.go), and its predicate is the request's
// value (with the policy added), numbers compared exactly.
func FuzzBuildStatementMatchesLegacy(f *testing.F) {
	canonSeeds(f)
	pol := `,"policy":{"digest":"sha256:` + artifactSHA + `","viewSet":["b","a"]}`
	for _, pred := range []string{`{"z":1,"a":{"y":[3,2,1],"x":1.50}}`, `{"policy":1}`, `{"\ud83d\ude00":1,"\ue000":"\u0001"}`, `{"n":1e300,"m":-0.0}`} {
		body := `{"subject":[{"name":"a\u00e9<>&\u2028","digest":{"sha512":"` + strings.Repeat("a", 128) + `","sha256":"` + artifactSHA + `"}}],"predicateType":"stella.ops/report@v1","predicate":` + pred + pol + `}`
		f.Add([]byte(body))
		f.Add([]byte(strings.Replace(body, pol, "", 1)))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := proto.DecodeSignRequest(b)
		if err != nil {
			return
		}
		got, err := BuildStatement(r)
		want, lerr := legacyBuildStatement(r)
		if errors.Is(lerr, ErrPolicyConflict) != errors.Is(err, ErrPolicyConflict) || (err == nil) != (lerr == nil) {
			t.Fatalf("current %v, legacy %v", err, lerr)
		}
		if err != nil {
			return
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("statement differs from the legacy path:\n got %s\nwant %s", got, want)
		}
		var st struct {
			Predicate json.RawMessage `json:"predicate"`
		}
		if err := json.Unmarshal(got, &st); err != nil {
			t.Fatal(err)
		}
		want2, err := exactTree(r.Predicate)
		if err != nil {
			t.Fatalf("reference parser refuses accepted predicate: %v\n%q", err, r.Predicate)
		}
		if r.Policy != nil {
			p, _ := json.Marshal(r.Policy)
			if want2.(map[string]any)["policy"], err = exactTree(p); err != nil {
				t.Fatal(err)
			}
		}
		gotTree, err := exactTree(st.Predicate)
		if err != nil || !reflect.DeepEqual(gotTree, want2) {
			t.Fatalf("predicate value changed (%v):\n in %q\nout %q", err, r.Predicate, st.Predicate)
		}
	})
}

// TestCompareUTF16 checks the byte-level comparison against sorting by
// UTF-16 code units (unicode/utf16), around the one place UTF-8 and UTF-16
// order differ.
func TestCompareUTF16(t *testing.T) {
	words := []string{"", "a", "ab", "b", "\u007f", "\u0080", "\u00e9", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uefff", "\uf000", "\uffff",
		"\U00010000", "\U0001f600", "\U0010ffff", "a\U0001f600", "a\uffff", "\uffffa", "\U00010000a"}
	for _, x := range words {
		for _, y := range words {
			want := slicesCompare(utf16.Encode([]rune(x)), utf16.Encode([]rune(y)))
			if got := compareUTF16([]byte(x), []byte(y)); sign(got) != want {
				t.Errorf("compareUTF16(%q, %q) = %d, want sign %d", x, y, got, want)
			}
		}
	}
}

func slicesCompare(a, b []uint16) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return sign(int(a[i]) - int(b[i]))
		}
	}
	return sign(len(a) - len(b))
}

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
