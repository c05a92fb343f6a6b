package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"testing"
	"unicode/utf8"
)

// strictSeeds are real requests and the hostile inputs of issue #12.
func strictSeeds(f *testing.F) {
	if b, err := os.ReadFile("testdata/sign_request.json"); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		strictBody(),
		strictBody("PRED", `{"n":9007199254740993.0}`),
		strictBody("PRED", `{"n":90071992547409930e-1}`),
		strictBody("PRED", `{"n":1.00000000000000000001,"m":1e-400,"o":0.1000000000000000055511151231257827}`),
		strictBody("PRED", `{"n":[1.0,1e2,-0,0.1,9007199254740992,5e-324,1e21,1e-7]}`),
		strictBody("NAME", "registry\xc3\x28app"),
		strictBody("NAME", `registry\ud800app`),
		strictBody("NAME", `\ud83d\ude00 \u00e9 \/`),
		strictBody() + `{}`,
		strings2(strictBody(), `{"subject"`, `{"SUBJECT":[],"subject"`),
		strings2(strictBody(), `"poe"`, `"poe":{"format":"jwt","value":"x"},"poe"`),
		strictBody("PRED", `{"a":{"b":1,"b":2}}`),
		strictBody("PRED", `{"ab":1,"a\u0062":2}`),
		`{"reason":"a","Reason":"b"}`,
		`[1,{"a":[true,false,null]},"x"]`,
		`1e999999999`,
	} {
		f.Add([]byte(s))
	}
	for _, s := range richSeeds {
		f.Add([]byte(s))
	}
}

func strings2(s, old, new string) string {
	return string(bytes.Replace([]byte(s), []byte(old), []byte(new), 1))
}

// FuzzStrictDecoder: the strict decoder never panics, reports input
// failures as ErrInvalidRequest, and accepts nothing encoding/json would
// read differently: whatever it accepts is valid UTF-8 JSON that
// encoding/json decodes to the same value (into any, and into a struct of
// every kind it maps), and a sign request it accepts round-trips and keeps
// its predicate bytes verbatim.
func FuzzStrictDecoder(f *testing.F) {
	strictSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var v any
		err := DecodeStrict(b, &v)
		if err != nil && !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("error not ErrInvalidRequest: %v", err)
		}
		objErr := CheckJSONObject(b)
		if objErr == nil && err != nil {
			t.Fatalf("CheckJSONObject accepts what DecodeStrict refuses: %v", err)
		}
		if err == nil {
			if !utf8.Valid(b) || !json.Valid(b) {
				t.Fatalf("accepted invalid UTF-8 or JSON: %q", b)
			}
			var w any
			if err := json.Unmarshal(b, &w); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(v, w) {
				t.Fatalf("strict and encoding/json values differ:\n%#v\n%#v", v, w)
			}
		}
		var rs, rj rich
		if err := DecodeStrict(b, &rs); err == nil {
			if err := json.Unmarshal(b, &rj); err != nil {
				t.Fatalf("strict accepts, encoding/json refuses (%v): %q", err, b)
			}
			if !reflect.DeepEqual(rs, rj) {
				t.Fatalf("strict and encoding/json structs differ:\n%+v\n%+v", rs, rj)
			}
		} else if !errors.Is(err, ErrInvalidRequest) {
			t.Fatalf("error not ErrInvalidRequest: %v", err)
		}
		r, err := DecodeSignRequest(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error not ErrInvalidRequest: %v", err)
			}
			return
		}
		if !bytes.Contains(b, r.Predicate) {
			t.Fatalf("predicate %q is not the input's bytes", r.Predicate)
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted request does not validate: %v", err)
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := DecodeSignRequest(again)
		if err != nil {
			t.Fatalf("accepted request does not round-trip: %v\n%s", err, again)
		}
		// Compared in encoded form: omitempty drops an empty keyIds list.
		again2, err := json.Marshal(r2)
		if err != nil || !bytes.Equal(again, again2) {
			t.Fatalf("round trip changed the request (%v):\n%s\n%s", err, again, again2)
		}
	})
}
