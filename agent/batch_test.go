package agent_test

import (
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// statements returns n sign requests for distinct subjects, of the dev
// tenant's sbom type.
func statements(n int) []proto.SignRequest {
	out := make([]proto.SignRequest, n)
	for i := range out {
		r := signRequest()
		r.Subject[0].Name = fmt.Sprintf("registry.example/app-%d", i)
		r.Predicate = json.RawMessage(fmt.Sprintf(`{"format":"cyclonedx-1.6","componentCount":%d}`, i))
		out[i] = *r
	}
	return out
}

// postBatch sends body to /sign/batch with fresh credentials and the given
// extra headers; it returns the status, the body and the headers.
func postBatch(t *testing.T, h *harness.Agent, creds harness.Credentials, body string, hdr http.Header) (int, []byte, http.Header) {
	t.Helper()
	return post(t, h, creds, proto.PathSignBatch, body, hdr)
}

// postProblem posts body to path with h's credentials. A refusal must be
// a problem document: it comes back decoded, with the raw body.
func postProblem(t *testing.T, h *harness.Agent, path, body string) (int, *proto.Problem, []byte) {
	t.Helper()
	status, b, hdr := post(t, h, h.Creds, path, body, nil)
	if status == http.StatusOK {
		return status, nil, b
	}
	if ct := hdr.Get("Content-Type"); ct != proto.MediaTypeProblem {
		t.Fatalf("content type %q: %s", ct, b)
	}
	p, err := proto.DecodeProblem(b)
	if err != nil {
		t.Fatal(err)
	}
	return status, p, b
}

func post(t *testing.T, h *harness.Agent, creds harness.Credentials, path, body string, hdr http.Header) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://signer-agent"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if creds.Token != "" {
		for k, v := range h.AuthHeaders(t, creds, http.MethodPost, path) {
			req.Header[k] = v
		}
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, b := harness.Do(t, h.APISock, req)
	return resp.StatusCode, b, resp.Header
}

