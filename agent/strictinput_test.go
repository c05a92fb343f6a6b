package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// TestStrictInputRefused: every altered-input finding of issue #12 item 1
// (each was signed, altered, with a 200 before the strict decoder) is now a
// 400 invalid_request through the real agent, nothing is signed, and the
// denial is in the audit log with the request id the caller got.
func TestStrictInputRefused(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	goodReq := signRequest()
	goodReq.PoE = &proto.PoE{Format: "jwt", Value: h.Creds.PoE}
	goodReq.ScannerImageDigest = h.Creds.ScannerImageDigest
	good, err := json.Marshal(goodReq)
	if err != nil {
		t.Fatal(err)
	}
	g := string(good)
	replace := func(old, new string) string {
		if !strings.Contains(g, old) {
			t.Fatalf("request lacks %q", old)
		}
		return strings.Replace(g, old, new, 1)
	}
	appendMember := func(member string) string { return strings.TrimSuffix(g, "}") + "," + member + "}" }
	number := func(n string) string { return replace(`412`, n) }
	attacker := `[{"name":"attacker.example/evil","digest":{"sha256":"` + strings.Repeat("e", 64) + `"}}]`
	cases := []struct{ name, body string }{
		{"number 9007199254740993.0", number(`9007199254740993.0`)},
		{"number 9007199254740993e0", number(`9007199254740993e0`)},
		{"number 90071992547409930e-1", number(`90071992547409930e-1`)},
		{"number 1.00000000000000000001", number(`1.00000000000000000001`)},
		{"number 1e-400", number(`1e-400`)},
		{"number 0.1000000000000000055511151231257827", number(`0.1000000000000000055511151231257827`)},
		{"number 1e400", number(`1e400`)},
		{"number 1e999999999", number(`1e999999999`)},
		{"subject name invalid UTF-8", replace(`"name":"registry.example/app"`, "\"name\":\"registry\xc3\x28app\"")},
		{"subject name lone surrogate", replace(`"name":"registry.example/app"`, `"name":"registry\ud800app"`)},
		{"predicate invalid UTF-8", replace(`"format":"cyclonedx-1.6"`, "\"format\":\"cyclonedx\xff\"")},
		{"duplicate subject", appendMember(`"subject":` + attacker)},
		{"SUBJECT after subject", appendMember(`"SUBJECT":` + attacker)},
		{"duplicate scannerImageDigest", appendMember(`"scannerImageDigest":"sha256:` + strings.Repeat("b", 64) + `"`)},
		{"duplicate poe", appendMember(`"poe":{"format":"opaque","value":"other"}`)},
		{"duplicate nested in predicate", replace(`"componentCount":412`, `"componentCount":412,"nested":{"a":1,"a":2}`)},
		{"duplicate in predicate", replace(`"componentCount":412`, `"componentCount":412,"componentCount":413`)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, signedBefore := len(h.Audit.Records()), len(h.Signed())
			status, p, body := strictPost(t, h, c.body)
			if status != http.StatusBadRequest || p.Code != proto.CodeInvalidRequest || p.RequestID == "" {
				t.Fatalf("status %d, problem %+v, want 400 %s: %s", status, p, proto.CodeInvalidRequest, body)
			}
			if bytes.Contains(body, []byte("attacker")) || bytes.Contains(body, []byte("other")) {
				t.Fatalf("problem echoes request content: %s", body)
			}
			if n := len(h.Signed()) - signedBefore; n != 0 {
				t.Fatalf("%d signatures made", n)
			}
			recs := h.Audit.Records()[before:]
			if len(recs) != 1 || recs[0].Decision != audit.Deny || recs[0].Code != string(proto.CodeInvalidRequest) ||
				recs[0].RequestID != p.RequestID || recs[0].Reason == "" {
				t.Fatalf("audit records %+v", recs)
			}
		})
	}
	// Numbers whose canonical form is the same value still sign, as
	// canonical JSON (SPEC §15: 1.0, 1e2, -0 pass).
	t.Run("same-value numbers sign", func(t *testing.T) {
		status, p, body := strictPost(t, h, number(`[1.0,1e2,-0,0.1,9007199254740992]`))
		if status != http.StatusOK {
			t.Fatalf("status %d %+v: %s", status, p, body)
		}
		var res proto.SignResponse
		if err := json.Unmarshal(body, &res); err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(res.Envelope.Payload, []byte(`"componentCount":[1,100,0,0.1,9007199254740992]`)) {
			t.Fatalf("payload %s", res.Envelope.Payload)
		}
	})
}

// TestStrictAdminBodyRefused: admin bodies go through the same strict
// decoder: a repeated or case-variant name, invalid UTF-8 or a lone
// surrogate is a 400 invalid_request, audited, and changes nothing (here:
// the key is not revoked).
func TestStrictAdminBodyRefused(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	for name, body := range map[string]string{
		"duplicate reason":    `{"reason":"x","reason":"key file leaked"}`,
		"Reason":              `{"Reason":"key file leaked"}`,
		"reason then REASON":  `{"reason":"key file leaked","REASON":"other"}`,
		"invalid UTF-8":       "{\"reason\":\"key file le\xffaked\"}",
		"lone surrogate":      `{"reason":"key file leaked\ud800"}`,
		"trailing data":       `{"reason":"key file leaked"}{}`,
		"number out of range": `{"reason":"key file leaked","n":1e999999999}`,
	} {
		t.Run(name, func(t *testing.T) {
			before := len(h.Audit.Records())
			req, err := http.NewRequest(http.MethodPost, "http://signer-agent"+proto.PathAdminKeys+"dev/revoke", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := harness.HTTPClient(h.AdminSock).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			p, err := proto.DecodeProblem(b)
			if resp.StatusCode != http.StatusBadRequest || err != nil || p.Code != proto.CodeInvalidRequest {
				t.Fatalf("status %d, problem %+v (%v): %s", resp.StatusCode, p, err, b)
			}
			recs := h.Audit.Records()[before:]
			if len(recs) != 1 || recs[0].Decision != audit.Deny || recs[0].Code != string(proto.CodeInvalidRequest) {
				t.Fatalf("audit records %+v", recs)
			}
			ks, err := h.Client.Keys(context.Background())
			if err != nil || ks.Keys[0].Status != proto.KeyStatusActive {
				t.Fatalf("keys %+v (%v)", ks, err)
			}
		})
	}
}

// strictPost posts body to /sign/dsse with h's credentials (postProblem).
func strictPost(t *testing.T, h *harness.Agent, body string) (int, *proto.Problem, []byte) {
	t.Helper()
	return postProblem(t, h, proto.PathSignDSSE, body)
}
