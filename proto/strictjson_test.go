package proto

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// strictBase is a valid sign request whose every string-valued field can be
// swapped: NAME (subject name), PRED (predicate), POE (poe.value), KEY
// (options.keyIds[0]), VIEW (policy.viewSet[0]).
const strictBase = `{"subject":[{"name":"NAME","digest":{"sha256":"` + hexA + `"}}],"predicateType":"stella.ops/sbom@v1",` +
	`"predicate":PRED,"scannerImageDigest":"sha256:` + hexA + `","poe":{"format":"jwt","value":"POE"},` +
	`"policy":{"digest":"sha256:` + hexA + `","viewSet":["VIEW"]},"options":{"mode":"keyful","keyIds":["KEY"]}}`

func strictBody(subst ...string) string {
	r := strings.NewReplacer(append([]string{}, subst...)...)
	s := r.Replace(strictBase)
	return strings.NewReplacer("NAME", "registry.example/app", "PRED", `{"n":1}`, "POE", "p", "KEY", "k", "VIEW", "v").Replace(s)
}

func TestStrictBaseAccepted(t *testing.T) {
	if _, err := DecodeSignRequest([]byte(strictBody())); err != nil {
		t.Fatal(err)
	}
}

// TestStrictDecodeRefuses holds every finding of issue #12 item 1 (each of
// them was signed, altered, before the strict decoder) and its neighbours.
func TestStrictDecodeRefuses(t *testing.T) {
	top := strictBody()
	field := func(k, v string) string { return strings.Replace(top, `{"subject"`, `{`+k+`:`+v+`,"subject"`, 1) }
	after := func(k, v string) string { return strings.TrimSuffix(top, "}") + `,` + k + `:` + v + `}` }
	cases := []struct{ name, body string }{
		// Numbers whose RFC 8785 form denotes another value.
		{"number 9007199254740993.0", strictBody("PRED", `{"n":9007199254740993.0}`)},
		{"number 9007199254740993e0", strictBody("PRED", `{"n":9007199254740993e0}`)},
		{"number 90071992547409930e-1", strictBody("PRED", `{"n":90071992547409930e-1}`)},
		{"number 9007199254740993", strictBody("PRED", `{"n":9007199254740993}`)},
		{"number 1.00000000000000000001", strictBody("PRED", `{"n":1.00000000000000000001}`)},
		{"number 1e-400", strictBody("PRED", `{"n":1e-400}`)},
		{"number -1e-400", strictBody("PRED", `{"n":-1e-400}`)},
		{"number 0.1000000000000000055511151231257827", strictBody("PRED", `{"n":0.1000000000000000055511151231257827}`)},
		{"number 1e400", strictBody("PRED", `{"n":1e400}`)},
		{"number 1e999999999", strictBody("PRED", `{"n":1e999999999}`)},
		{"number 1e-999999999999999999999", strictBody("PRED", `{"n":1e-999999999999999999999}`)},
		{"number in array", strictBody("PRED", `{"n":[1,2,9007199254740993]}`)},
		{"number deep", strictBody("PRED", `{"a":{"b":[{"c":1.00000000000000000001}]}}`)},
		{"number leading zero", strictBody("PRED", `{"n":01}`)},
		{"number plus", strictBody("PRED", `{"n":+1}`)},
		{"number bare dot", strictBody("PRED", `{"n":1.}`)},
		{"number no exponent digits", strictBody("PRED", `{"n":1e}`)},
		{"number NaN", strictBody("PRED", `{"n":NaN}`)},
		{"number hex", strictBody("PRED", `{"n":0x10}`)},
		// Invalid UTF-8 and lone surrogates, in every string.
		{"subject name invalid UTF-8", strictBody("NAME", "registry\xc3\x28app")},
		{"subject name lone surrogate", strictBody("NAME", `registry\ud800app`)},
		{"subject name lone low surrogate", strictBody("NAME", `registry\udc00app`)},
		{"subject name high surrogate then BMP escape", strictBody("NAME", `registry\ud800\u0041app`)},
		{"subject name high surrogate at end", strictBody("NAME", `registry\ud800`)},
		{"subject name two high surrogates", strictBody("NAME", `\ud800\ud800`)},
		{"subject name UTF-8 encoded surrogate", strictBody("NAME", "registry\xed\xa0\x80app")},
		{"subject name overlong UTF-8", strictBody("NAME", "registry\xc0\xafapp")},
		{"subject name truncated UTF-8", strictBody("NAME", "registry\xe2\x82")},
		{"subject name byte 0xff", strictBody("NAME", "registry\xffapp")},
		{"subject name raw control character", strictBody("NAME", "registry\x01app")},
		{"subject name bad escape", strictBody("NAME", `registry\xapp`)},
		{"subject name short unicode escape", strictBody("NAME", `registry\u12`)},
		{"predicateType lone surrogate", strings.Replace(top, `stella.ops/sbom@v1`, `stella.ops/sbom@v1\ud800`, 1)},
		{"predicate value invalid UTF-8", strictBody("PRED", "{\"s\":\"registry\xc3\x28app\"}")},
		{"predicate value lone surrogate", strictBody("PRED", `{"s":"\ud800"}`)},
		{"predicate name invalid UTF-8", strictBody("PRED", "{\"s\xff\":1}")},
		{"predicate name lone surrogate", strictBody("PRED", `{"\udfff":1}`)},
		{"predicate nested lone surrogate", strictBody("PRED", `{"a":[{"b":["\ud800x"]}]}`)},
		{"poe value invalid UTF-8", strictBody("POE", "p\xc3\x28")},
		{"poe value lone surrogate", strictBody("POE", `p\ud800`)},
		{"key id lone surrogate", strictBody("KEY", `k\ud800`)},
		{"viewSet lone surrogate", strictBody("VIEW", `v\udbff`)},
		{"member name invalid UTF-8", field("\"x\xff\"", `1`)},
		// Duplicate and case-variant names, at every depth.
		{"duplicate subject", after(`"subject"`, `[{"name":"attacker","digest":{"sha256":"`+hexA+`"}}]`)},
		{"SUBJECT after subject", after(`"SUBJECT"`, `[{"name":"attacker","digest":{"sha256":"`+hexA+`"}}]`)},
		{"Subject instead of subject", strings.Replace(top, `"subject"`, `"Subject"`, 1)},
		{"duplicate subject, escaped name", after(`"\u0073ubject"`, `[{"name":"attacker","digest":{"sha256":"`+hexA+`"}}]`)},
		{"duplicate predicateType", after(`"predicateType"`, `"stella.ops/vex@v1"`)},
		{"PredicateType", after(`"PredicateType"`, `"stella.ops/vex@v1"`)},
		{"duplicate predicate", after(`"predicate"`, `{"n":2}`)},
		{"duplicate scannerImageDigest", after(`"scannerImageDigest"`, `"sha256:`+strings.Repeat("b", 64)+`"`)},
		{"ScannerImageDigest", after(`"ScannerImageDigest"`, `"sha256:`+strings.Repeat("b", 64)+`"`)},
		{"duplicate poe", after(`"poe"`, `{"format":"opaque","value":"other"}`)},
		{"duplicate poe.value", strings.Replace(top, `"value":"p"`, `"value":"p","value":"q"`, 1)},
		{"poe.VALUE", strings.Replace(top, `"value":"p"`, `"value":"p","VALUE":"q"`, 1)},
		{"duplicate policy", after(`"policy"`, `{"digest":"sha256:`+hexA+`"}`)},
		{"duplicate options", after(`"options"`, `{"mode":"keyless"}`)},
		{"duplicate options.mode", strings.Replace(top, `"mode":"keyful"`, `"mode":"keyful","mode":"keyless"`, 1)},
		{"duplicate subject name", strings.Replace(top, `"name":"registry.example/app"`, `"name":"registry.example/app","name":"x"`, 1)},
		{"duplicate digest algorithm", strings.Replace(top, `"sha256":"`+hexA+`"`, `"sha256":"`+hexA+`","sha256":"`+strings.Repeat("b", 64)+`"`, 1)},
		{"duplicate in predicate", strictBody("PRED", `{"n":1,"n":2}`)},
		{"duplicate nested in predicate", strictBody("PRED", `{"a":{"b":{"c":1,"c":1}}}`)},
		{"duplicate in predicate array", strictBody("PRED", `{"a":[{},{"c":1,"d":2,"c":3}]}`)},
		{"duplicate in predicate, escaped", strictBody("PRED", `{"ab":1,"a\u0062":2}`)},
		{"duplicate in predicate, many members", strictBody("PRED", `{`+manyMembers(100)+`,"m7":0}`)},
		// Shape.
		{"trailing data", top + `{}`},
		{"trailing garbage", top + `x`},
		{"two values", top + ` ` + top},
		{"deep predicate", strictBody("PRED", `{"a":`+strings.Repeat("[", MaxJSONDepth)+strings.Repeat("]", MaxJSONDepth)+`}`)},
		{"deep predicate objects", strictBody("PRED", strings.Repeat(`{"a":`, MaxJSONDepth+1)+`1`+strings.Repeat("}", MaxJSONDepth+1))},
		{"byte order mark", "\xef\xbb\xbf" + top},
		{"unterminated", top[:len(top)-1]},
		{"single quotes", strings.Replace(top, `"poe"`, `'poe'`, 1)},
		{"trailing comma", strings.Replace(top, `"keyIds":["k"]`, `"keyIds":["k",]`, 1)},
		{"comment", strings.Replace(top, `{"subject"`, `{/**/"subject"`, 1)},
		{"wrong type string for object", strings.Replace(top, `"poe":{"format":"jwt","value":"p"}`, `"poe":"jwt"`, 1)},
		{"wrong type number for string", strings.Replace(top, `"value":"p"`, `"value":1`, 1)},
		{"wrong type bool for array", strings.Replace(top, `"keyIds":["k"]`, `"keyIds":true`, 1)},
		{"unknown top field", field(`"x"`, `1`)},
		{"unknown nested field", strings.Replace(top, `"mode"`, `"modes":"a","mode"`, 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := DecodeSignRequest([]byte(c.body))
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("got %v (%+v), want ErrInvalidRequest", err, r)
			}
		})
	}
}

