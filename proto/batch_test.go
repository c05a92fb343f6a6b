package proto

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func exampleBatch() *BatchRequest {
	sbom := *exampleRequest()
	sbom.PoE, sbom.ScannerImageDigest = nil, ""
	report := sbom
	report.PredicateType = ReportPredicateShort
	report.Predicate = json.RawMessage(`{"verdict":"pass","findings":{"critical":0,"high":2}}`)
	report.Policy = &Policy{Digest: "sha256:" + hexA, ViewSet: []string{"prod"}}
	vex := sbom
	vex.PredicateType = "stella.ops/vex@v1"
	vex.Predicate = json.RawMessage(`{"format":"openvex-0.2.0","statementCount":1}`)
	return &BatchRequest{
		Requests:           []SignRequest{sbom, report, vex},
		ScannerImageDigest: "sha256:" + hexA,
		PoE:                &PoE{Format: "jwt", Value: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"},
	}
}

func exampleBatchResponse() *BatchResponse {
	ok := &SignResponse{
		RequestID: "req-1",
		AuditID:   "aud-1",
		Envelope: Envelope{
			PayloadType: PayloadTypeInToto,
			Payload:     []byte(`{"_type":"https://in-toto.io/Statement/v1"}`),
			Signatures:  []Signature{{KeyID: "tenant-a-2026", Sig: []byte{0x30, 0x45, 0x02}}},
		},
		Bundles: []json.RawMessage{json.RawMessage(`{"mediaType":"` + MediaTypeBundle + `"}`)},
		SigningIdentity: []SigningIdentity{{
			Mode: ModeKeyful, KeyID: "tenant-a-2026", KeySource: "file", Algorithm: "ecdsa-p256-sha256",
			PublicKeyHint: "aGludA==", CertificateChain: []string{}, BundleHash: "sha256:" + hexA,
		}},
		PayloadDigest: "sha256:" + hexA,
		BundleHash:    "sha256:" + hexA,
	}
	return &BatchResponse{RequestID: "req-1", Results: []BatchResult{
		{Status: 200, SignResponse: ok},
		{Status: 400, Problem: NewProblem(CodePredicateNotAllowed, "predicate type not allowed for this tenant", "req-1")},
		{Status: 429, Problem: NewProblem(CodeQuotaExhausted, "daily artifact quota exhausted", "req-1")},
	}}
}

func TestGoldenBatch(t *testing.T) {
	golden(t, "batch_request.json", exampleBatch())
	golden(t, "batch_response.json", exampleBatchResponse())
}

// TestGoldenBatchDecode: the golden files decode back to the same values.
func TestGoldenBatchDecode(t *testing.T) {
	b, err := os.ReadFile("testdata/batch_request.json")
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeBatchRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	want := exampleBatch()
	if d.ScannerImageDigest != want.ScannerImageDigest || *d.PoE != *want.PoE || len(d.Items) != 3 {
		t.Fatalf("decoded %+v", d)
	}
	for i, it := range d.Items {
		if it.Err != nil || it.Request == nil {
			t.Fatalf("item %d: %v", i, it.Err)
		}
		// Items inherit the batch's PoE and scanner digest.
		w := want.Requests[i]
		w.PoE, w.ScannerImageDigest = want.PoE, want.ScannerImageDigest
		got, _ := json.Marshal(it.Request)
		exp, _ := json.Marshal(&w)
		if string(got) != string(exp) {
			t.Errorf("item %d:\n got %s\nwant %s", i, got, exp)
		}
		if !json.Valid(it.Raw) || !strings.Contains(string(it.Raw), w.PredicateType) {
			t.Errorf("item %d raw bytes %s", i, it.Raw)
		}
	}

	rb, err := os.ReadFile("testdata/batch_response.json")
	if err != nil {
		t.Fatal(err)
	}
	var resp BatchResponse
	if err := json.Unmarshal(rb, &resp); err != nil {
		t.Fatal(err)
	}
	if err := resp.Check(3); err != nil {
		t.Fatal(err)
	}
	if !resp.Results[0].OK() || resp.Results[0].Envelope.Signatures[0].KeyID != "tenant-a-2026" || resp.Results[0].AuditID != "aud-1" {
		t.Errorf("result 0 = %+v", resp.Results[0])
	}
	if resp.Results[1].OK() || resp.Results[1].Problem.Code != CodePredicateNotAllowed || resp.Results[1].SignResponse != nil {
		t.Errorf("result 1 = %+v", resp.Results[1])
	}
	if err := resp.Check(4); err == nil {
		t.Error("Check accepted 3 results for 4 requests")
	}
}

func batchOf(items ...string) string {
	return `{"requests":[` + strings.Join(items, ",") + `]}`
}

func TestDecodeBatchRequestRejects(t *testing.T) {
	good, _ := json.Marshal(exampleRequest())
	item := string(good)
	many := make([]string, MaxBatchItems+1)
	for i := range many {
		many[i] = item
	}
	other := strings.Replace(item, `"scannerImageDigest":"sha256:`+hexA, `"scannerImageDigest":"sha256:`+strings.Repeat("b", 64), 1)
	otherPoE := strings.Replace(item, `"value":"eyJ`, `"value":"xeyJ`, 1)
	cases := map[string]string{
		"empty body":                ``,
		"not an object":             `[]`,
		"malformed":                 `{"requests":[` + item,
		"trailing data":             batchOf(item) + `{}`,
		"no requests member":        `{}`,
		"null requests":             `{"requests":null}`,
		"empty requests":            `{"requests":[]}`,
		"65 requests":               batchOf(many...),
		"requests not an array":     `{"requests":{}}`,
		"unknown top-level member":  `{"requests":[` + item + `],"options":{}}`,
		"bad top-level digest":      `{"requests":[` + item + `],"scannerImageDigest":"sha256:xyz"}`,
		"bad top-level poe":         `{"requests":[` + item + `],"poe":{"format":"saml","value":"x"}}`,
		"empty top-level poe value": `{"requests":[` + item + `],"poe":{"format":"jwt","value":""}}`,
		"items disagree on scanner": batchOf(item, other),
		"item disagrees with batch": `{"requests":[` + other + `],"scannerImageDigest":"sha256:` + hexA + `"}`,
		"items disagree on poe":     batchOf(item, otherPoE),
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			d, err := DecodeBatchRequest([]byte(body))
			if !errors.Is(err, ErrInvalidRequest) {
				t.Fatalf("got %v, %v; want ErrInvalidRequest", d, err)
			}
			if d != nil {
				t.Fatal("a refused batch returned items")
			}
		})
	}
}

