package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// batchAgent decodes each batch strictly, as the agent does, and answers
// item i with a signed result, or a problem when refuse[i] is set.
func batchAgent(t *testing.T, refuse map[int]proto.Code) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != proto.PathSignBatch {
			t.Errorf("got %s %s, want POST %s", r.Method, r.URL.Path, proto.PathSignBatch)
		}
		body, _ := io.ReadAll(r.Body)
		d, err := proto.DecodeBatchRequest(body)
		if err != nil {
			writeProblem(w, proto.CodeInvalidRequest, err.Error(), "req-b")
			return
		}
		var one proto.SignResponse
		if err := json.Unmarshal([]byte(signResponseJSON), &one); err != nil {
			t.Fatal(err)
		}
		resp := proto.BatchResponse{RequestID: "req-b"}
		for i, it := range d.Items {
			switch {
			case it.Err != nil:
				resp.Results = append(resp.Results, proto.BatchResult{Status: 400, Problem: proto.NewProblem(proto.CodeInvalidRequest, it.Err.Error(), "req-b")})
			case refuse[i] != "":
				resp.Results = append(resp.Results, proto.BatchResult{Status: refuse[i].Status(), Problem: proto.NewProblem(refuse[i], "", "req-b")})
			default:
				item := one
				item.PayloadDigest = "sha256:item-" + it.Request.PredicateType
				resp.Results = append(resp.Results, proto.BatchResult{Status: 200, SignResponse: &item})
			}
		}
		b, _ := json.Marshal(resp)
		writeJSON(w, http.StatusOK, string(b))
	}
}

func threeStatements(t *testing.T) *proto.BatchRequest {
	t.Helper()
	subj, err := client.ImageSubject("registry.example/app@sha256:"+strings.Repeat("ab", 32), "sha256:"+strings.Repeat("ab", 32))
	if err != nil {
		t.Fatal(err)
	}
	doc := "sha256:" + strings.Repeat("cd", 32)
	sbom, err := client.SBOMRequest(subj, client.SBOMPredicate{Format: "cyclonedx-1.6", Digest: doc, ComponentCount: 412})
	if err != nil {
		t.Fatal(err)
	}
	report, err := client.ReportRequest(subj, client.ReportPredicate{Format: "stella-report-1", Digest: doc, Verdict: client.VerdictPass,
		Findings: map[string]int64{"critical": 0, "high": 2}}, proto.Policy{Digest: doc, ViewSet: []string{"prod"}})
	if err != nil {
		t.Fatal(err)
	}
	vex, err := client.VEXRequest(subj, client.VEXPredicate{Format: "openvex-0.2.0", Digest: doc, StatementCount: 3})
	if err != nil {
		t.Fatal(err)
	}
	return &proto.BatchRequest{Requests: []proto.SignRequest{*sbom, *report, *vex}}
}

func TestSignBatch(t *testing.T) {
	a := startDPoPAgent(t, &dpopAgent{require: true, nonce: "n1", then: batchAgent(t, map[int]proto.Code{1: proto.CodePredicateNotAllowed})})
	c := newDPoPClient(a.fakeAgent, testKeys(t)[0].key)
	c.PoE = &proto.PoE{Format: "jwt", Value: "poe.jwt.value"}
	c.ScannerImageDigest = "sha256:" + strings.Repeat("ef", 32)
	req := threeStatements(t)
	resp, err := c.SignBatch(context.Background(), req)
	if err != nil {
		t.Fatalf("SignBatch: %v", err)
	}
	if req.PoE != nil || req.ScannerImageDigest != "" {
		t.Error("SignBatch modified the caller's request")
	}
	if resp.RequestID != "req-b" || len(resp.Results) != 3 {
		t.Fatalf("response %+v", resp)
	}
	for i, want := range []string{client.PredicateSBOM, "", client.PredicateVEX} {
		r := &resp.Results[i]
		err := client.BatchItemError(r)
		if want == "" {
			if !errors.Is(err, client.ErrPredicateNotAllowed) || r.OK() {
				t.Errorf("item %d: %v", i, err)
			}
			var e *client.Error
			if !errors.As(err, &e) || e.Status != 400 || e.RequestID != "req-b" {
				t.Errorf("item %d error %+v", i, e)
			}
			continue
		}
		if err != nil || r.PayloadDigest != "sha256:item-"+want || len(r.Envelope.Signatures) != 1 {
			t.Errorf("item %d: %v %+v", i, err, r.SignResponse)
		}
	}
	// The wire form: one batch, client PoE and scanner digest at the top.
	sent := a.last(t)
	var wire map[string]json.RawMessage
	if err := json.Unmarshal(sent.Body, &wire); err != nil {
		t.Fatal(err)
	}
	if string(wire["scannerImageDigest"]) != `"`+c.ScannerImageDigest+`"` || !strings.Contains(string(wire["poe"]), "poe.jwt.value") {
		t.Errorf("batch top level %s", sent.Body)
	}
	if k := sent.Header.Get(proto.HeaderIdempotencyKey); k == "" {
		t.Error("batch sent without an Idempotency-Key")
	}
	if len(a.verified()) != 2 { // nonce round trip + the batch
		t.Errorf("%d proofs", len(a.verified()))
	}
}