func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"m` + itoa(i) + `":0`)
	}
	return b.String()
}

func itoa(i int) string {
	b, _ := json.Marshal(i)
	return string(b)
}

// TestStrictDecodeAccepts: the RFC 8785 value rule lets through every number
// whose canonical form is the same decimal, and valid escapes and UTF-8 pass.
func TestStrictDecodeAccepts(t *testing.T) {
	for _, pred := range []string{
		`{"n":1.0}`, `{"n":1e2}`, `{"n":1E2}`, `{"n":1e+2}`, `{"n":-0}`, `{"n":-0.0}`, `{"n":0e10}`, `{"n":0.1}`,
		`{"n":9007199254740992}`, `{"n":-9007199254740992}`, `{"n":100e-2}`, `{"n":1.5}`, `{"n":-1.25e-7}`,
		`{"n":5e-324}`, `{"n":1.7976931348623157e308}`, `{"n":1e21}`, `{"n":123456789012345680000}`,
		`{"n":0.000001}`, `{"n":1e-7}`, `{"n":0.30000000000000004}`, `{"n":1e22}`, `{"n":9007199254740994}`,
		`{"n":4.35}`, `{"n":1e23}`, `{"n":0.10}`, `{"n":00.5e1}`[:0] + `{"n":10.50e-1}`,
		`{"s":"\ud83d\ude00 \u00e9 é 😀 \/ \" \\ \b\f\n\r\t \u0000 \u2028"}`,
		`{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}`,
		`{"` + manyMembers(100)[1:] + `}`,
		`{"d":` + strings.Repeat("[", MaxJSONDepth-1) + strings.Repeat("]", MaxJSONDepth-1) + `}`,
	} {
		t.Run(pred, func(t *testing.T) {
			if _, err := DecodeSignRequest([]byte(strictBody("PRED", pred))); err != nil {
				t.Fatal(err)
			}
			if err := CheckJSONObject([]byte(pred)); err != nil {
				t.Fatal(err)
			}
		})
	}
	for _, name := range []string{`caf\u00e9`, "café", `\ud83d\ude00`, `a\/b`} {
		t.Run(name, func(t *testing.T) {
			r, err := DecodeSignRequest([]byte(strictBody("NAME", name)))
			if err != nil {
				t.Fatal(err)
			}
			var want string
			if err := json.Unmarshal([]byte(`"`+name+`"`), &want); err != nil || r.Subject[0].Name != want {
				t.Fatalf("name %q, want %q", r.Subject[0].Name, want)
			}
		})
	}
}