// TestDecodeBatchItemErrors: a bad item is that item's failure only; the
// good items around it decode.
func TestDecodeBatchItemErrors(t *testing.T) {
	good, _ := json.Marshal(exampleRequest())
	item := string(good)
	bad := map[string]string{
		"malformed item (not an object)": `1`,
		"item with an unknown member":    strings.Replace(item, `{"subject"`, `{"x":1,"subject"`, 1),
		"item with an empty subject":     `{"subject":[],"predicateType":"a","predicate":{}}`,
		"item report without policy":     strings.Replace(item, `stella.ops/sbom@v1`, ReportPredicateShort, 1),
		"item with a null":               `null`,
	}
	for name, b := range bad {
		t.Run(name, func(t *testing.T) {
			d, err := DecodeBatchRequest([]byte(batchOf(item, b, item)))
			if err != nil {
				t.Fatalf("batch refused: %v", err)
			}
			if len(d.Items) != 3 {
				t.Fatalf("%d items", len(d.Items))
			}
			for _, i := range []int{0, 2} {
				if d.Items[i].Err != nil || d.Items[i].Request == nil {
					t.Errorf("good item %d: %v", i, d.Items[i].Err)
				}
			}
			it := d.Items[1]
			if it.Request != nil || !errors.Is(it.Err, ErrInvalidRequest) || !strings.Contains(it.Err.Error(), "requests[1]") {
				t.Errorf("bad item: request %v, err %v", it.Request, it.Err)
			}
			if string(it.Raw) != b {
				t.Errorf("raw %q, want %q", it.Raw, b)
			}
		})
	}
}

func TestDecodeBatchLimits(t *testing.T) {
	good, _ := json.Marshal(exampleRequest())
	for _, n := range []int{1, MaxBatchItems} {
		items := make([]string, n)
		for i := range items {
			items[i] = string(good)
		}
		d, err := DecodeBatchRequest([]byte(batchOf(items...)))
		if err != nil || len(d.Items) != n {
			t.Errorf("%d items: %v", n, err)
		}
	}
}