func TestSignBatchKeepsItemValues(t *testing.T) {
	a := startAgent(t, batchAgent(t, nil))
	c := newClient(a)
	c.PoE = &proto.PoE{Format: "jwt", Value: "client-poe"}
	req := threeStatements(t)
	req.Requests[0].PoE = &proto.PoE{Format: "jwt", Value: "item-poe"}
	req.Requests[1].PoE = req.Requests[0].PoE
	req.Requests[2].PoE = req.Requests[0].PoE
	if _, err := c.SignBatch(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if body := string(a.last(t).Body); strings.Contains(body, "client-poe") {
		t.Errorf("client PoE added although the items carry one: %s", body)
	}
}

func TestSignBatchRefusedWhole(t *testing.T) {
	a := startAgent(t, batchAgent(t, nil))
	c := newClient(a)
	many := &proto.BatchRequest{}
	for range proto.MaxBatchItems + 1 {
		many.Requests = append(many.Requests, *signRequest())
	}
	for name, req := range map[string]*proto.BatchRequest{
		"empty":     {},
		"65 items":  many,
		"bad scope": {Requests: []proto.SignRequest{*signRequest()}, ScannerImageDigest: "sha256:nope"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := c.SignBatch(context.Background(), req)
			if !errors.Is(err, client.ErrInvalidRequest) {
				t.Fatalf("err = %v, want invalid_request", err)
			}
		})
	}
	if _, err := c.SignBatch(context.Background(), nil); err == nil {
		t.Error("nil batch accepted")
	}
}

func TestSignBatchBadResponse(t *testing.T) {
	for name, body := range map[string]string{
		"too few results":       `{"requestId":"r","results":[{"status":200,"requestId":"r","envelope":{}}]}`,
		"200 without envelope":  `{"requestId":"r","results":[{"status":200},{"status":200},{"status":200}]}`,
		"error without problem": `{"requestId":"r","results":[{"status":503},{"status":503},{"status":503}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			a := startAgent(t, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, body) })
			if _, err := newClient(a).SignBatch(context.Background(), threeStatements(t)); err == nil {
				t.Fatal("malformed batch response accepted")
			}
		})
	}
}

func TestSignBatchRetried(t *testing.T) {
	a := startAgent(t, script(t, problem(proto.CodeAgentBusy, ""), hangUp(t), batchAgent(t, nil)))
	resp, err := newClient(a).SignBatch(context.Background(), threeStatements(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Results) != 3 || a.count() != 3 {
		t.Fatalf("%d results after %d attempts", len(resp.Results), a.count())
	}
	sameKey(t, a.all())
}

func TestReferrers(t *testing.T) {
	digest := "sha256:" + strings.Repeat("ab", 32)
	a := startAgent(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != proto.PathReferrers || r.URL.Query().Get("digest") != digest {
			t.Errorf("got %s %s", r.Method, r.URL)
		}
		writeJSON(w, 200, `{"digest":"`+digest+`","trusted":true,"source":"allowlist","version":"1.4.2",
			"manualApproval":{"approvedBy":"ops","approvedAt":"2026-01-02T03:04:05Z"},"checkedAt":"2026-02-01T00:00:00Z","future":1}`)
	})
	v, err := newClient(a).Referrers(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Trusted || v.Source != "allowlist" || v.Version != "1.4.2" || v.ManualApproval == nil || v.ManualApproval.ApprovedBy != "ops" ||
		!v.CheckedAt.Equal(time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("verdict %+v", v)
	}
	n := a.count()
	for _, bad := range []string{"", "sha256:", "sha256:AB", "md5:" + strings.Repeat("a", 32), digest + "&x=1"} {
		if _, err := newClient(a).Referrers(context.Background(), bad); err == nil {
			t.Errorf("digest %q accepted", bad)
		}
	}
	if a.count() != n {
		t.Error("an invalid digest was sent")
	}
	// A DPoP client's proof names the path without the query (SPEC §15).
	d := startDPoPAgent(t, &dpopAgent{then: func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"digest":"`+digest+`","trusted":false,"reason":"no signature","checkedAt":"2026-02-01T00:00:00Z"}`)
	}})
	v, err = newDPoPClient(d.fakeAgent, testKeys(t)[0].key).Referrers(context.Background(), digest)
	if err != nil || v.Trusted || v.Reason != "no signature" {
		t.Fatalf("%+v %v", v, err)
	}
}