// TestStrictDecodeKeepsPredicateBytes: the predicate is kept as sent,
// whitespace, member order and number spelling included.
func TestStrictDecodeKeepsPredicateBytes(t *testing.T) {
	pred := "{ \"b\" : 1.0 ,\n\t\"a\":[ ], \"c\":\"\\u00e9\" }"
	r, err := DecodeSignRequest([]byte(strictBody("PRED", pred)))
	if err != nil {
		t.Fatal(err)
	}
	if string(r.Predicate) != pred {
		t.Fatalf("predicate %q, want %q", r.Predicate, pred)
	}
}

// TestDecodeStrictAdminShapes: the admin bodies (small structs of strings
// and bools) get the same rules.
func TestDecodeStrictAdminShapes(t *testing.T) {
	type body struct {
		Reason string `json:"reason"`
		For    string `json:"for"`
		Rotate bool   `json:"rotate"`
	}
	for name, in := range map[string]string{
		"case variant":        `{"Reason":"maintenance"}`,
		"duplicate":           `{"reason":"a","reason":"maintenance"}`,
		"duplicate bool":      `{"rotate":false,"rotate":true}`,
		"invalid UTF-8":       "{\"reason\":\"main\xfftenance\"}",
		"lone surrogate":      `{"reason":"\ud800"}`,
		"unknown":             `{"reason":"x","why":"y"}`,
		"trailing":            `{"reason":"x"} x`,
		"empty":               ``,
		"not an object":       `"reason"`,
		"wrong type":          `{"rotate":"yes"}`,
		"number for bool":     `{"rotate":1}`,
		"null then duplicate": `{"reason":null,"reason":"x"}`,
	} {
		t.Run(name, func(t *testing.T) {
			var b body
			if err := DecodeStrict([]byte(in), &b); !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("got %v (%+v), want ErrInvalidRequest", err, b)
			}
		})
	}
	var b body
	if err := DecodeStrict([]byte(" {\"reason\":\"r\\u00e9\",\"for\":\"30m\",\"rotate\":true}\n"), &b); err != nil || b != (body{"ré", "30m", true}) {
		t.Fatalf("%+v %v", b, err)
	}
}