func TestBatchResponseCheck(t *testing.T) {
	sr := &SignResponse{RequestID: "r"}
	p := NewProblem(CodeInvalidRequest, "", "")
	cases := []struct {
		name string
		r    BatchResult
		ok   bool
	}{
		{"signed", BatchResult{Status: 200, SignResponse: sr}, true},
		{"refused", BatchResult{Status: 400, Problem: p}, true},
		{"200 without response", BatchResult{Status: 200}, false},
		{"200 with problem", BatchResult{Status: 200, SignResponse: sr, Problem: p}, false},
		{"error without problem", BatchResult{Status: 503}, false},
		{"error with response", BatchResult{Status: 400, SignResponse: sr, Problem: p}, false},
		{"problem without code", BatchResult{Status: 400, Problem: &Problem{Status: 400}}, false},
		{"status 302", BatchResult{Status: 302, Problem: p}, false},
		{"status 0", BatchResult{}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := BatchResponse{Results: []BatchResult{c.r}}
			if err := r.Check(1); (err == nil) != c.ok {
				t.Errorf("Check = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestValidateIdempotencyKey(t *testing.T) {
	good := []string{"a", "0f8fad5b-d9cb-469f-a165-70867728950e", strings.Repeat("k", MaxIdempotencyKeyLen), `"sf-string"`, "with inner space", "~!@#$%^&*()_+{}|:<>?"}
	for _, k := range good {
		if err := ValidateIdempotencyKey(k); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	bad := map[string]string{
		"empty":           "",
		"256 characters":  strings.Repeat("k", MaxIdempotencyKeyLen+1),
		"leading space":   " s3cr3t",
		"trailing space":  "s3cr3t ",
		"tab":             "a\tb",
		"newline":         "a\nb",
		"NUL":             "a\x00b",
		"DEL":             "a\x7fb",
		"non-ASCII UTF-8": "clé",
		"Latin-1 byte":    "cl\xe9",
	}
	for name, k := range bad {
		t.Run(name, func(t *testing.T) {
			err := ValidateIdempotencyKey(k)
			if err == nil {
				t.Fatalf("%q accepted", k)
			}
			if len(k) > 3 && strings.Contains(err.Error(), k) {
				t.Errorf("error quotes the key: %v", err)
			}
		})
	}
}

func TestIsToken68(t *testing.T) {
	good := []string{"a", "eyJhbGciOiJFUzI1NiJ9.e30.c2ln", "abc==", "A-._~+/9", "x="}
	bad := []string{"", "=", "==abc", "a b", "a=b", "tok\n", "a\r\nb", "tok,", `"tok"`, "é"}
	for _, s := range good {
		if !IsToken68(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range bad {
		if IsToken68(s) {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestDescribeJSONError(t *testing.T) {
	type target struct {
		A string `json:"a"`
		N int    `json:"n"`
		B []byte `json:"b"`
	}
	strict := func(b string) error {
		var v target
		dec := json.NewDecoder(strings.NewReader(b))
		dec.DisallowUnknownFields()
		return dec.Decode(&v)
	}
	cases := []struct {
		name, in, want, secret string
	}{
		{"syntax", `{"a":"secret-1"x}`, "malformed JSON at offset", "secret-1"},
		{"wrong type, number", `{"a":123456789}`, `member "a" has the wrong JSON type (number, want string)`, "123456789"},
		{"wrong type, string", `{"n":"secret-2"}`, `member "n" has the wrong JSON type (string, want int)`, "secret-2"},
		{"overflow", `{"n":99999999999999999999}`, `member "n" has the wrong JSON type (number, want int)`, "99999999999999999999"},
		{"base64", `{"b":"secret-3!"}`, "invalid base64", "secret-3"},
		{"unknown member", `{"zz":"secret-4"}`, `unknown member "zz"`, "secret-4"},
		{"empty", ``, "truncated or empty JSON", ""},
		{"truncated", `{"a":`, "truncated or empty JSON", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := strict(c.in)
			if err == nil {
				t.Fatal("no error")
			}
			got := DescribeJSONError(err)
			if !strings.Contains(got, c.want) {
				t.Errorf("got %q, want it to contain %q", got, c.want)
			}
			if c.secret != "" && strings.Contains(got, c.secret) {
				t.Errorf("%q quotes the input %q", got, c.secret)
			}
		})
	}
	if got := DescribeJSONError(fmt.Errorf("wrapped: %w", errors.New("other"))); got != "malformed JSON" {
		t.Errorf("other error: %q", got)
	}
	long := `{"` + strings.Repeat("m", 300) + `":1}`
	if got := DescribeJSONError(strict(long)); len(got) > 100 {
		t.Errorf("long member name not bounded: %d bytes", len(got))
	}
}
