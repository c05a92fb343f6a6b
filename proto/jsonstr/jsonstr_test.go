package jsonstr

import (
	"encoding/json"
	"testing"
)

func TestScan(t *testing.T) {
	for _, tc := range []struct {
		in, want, err string
	}{
		{in: `plain"`, want: "plain"},
		{in: `a\"b\\c\/d\b\f\n\r\t"`, want: "a\"b\\c/d\b\f\n\r\t"},
		{in: `\u00e9\uD83D\uDE00"`, want: "é😀"},
		{in: `é"`, want: "é"},
		{in: `abc`, err: "truncated JSON string"},
		{in: `ab\`, err: "truncated JSON string"},
		{in: "a\x01\"", err: "control character in string"},
		{in: "registry\xc3\x28app\"", err: "invalid UTF-8 in string"},
		{in: `\ud800"`, err: "lone surrogate escape in string"},
		{in: `\udc00"`, err: "lone surrogate escape in string"},
		{in: `\ud800\u0041"`, err: "lone surrogate escape in string"},
		{in: `\u12g4"`, err: `malformed \u escape`},
		{in: `\x"`, err: "invalid escape in string"},
	} {
		d := []byte(tc.in)
		end, esc, err := Scan(d, 0)
		if tc.err != "" {
			if err == nil || err.Msg != tc.err {
				t.Errorf("%q: got %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		got := string(d[:end])
		if esc {
			got = string(Unescape(nil, d[:end]))
		}
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Every body Scan accepts decodes to what encoding/json decodes it to, and
// encoding/json accepts it.
func FuzzScan(f *testing.F) {
	for _, s := range []string{`a"`, `\u00e9"`, `\ud83d\ude00"`, `\n\t"`, "\xff\"", `\ud800"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, d []byte) {
		end, esc, err := Scan(d, 0)
		if err != nil {
			return
		}
		got := string(d[:end])
		if esc {
			got = string(Unescape(nil, d[:end]))
		}
		var want string
		if jerr := json.Unmarshal(append(append([]byte{'"'}, d[:end]...), '"'), &want); jerr != nil {
			t.Fatalf("accepted %q, encoding/json refuses it: %v", d[:end], jerr)
		}
		if got != want {
			t.Fatalf("%q: got %q, encoding/json %q", d[:end], got, want)
		}
	})
}