// TestStrictErrorsDoNotEchoPayload: errors name schema fields and offsets,
// never predicate names or values (they reach the caller's problem detail
// and the audit log).
func TestStrictErrorsDoNotEchoPayload(t *testing.T) {
	for _, pred := range []string{
		`{"s3cr3t":1,"s3cr3t":2}`, `{"s3cr3t":1e-400}`, `{"s3cr3t":"\ud800"}`, "{\"s3cr3t\":\"\xff\"}",
	} {
		_, err := DecodeSignRequest([]byte(strictBody("PRED", pred)))
		if err == nil || strings.Contains(err.Error(), "s3cr3t") || strings.Contains(err.Error(), "400") {
			t.Errorf("%s: %v", pred, err)
		}
	}
}

func TestCheckNumber(t *testing.T) {
	for _, n := range []string{"0", "-0", "1.0", "1e2", "0.1", "9007199254740992", "5e-324", "1.7976931348623157e308", "2.5", "1e-7", "123e-20"} {
		if err := CheckNumber(n); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	for _, n := range []string{"", "-", "1e-400", "9007199254740993.0", "9007199254740993e0", "90071992547409930e-1",
		"1.00000000000000000001", "0.1000000000000000055511151231257827", "1e400", "1e999999999", "1.7976931348623159e308",
		"2e-324", "01", "1.", ".1", "1e", "+1", "Infinity", "0x1p3", "1_000", " 1"} {
		if err := CheckNumber(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

// TestNumberRuleCost: refusing or accepting a number allocates nothing,
// however large its exponent (the exponent is read with saturation and
// never sizes anything).
func TestNumberRuleCost(t *testing.T) {
	for _, n := range []string{"1e999999999", "1e-999999999999999999999", "-1" + strings.Repeat("0", 400) + "e-400", "0.1", "9007199254740993.0"} {
		if a := testing.AllocsPerRun(100, func() { _ = CheckNumber(n) }); a != 0 {
			t.Errorf("CheckNumber(%.20q…) allocates %v times", n, a)
		}
	}
}
