package proto

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// FuzzDecodeSignRequest: decoding never panics; anything accepted
// re-validates and re-encodes to a request that decodes again.
func FuzzDecodeSignRequest(f *testing.F) {
	if b, err := os.ReadFile("testdata/sign_request.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte(`{"subject":[{"name":"a","digest":{"sha256":"` + hexA + `"}}],"predicateType":"t","predicate":{"a":[1,2,{"b":null}]}}`))
	f.Add([]byte(`{"subject":[],"predicateType":"","predicate":null}`))
	f.Add([]byte(`{"predicate":{"n":9007199254740993}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeSignRequest(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error not ErrInvalidRequest: %v", err)
			}
			return
		}
		again, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeSignRequest(again); err != nil {
			t.Fatalf("accepted request does not round-trip: %v\n%s", err, again)
		}
	})
}
