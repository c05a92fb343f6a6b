package proto

import (
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

// richEmbedded and rich cover every kind the strict decoder maps, to hold
// it to encoding/json's mapping on input both accept.
type richEmbedded struct {
	Promoted string `json:"promoted"`
}

type rich struct {
	richEmbedded
	S       string            `json:"s"`
	B       bool              `json:"b,omitempty"`
	I       int               `json:"i"`
	I8      int8              `json:"i8"`
	U       uint32            `json:"u"`
	F       float64           `json:"f"`
	P       *string           `json:"p"`
	Bytes   []byte            `json:"bytes"`
	Raw     json.RawMessage   `json:"raw"`
	Any     any               `json:"any"`
	M       map[string]int    `json:"m"`
	MS      map[string]string `json:"ms"`
	L       []string          `json:"l"`
	T       time.Time         `json:"t"`
	Addr    netip.Addr        `json:"addr"`
	Next    *rich             `json:"next"`
	NoTag   string
	skipped string
	Ignored string `json:"-"`
}

var richSeeds = []string{
	`{"promoted":"p","s":"x\u00e9","b":true,"i":-3,"i8":127,"u":7,"f":1.5e-3,"p":"q","bytes":"aGk=","raw":{"z":[1,2.0]},` +
		`"any":{"a":[1,"b",null,true,{"c":1e2}]},"m":{"a":1},"ms":{"k":"v","n":null},"l":["a"],"t":"2026-01-02T03:04:05Z",` +
		`"addr":"192.0.2.1","next":{"s":"inner","next":null},"NoTag":"n"}`,
	`{"s":null,"b":null,"i":null,"p":null,"bytes":null,"raw":null,"any":null,"m":null,"l":null,"next":null,"t":null}`,
	`{"l":[],"m":{},"ms":{},"any":[],"raw":[]}`,
	`{"i":1.0}`, `{"i":1e2}`, `{"i8":128}`, `{"u":-1}`, `{"u":-0}`, `{"f":1e400}`, `{"t":"yesterday"}`, `{"addr":"x"}`,
	`{"bytes":"!!"}`, `{"NOTAG":"n"}`, `{"notag":"n"}`, `{"skipped":"x"}`, `{"Ignored":"x"}`, `{"-":"x"}`,
	`{"next":{"next":{"next":{"s":"deep"}}}}`, `{"next":{"s":"a","S":"b"}}`, `{"promoted":"a","Promoted":"b"}`,
	`{"any":1e21}`, `{"f":-0}`, `{"ms":{"a":"b","c":"d"}}`, `{"raw":"x"}`, `{"bytes":""}`, `{"i":-0,"u":0}`,
	`{"ms":{"k":1}}`, `{"m":{"a":"1"}}`, `{"l":"a"}`, `{"s":1}`, `{"b":"true"}`,
}

// TestStrictMatchesEncodingJSON: where the strict decoder accepts, it
// decodes exactly what encoding/json decodes.
func TestStrictMatchesEncodingJSON(t *testing.T) {
	accepted := 0
	for _, in := range richSeeds {
		var got, want rich
		err := DecodeStrict([]byte(in), &got)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("%s: error not ErrInvalidRequest: %v", in, err)
			}
			continue
		}
		accepted++
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Errorf("%s: strict accepts, encoding/json refuses: %v", in, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\nstrict        %+v\nencoding/json %+v", in, got, want)
		}
	}
	if accepted < 10 {
		t.Fatalf("only %d seeds accepted", accepted)
	}
	for _, in := range []string{`{"NOTAG":"n"}`, `{"notag":"n"}`, `{"skipped":"x"}`, `{"Ignored":"x"}`, `{"i":1.0}`, `{"u":-1}`, `{"t":"yesterday"}`, `{"next":{"s":"a","S":"b"}}`} {
		var r rich
		if err := DecodeStrict([]byte(in), &r); !errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%s: got %v, want ErrInvalidRequest", in, err)
		}
	}
}

// TestStrictUnsupportedTypes: types the decoder does not map are a
// programming error, not an invalid request.
func TestStrictUnsupportedTypes(t *testing.T) {
	type clash struct {
		richEmbedded
		X string `json:"promoted"` // the embedded field's name
	}
	type embeddedPtr struct{ *richEmbedded }
	for _, v := range []any{new(float32), new([2]int), new(error), new(chan int), new(clash), new(embeddedPtr), new(map[int]string), struct{}{}, nil} {
		err := DecodeStrict([]byte(`{}`), v)
		if err == nil || errors.Is(err, ErrInvalidRequest) {
			t.Errorf("%T: got %v, want a non-request error", v, err)
		}
	}
}

// TestStrictPathInErrors: errors name the field by schema path.
func TestStrictPathInErrors(t *testing.T) {
	for in, want := range map[string]string{
		`{"next":{"next":{"l":["a",1]}}}`: "next.next.l[1]: want a JSON string",
		`{"ms":{"k":"\ud800"}}`:           "ms: lone surrogate",
		`{"raw":{"a":1,"a":1}}`:           "raw: duplicate member name",
		`{"S":"x"}`:                       `unknown field "S" (names are case-sensitive; the field is "s")`,
	} {
		var r rich
		if err := DecodeStrict([]byte(in), &r); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", in, err, want)
		}
	}
}