func TestPredicateRequests(t *testing.T) {
	hex := strings.Repeat("ab", 32)
	subj, err := client.ImageSubject("registry.example/app", "sha256:"+hex)
	if err != nil || subj.Digest["sha256"] != hex {
		t.Fatal(subj, err)
	}
	req := threeStatements(t)
	want := []struct{ typ, pred string }{
		{client.PredicateSBOM, `{"format":"cyclonedx-1.6","digest":"sha256:` + strings.Repeat("cd", 32) + `","componentCount":412}`},
		{client.PredicateReport, `{"format":"stella-report-1","digest":"sha256:` + strings.Repeat("cd", 32) + `","verdict":"pass","findings":{"critical":0,"high":2}}`},
		{client.PredicateVEX, `{"format":"openvex-0.2.0","digest":"sha256:` + strings.Repeat("cd", 32) + `","statementCount":3}`},
	}
	for i, w := range want {
		r := req.Requests[i]
		if r.PredicateType != w.typ || string(r.Predicate) != w.pred {
			t.Errorf("%d: %s %s", i, r.PredicateType, r.Predicate)
		}
		b, _ := json.Marshal(&r)
		if _, err := proto.DecodeSignRequest(b); err != nil {
			t.Errorf("%s: the agent would refuse it: %v", w.typ, err)
		}
	}
	if req.Requests[1].Policy == nil || req.Requests[1].Policy.ViewSet[0] != "prod" {
		t.Error("report without its policy")
	}

	doc := "sha256:" + hex
	bad := map[string]func() error{
		"image without name":  func() error { _, err := client.ImageSubject("", doc); return err },
		"image bad digest":    func() error { _, err := client.ImageSubject("x", "sha256:zz"); return err },
		"sbom without format": func() error { _, err := client.SBOMRequest(subj, client.SBOMPredicate{Digest: doc}); return err },
		"sbom bad digest": func() error {
			_, err := client.SBOMRequest(subj, client.SBOMPredicate{Format: "f", Digest: hex})
			return err
		},
		"sbom negative count": func() error {
			_, err := client.SBOMRequest(subj, client.SBOMPredicate{Format: "f", Digest: doc, ComponentCount: -1})
			return err
		},
		"sbom count past 2^53": func() error {
			_, err := client.SBOMRequest(subj, client.SBOMPredicate{Format: "f", Digest: doc, ComponentCount: 1<<53 + 1})
			return err
		},
		"report bad verdict": func() error {
			_, err := client.ReportRequest(subj, client.ReportPredicate{Format: "f", Digest: doc, Verdict: "ok"}, proto.Policy{Digest: doc})
			return err
		},
		"report without policy": func() error {
			_, err := client.ReportRequest(subj, client.ReportPredicate{Format: "f", Digest: doc, Verdict: client.VerdictFail}, proto.Policy{})
			return err
		},
		"report empty severity": func() error {
			_, err := client.ReportRequest(subj, client.ReportPredicate{Format: "f", Digest: doc, Verdict: client.VerdictFail, Findings: map[string]int64{"": 1}}, proto.Policy{Digest: doc})
			return err
		},
		"vex without digest": func() error { _, err := client.VEXRequest(subj, client.VEXPredicate{Format: "f"}); return err },
		"vex negative count": func() error {
			_, err := client.VEXRequest(subj, client.VEXPredicate{Format: "f", Digest: doc, StatementCount: -2})
			return err
		},
		"subject bad digest": func() error {
			_, err := client.VEXRequest(proto.Subject{Name: "x", Digest: map[string]string{"sha256": "x"}}, client.VEXPredicate{Format: "f", Digest: doc})
			return err
		},
		"subject without name": func() error {
			_, err := client.SBOMRequest(proto.Subject{Digest: subj.Digest}, client.SBOMPredicate{Format: "f", Digest: doc})
			return err
		},
	}
	for name, f := range bad {
		if f() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
