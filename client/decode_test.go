package client

import (
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/proto"
)

func TestDecodeSignResponseMatchesStdlib(t *testing.T) {
	cases := map[string]string{
		"agent-shaped":        string(realSignResponse(1024)),
		"golden":              readGolden(t, "sign_response.json"),
		"unknown members":     `{"requestId":"r","future":{"a":["}",1]},"envelope":{"payload":"AQID","x":null},"bundles":[{"a":1},null,"s"]}`,
		"case-folded name":    `{"RequestID":"r","envelope":{"Payload":"AQID"}}`,
		"escaped name":        `{"request\u0049d":"r"}`,
		"escaped payload":     `{"envelope":{"payload":"AQ\u0049D"}}`,
		"payload null":        `{"envelope":{"payload":null}}`,
		"payload empty":       `{"envelope":{"payload":""},"bundles":[]}`,
		"duplicate envelope":  `{"envelope":{"payloadType":"a"},"envelope":{"payload":"AQID"}}`,
		"duplicate bundles":   `{"bundles":[{"a":1}],"bundles":[{"b":2},{"c":3}]}`,
		"envelope null":       `{"envelope":null}`,
		"bundles null":        `{"bundles":null}`,
		"whitespace":          " \n{ \"requestId\" : \"r\" , \"bundles\" : [ {\"a\" : \"\\\"}\"} , { } ] }\t",
		"null body":           `null`,
		"bad base64":          `{"envelope":{"payload":"!!"}}`,
		"wrong type":          `{"requestId":1}`,
		"bundles not array":   `{"bundles":{}}`,
		"truncated":           `{"requestId":"r"`,
		"array body":          `[]`,
		"trailing data":       `{}x`,
		"quota":               `{"quota":{"plan":"p","remainingToday":3},"quota":{"plan":"q"}}`,
		"backslash in string": `{"requestId":"a\\\\","bundles":[{"x":"\\\\\"]"}]}`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) { sameAsStdlib(t, []byte(body)) })
	}
}

func readGolden(t *testing.T, name string) string {
	b, err := os.ReadFile("../proto/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sameAsStdlib(t *testing.T, body []byte) {
	t.Helper()
	var got, want proto.SignResponse
	errGot := decodeBody(body, &got)
	errWant := json.Unmarshal(body, &want)
	if (errGot == nil) != (errWant == nil) {
		t.Fatalf("%q: fast %v, encoding/json %v", body, errGot, errWant)
	}
	if errGot == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\nfast   %#v\nstdlib %#v", body, got, want)
	}
	var bgot, bwant proto.BatchResponse
	batch := append(append([]byte(`{"requestId":"b","results":[{"status":200,`), body[min(1, len(body)):]...), []byte(`]}`)...)
	if len(body) == 0 || body[0] != '{' {
		batch = []byte(`{"results":[` + string(body) + `]}`)
	}
	errGot = decodeBody(batch, &bgot)
	errWant = json.Unmarshal(batch, &bwant)
	if (errGot == nil) != (errWant == nil) {
		t.Fatalf("batch %q: fast %v, encoding/json %v", batch, errGot, errWant)
	}
	if errGot == nil && !reflect.DeepEqual(bgot, bwant) {
		t.Fatalf("batch %q:\nfast   %#v\nstdlib %#v", batch, bgot, bwant)
	}
}

// FuzzDecodeSignResponse: the fast decoding gives exactly what
// encoding/json gives, errors included, for sign and batch responses.
func FuzzDecodeSignResponse(f *testing.F) {
	f.Add(realSignResponse(64))
	f.Add([]byte(`{"requestId":"r","envelope":{"payload":"AQID","signatures":[{"keyid":"k","sig":"AQ=="}]},"bundles":[{"a":"\"]}"}]}`))
	f.Add([]byte(`{"RequestId":"x","envelope":{"PAYLOAD":"AQID"}}`))
	f.Add([]byte(`{"results":[{"status":400,"problem":{"code":"x"}}]}`))
	f.Fuzz(func(t *testing.T, body []byte) { sameAsStdlib(t, body) })
}

// FuzzValidJSON: validJSON never accepts what json.Valid refuses.
func FuzzValidJSON(f *testing.F) {
	for _, s := range []string{`{}`, `[1,2.5e-3,-0,"a\u00e9\n",true,false,null]`, `{"a":{"b":[]}}`, `01`, `1.`, `"\x"`, "\"\x01\"", `[1,]`, `{"a"}`, ` "x" `, `-`, `1e+`, "\"\xff\""} {
		f.Add([]byte(s))
	}
	f.Add([]byte(strings.Repeat("[", 10001) + strings.Repeat("]", 10001)))
	f.Fuzz(func(t *testing.T, b []byte) {
		if validJSON(b) && !json.Valid(b) {
			t.Fatalf("validJSON accepts %q, json.Valid refuses it", b)
		}
		if !validJSON(b) && json.Valid(b) && !strings.Contains(string(b), strings.Repeat("[", 100)) && !strings.Contains(string(b), strings.Repeat("{", 100)) {
			t.Fatalf("validJSON refuses valid JSON %q", b)
		}
	})
}
