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

// FuzzDecodeBatchRequest: decoding never panics; a refused batch is
// ErrInvalidRequest; an accepted one has 1–64 items, each exactly one of a
// valid request or an ErrInvalidRequest failure, and re-encodes to a batch
// that decodes to the same items.
func FuzzDecodeBatchRequest(f *testing.F) {
	if b, err := os.ReadFile("testdata/batch_request.json"); err == nil {
		f.Add(b)
	}
	if b, err := os.ReadFile("testdata/sign_request.json"); err == nil {
		f.Add([]byte(`{"requests":[` + string(b) + `,1,{}]}`))
	}
	f.Add([]byte(`{"requests":[]}`))
	f.Add([]byte(`{"requests":[{"subject":[{"name":"a","digest":{"sha256":"` + hexA + `"}}],"predicateType":"t","predicate":{},"poe":{"format":"jwt","value":"v"}}],"poe":{"format":"jwt","value":"w"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeBatchRequest(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("error not ErrInvalidRequest: %v", err)
			}
			return
		}
		if len(d.Items) == 0 || len(d.Items) > MaxBatchItems {
			t.Fatalf("%d items accepted", len(d.Items))
		}
		again := BatchRequest{ScannerImageDigest: d.ScannerImageDigest, PoE: d.PoE}
		for i, it := range d.Items {
			if (it.Request == nil) == (it.Err == nil) {
				t.Fatalf("item %d: request %v and err %v", i, it.Request, it.Err)
			}
			if it.Err != nil {
				if !errors.Is(it.Err, ErrInvalidRequest) {
					t.Fatalf("item %d error not ErrInvalidRequest: %v", i, it.Err)
				}
				continue
			}
			again.Requests = append(again.Requests, *it.Request)
		}
		if len(again.Requests) == 0 {
			return
		}
		enc, err := json.Marshal(&again)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := DecodeBatchRequest(enc)
		if err != nil {
			t.Fatalf("accepted batch does not round-trip: %v\n%s", err, enc)
		}
		for i, it := range d2.Items {
			if it.Err != nil {
				t.Fatalf("valid item %d refused after round trip: %v", i, it.Err)
			}
		}
	})
}