// batchJSON encodes a batch carrying the dev credentials' PoE and scanner.
func batchJSON(t *testing.T, creds harness.Credentials, reqs []proto.SignRequest) string {
	t.Helper()
	b, err := json.Marshal(proto.BatchRequest{Requests: reqs, ScannerImageDigest: creds.ScannerImageDigest,
		PoE: &proto.PoE{Format: "jwt", Value: creds.PoE}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestBatchSigns: an SBOM, a report and a VEX statement signed in one call;
// each result verifies, has its own audit record and id, in request order,
// and the batch's three records are one group commit of the durable log.
func TestBatchSigns(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{FileAudit: true, Edit: func(c *config.Config) {
		harness.DevTenant(c).PredicateTypes = []string{client.PredicateSBOM, client.PredicateReport, client.PredicateVEX}
	}})
	ctx := context.Background()
	subj, err := client.ImageSubject("registry.example/app@sha256:"+digestA, "sha256:"+digestA)
	if err != nil {
		t.Fatal(err)
	}
	doc := "sha256:" + strings.Repeat("cd", 32)
	sbom, _ := client.SBOMRequest(subj, client.SBOMPredicate{Format: "cyclonedx-1.6", Digest: doc, ComponentCount: 412})
	report, _ := client.ReportRequest(subj, client.ReportPredicate{Format: "stella-report-1", Digest: doc, Verdict: client.VerdictPass},
		proto.Policy{Digest: doc, ViewSet: []string{"prod"}})
	vex, _ := client.VEXRequest(subj, client.VEXPredicate{Format: "openvex-0.2.0", Digest: doc, StatementCount: 3})
	// Learn the DPoP nonce first: the client's first call would otherwise
	// add a use_dpop_nonce denial (and its commit) to the figures.
	if _, err := h.Client.Health(ctx); err != nil {
		t.Fatal(err)
	}
	before := h.Scrape(t)
	res, err := h.Client.SignBatch(ctx, &proto.BatchRequest{Requests: []proto.SignRequest{*sbom, *report, *vex}})
	if err != nil {
		t.Fatal(err)
	}
	after := h.Scrape(t)
	if res.Replayed || len(res.Results) != 3 {
		t.Fatalf("%+v", res)
	}
	pub := h.PublicKey(t).(crypto.PublicKey)
	types := []string{client.PredicateSBOM, client.PredicateReport, client.PredicateVEX}
	ids := map[string]bool{}
	for i, r := range res.Results {
		if err := client.BatchItemError(&r); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
		if r.RequestID != res.RequestID+"#"+strconv.Itoa(i) || r.AuditID == "" || ids[r.AuditID] {
			t.Fatalf("item %d: requestId %q auditId %q", i, r.RequestID, r.AuditID)
		}
		ids[r.AuditID] = true
		if _, err := attest.VerifyBundle(r.Bundles[0], []crypto.PublicKey{pub}, attest.Expect{PredicateType: types[i], ArtifactSHA256: digestA}); err != nil {
			t.Fatalf("item %d: %v", i, err)
		}
	}
	var recs []audit.Record
	if err := audit.Query(h.Agent.Config().Audit.Dir, audit.Filter{Decision: audit.Allow}, func(r audit.Record) error {
		if r.Gate == "sign" {
			recs = append(recs, r)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 {
		t.Fatalf("%d allow records", len(recs))
	}
	for i, r := range recs {
		if r.AuditID != res.Results[i].AuditID || r.RequestID != res.Results[i].RequestID || r.PredicateType != types[i] ||
			r.PayloadDigest != res.Results[i].PayloadDigest || r.BundleHash != res.Results[i].BundleHash || r.Tenant != devauth.Tenant ||
			r.ReleaseVerdict == "" || r.PoEState == "" || (i > 0 && r.Seq != recs[i-1].Seq+1) {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	commits := harness.MetricValue(t, after, "signer_audit_batch_size_count") - harness.MetricValue(t, before, "signer_audit_batch_size_count")
	records := harness.MetricValue(t, after, "signer_audit_batch_size_sum") - harness.MetricValue(t, before, "signer_audit_batch_size_sum")
	if commits != 1 || records != 3 {
		t.Fatalf("the batch's records took %v group commits for %v records; want 1 for 3", commits, records)
	}
	if got := harness.MetricValue(t, after, `signer_batch_items_total{code="ok"}`); got != 3 {
		t.Fatalf("signer_batch_items_total ok = %v", got)
	}
	if !strings.Contains(after, `signer_requests_total{code="ok",decision="allow",route="/api/v1/signer/sign/batch"} 1`) {
		t.Fatal("the batch is not counted under its route")
	}
}

// TestBadBatches: a batch refused before the per-item gates gets one
// problem document; nothing is signed and the denial is audited.
func TestBadBatches(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	good := func(n int) string { return batchJSON(t, h.Creds, statements(n)) }
	badToken := h.Creds
	badToken.Token = h.Creds.Token[:len(h.Creds.Token)-4] + "AAAA"
	cases := []struct {
		name  string
		creds harness.Credentials
		body  string
		code  proto.Code
		gate  string
	}{
		{"empty", h.Creds, batchJSON(t, h.Creds, []proto.SignRequest{}), proto.CodeInvalidRequest, "body"},
		{"no requests member", h.Creds, `{}`, proto.CodeInvalidRequest, "body"},
		{"65 items", h.Creds, good(65), proto.CodeInvalidRequest, "body"},
		{"not JSON", h.Creds, `{"requests":[`, proto.CodeInvalidRequest, "body"},
		{"duplicate member", h.Creds, `{"requests":[],"requests":[]}`, proto.CodeInvalidRequest, "body"},
		{"items disagree about the scanner", h.Creds, func() string {
			rs := statements(2)
			rs[1].ScannerImageDigest = "sha256:" + strings.Repeat("ee", 32)
			return batchJSON(t, h.Creds, rs)
		}(), proto.CodeInvalidRequest, "body"},
		{"bad token", badToken, good(3), proto.CodeInvalidToken, "optok"},
		{"no credentials", harness.Credentials{}, good(3), proto.CodeInvalidToken, "optok"},
		{"untrusted scanner", h.Creds, func() string {
			b, _ := json.Marshal(proto.BatchRequest{Requests: statements(2), ScannerImageDigest: "sha256:" + strings.Repeat("ee", 32),
				PoE: &proto.PoE{Format: "jwt", Value: h.Creds.PoE}})
			return string(b)
		}(), proto.CodeReleaseUntrusted, "release"},
		{"no PoE", h.Creds, func() string {
			b, _ := json.Marshal(proto.BatchRequest{Requests: statements(2), ScannerImageDigest: h.Creds.ScannerImageDigest})
			return string(b)
		}(), proto.CodeEntitlementDenied, "entitlement"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(h.Audit.Records())
			status, body, hdr := postBatch(t, h, c.creds, c.body, nil)
			if ct := hdr.Get("Content-Type"); status != c.code.Status() || ct != proto.MediaTypeProblem {
				t.Fatalf("%d %s %s", status, ct, body)
			}
			p, err := proto.DecodeProblem(body)
			if err != nil || p.Code != c.code {
				t.Fatalf("%v %+v", err, p)
			}
			if len(h.Signed()) != 0 {
				t.Fatal("signed")
			}
			recs := h.Audit.Records()[n:]
			if len(recs) != 1 || recs[0].Decision != audit.Deny || recs[0].Code != string(c.code) || recs[0].Gate != c.gate ||
				recs[0].Route != proto.PathSignBatch {
				t.Fatalf("audit %+v", recs)
			}
		})
	}
}

// TestBatchMixedItems: good items are signed, bad ones get their own
// problem; every item is audited with its own record.
func TestBatchMixedItems(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	rs := statements(5)
	rs[1].Subject = nil                                          // body: empty subject
	rs[2].PredicateType = "stella.ops/other@v1"                  // policy: not allowed
	rs[3].Options = &proto.SignOptions{KeyIDs: []string{"nope"}} // policy: unknown key
	body := batchJSON(t, h.Creds, rs)
	// An item that is not even a sign request's shape.
	body = strings.Replace(body, `{"requests":[`, `{"requests":[{"subject":"x"},`, 1)
	status, b, _ := postBatch(t, h, h.Creds, body, nil)
	if status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	var res proto.BatchResponse
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if err := res.Check(6); err != nil {
		t.Fatal(err)
	}
	want := []proto.Code{proto.CodeInvalidRequest, "", proto.CodeInvalidRequest, proto.CodePredicateNotAllowed, proto.CodeNotFound, ""}
	recs := h.Audit.Records()
	recs = recs[len(recs)-6:]
	for i, r := range res.Results {
		if want[i] == "" {
			if !r.OK() || recs[i].Decision != audit.Allow || recs[i].AuditID != r.AuditID {
				t.Fatalf("item %d: %+v, record %+v", i, r, recs[i])
			}
			continue
		}
		if r.OK() || r.Problem.Code != want[i] || r.Status != want[i].Status() || r.Problem.RequestID != res.RequestID+"#"+strconv.Itoa(i) {
			t.Fatalf("item %d: %+v, want %s", i, r.Problem, want[i])
		}
		if recs[i].Decision != audit.Deny || recs[i].Code != string(want[i]) || recs[i].RequestID != r.Problem.RequestID {
			t.Fatalf("item %d record %+v", i, recs[i])
		}
	}
	if len(h.Signed()) != 2 {
		t.Fatalf("%d signed", len(h.Signed()))
	}
}

// TestBatchQuotas: a batch of 16 against 10 artifacts a day signs exactly
// the first 10 and refuses 6 with quota_exhausted; an item over the size
// limit is refused alone.
func TestBatchQuotas(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: withPlan(config.Plan{Name: "small", ArtifactsPerDay: 10, MaxArtifactBytes: 600})})
	creds := h.Mint(t, devauth.Options{Plan: "small"})
	rs := statements(17)
	rs[0].Predicate = json.RawMessage(`{"filler":"` + strings.Repeat("x", 700) + `"}`)
	status, b, _ := postBatch(t, h, creds, batchJSON(t, creds, rs), nil)
	if status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	var res proto.BatchResponse
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if r := res.Results[0]; r.OK() || r.Problem.Code != proto.CodeArtifactTooLarge {
		t.Fatalf("item 0: %+v", r.Problem)
	}
	signed, exhausted := 0, 0
	for i, r := range res.Results[1:] {
		switch {
		case r.OK() && i < 10:
			signed++
			if r.Quota == nil || r.Quota.Plan != "small" || r.Quota.RemainingToday != 0 {
				t.Fatalf("item %d quota %+v", i+1, r.Quota)
			}
		case !r.OK() && i >= 10 && r.Problem.Code == proto.CodeQuotaExhausted && r.Status == 429:
			exhausted++
		default:
			t.Fatalf("item %d: %+v", i+1, r)
		}
	}
	if signed != 10 || exhausted != 6 || len(h.Signed()) != 10 {
		t.Fatalf("signed %d, exhausted %d, allow records %d", signed, exhausted, len(h.Signed()))
	}
	// The day is used up: a single sign is refused too.
	if _, err := h.ClientWith(creds).SignDSSE(context.Background(), signRequest()); err == nil {
		t.Fatal("signed over the daily cap")
	}
}

// TestBatchSharedQuotaOneRoundTrip: with the shared store (a real
// redis-server) the batch reserves its 16 artifacts in one round trip,
// and the plan holds: 10 signed, 6 quota_exhausted.
func TestBatchSharedQuotaOneRoundTrip(t *testing.T) {
	r := harness.StartRedis(t)
	h := harness.StartAgent(t, harness.Options{Edit: func(c *config.Config) {
		harness.DevPlan(c).ArtifactsPerDay = 10
		c.Quota = config.Quota{Store: config.QuotaStoreRedis, OnStoreDown: "deny",
			Redis: config.QuotaRedis{Addr: r.Addr(), KeyPrefix: "batch-test", Timeout: 2 * time.Second}}
	}})
	before := h.Scrape(t)
	res, err := h.Client.SignBatch(context.Background(), &proto.BatchRequest{Requests: statements(16)})
	if err != nil {
		t.Fatal(err)
	}
	after := h.Scrape(t)
	const reserve = `signer_quota_store_duration_seconds_count{op="reserve"}`
	if n := harness.MetricValue(t, after, reserve) - harness.MetricValue(t, before, reserve); n != 1 {
		t.Fatalf("%v reservation round trips for one batch, want 1", n)
	}
	signed, exhausted := 0, 0
	for _, r := range res.Results {
		switch {
		case r.OK():
			signed++
		case r.Problem.Code == proto.CodeQuotaExhausted:
			exhausted++
		default:
			t.Fatalf("%+v", r.Problem)
		}
	}
	if signed != 10 || exhausted != 6 || len(h.Signed()) != 10 {
		t.Fatalf("signed %d, exhausted %d, allow records %d", signed, exhausted, len(h.Signed()))
	}
}

// TestBatchKeylessItems: each item follows the tenant's keyless policy on
// its own: a keyful item is signed while a keyless one, with Fulcio and the
// TSA unreachable and no fallback key, is signing_backend_unavailable in
// its own result (audited at the sign gate).
func TestBatchKeylessItems(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: withKeyless(t, config.KeylessAllowed, "", identityToken(t, time.Now().Add(time.Hour)))})
	rs := []proto.SignRequest{*signRequest(), *keylessRequest(proto.ModeKeyless)}
	res, err := h.Client.SignBatch(context.Background(), &proto.BatchRequest{Requests: rs})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Results[0].OK() || res.Results[0].SigningIdentity[0].Mode != proto.ModeKeyful {
		t.Fatalf("keyful item: %+v", res.Results[0])
	}
	if r := res.Results[1]; r.OK() || r.Problem.Code != proto.CodeSigningBackendUnavailable {
		t.Fatalf("keyless item: %+v", r)
	}
	recs := withCode(h.Audit.Records(), proto.CodeSigningBackendUnavailable)
	if len(recs) != 1 || recs[0].Gate != "sign" || recs[0].RequestID != res.RequestID+"#1" {
		t.Fatalf("audit %+v", recs)
	}
	if len(h.Signed()) != 1 {
		t.Fatalf("%d signed", len(h.Signed()))
	}
}
