package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/config"
	"github.com/stellaops/signer-agent/internal/devauth"
	"github.com/stellaops/signer-agent/proto"
	"github.com/stellaops/signer-agent/test/harness"
)

// signJSON is a /sign/dsse body with the dev credentials' PoE and scanner.
func signJSON(t *testing.T, creds harness.Credentials, r *proto.SignRequest) string {
	t.Helper()
	c := *r
	c.PoE = &proto.PoE{Format: "jwt", Value: creds.PoE}
	c.ScannerImageDigest = creds.ScannerImageDigest
	b, err := json.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func withKey(k string) http.Header { return http.Header{proto.HeaderIdempotencyKey: {k}} }

// replays returns the audit records of replays.
func replays(h *harness.Agent) []audit.Record {
	var out []audit.Record
	for _, r := range h.Audit.Records() {
		if r.Gate == "idempotency" && r.Decision == audit.Allow {
			out = append(out, r)
		}
	}
	return out
}

// TestIdempotentSign: a retry with the same key and request gets the same
// bytes with Idempotent-Replayed: true, is counted once and audited as a
// replay of the original audit id; the same key with another request is
// 422; an answer that was an error is not kept.
func TestIdempotentSign(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: withPlan(config.Plan{Name: "five", ArtifactsPerDay: 5})})
	creds := h.Mint(t, devauth.Options{Plan: "five"})
	body := signJSON(t, creds, signRequest())

	status, first, hdr := post(t, h, creds, proto.PathSignDSSE, body, withKey("scan-1/sbom"))
	if status != 200 || hdr.Get(proto.HeaderIdempotentReplayed) != "" {
		t.Fatalf("%d %s", status, first)
	}
	var res proto.SignResponse
	if err := json.Unmarshal(first, &res); err != nil || res.Quota.RemainingToday != 4 {
		t.Fatalf("%v %+v", err, res.Quota)
	}
	// The same request re-encoded (members in another order) is the same
	// request.
	var m map[string]any
	_ = json.Unmarshal([]byte(body), &m)
	reordered, _ := json.Marshal(m)
	for _, b := range []string{body, string(reordered)} {
		status, again, hdr := post(t, h, creds, proto.PathSignDSSE, b, withKey("scan-1/sbom"))
		if status != 200 || hdr.Get(proto.HeaderIdempotentReplayed) != "true" || !bytes.Equal(again, first) {
			t.Fatalf("replay: %d %q\n%s\n%s", status, hdr.Get(proto.HeaderIdempotentReplayed), again, first)
		}
		if hdr.Get(proto.HeaderRequestID) == res.RequestID {
			t.Fatal("the replay's own X-Request-Id is the original's")
		}
	}
	// A retry after the client refreshed its PoE is the same request.
	fresh := h.Mint(t, devauth.Options{Plan: "five"})
	if fresh.PoE == creds.PoE {
		t.Fatal("the PoE did not change")
	}
	status, again, hdr := post(t, h, fresh, proto.PathSignDSSE, signJSON(t, fresh, signRequest()), withKey("scan-1/sbom"))
	if status != 200 || hdr.Get(proto.HeaderIdempotentReplayed) != "true" || !bytes.Equal(again, first) {
		t.Fatalf("replay with a new PoE: %d %s", status, again)
	}
	if len(h.Signed()) != 1 {
		t.Fatalf("%d signatures", len(h.Signed()))
	}
	rp := replays(h)
	if len(rp) != 3 || !strings.Contains(rp[0].Reason, res.AuditID) || rp[0].AuditID == res.AuditID || rp[0].Tenant != devauth.Tenant {
		t.Fatalf("replay records %+v", rp)
	}
	// Counted once: the next signature leaves 3.
	next, err := h.ClientWith(creds).SignDSSE(context.Background(), signRequest())
	if err != nil || next.Quota.RemainingToday != 3 || next.Replayed {
		t.Fatalf("%v %+v", err, next)
	}

	cases := []struct {
		name string
		key  []string
		body string
		code proto.Code
	}{
		{"same key, other request", []string{"scan-1/sbom"}, signJSON(t, creds, statementsPtr(1)), proto.CodeIdempotencyKeyReused},
		{"key too long", []string{strings.Repeat("k", 256)}, body, proto.CodeInvalidRequest},
		{"key not ASCII", []string{"k\xe9"}, body, proto.CodeInvalidRequest},
		{"two keys", []string{"a", "b"}, body, proto.CodeInvalidRequest},
		{"empty key", []string{""}, body, proto.CodeInvalidRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := len(h.Signed())
			status, b, _ := post(t, h, creds, proto.PathSignDSSE, c.body, http.Header{proto.HeaderIdempotencyKey: c.key})
			p, err := proto.DecodeProblem(b)
			if status != c.code.Status() || err != nil || p.Code != c.code {
				t.Fatalf("%d %s", status, b)
			}
			if len(h.Signed()) != n {
				t.Fatal("signed")
			}
			recs := h.Audit.Records()
			if last := recs[len(recs)-1]; last.Decision != audit.Deny || last.Code != string(c.code) || last.Gate != "idempotency" {
				t.Fatalf("audit %+v", last)
			}
		})
	}

	// A refused request keeps no answer: its key may carry another
	// request afterwards.
	bad := signRequest()
	bad.PredicateType = "stella.ops/other@v1"
	if status, b, _ := post(t, h, creds, proto.PathSignDSSE, signJSON(t, creds, bad), withKey("k-refused")); status != 400 {
		t.Fatalf("%d %s", status, b)
	}
	if status, b, _ := post(t, h, creds, proto.PathSignDSSE, body, withKey("k-refused")); status != 200 {
		t.Fatalf("after a refusal: %d %s", status, b)
	}
	// One key cannot be reused across endpoints.
	status, b, _ := postBatch(t, h, creds, batchJSON(t, creds, []proto.SignRequest{*signRequest()}), withKey("scan-1/sbom"))
	if p, _ := proto.DecodeProblem(b); status != 422 || p == nil || p.Code != proto.CodeIdempotencyKeyReused {
		t.Fatalf("sign key on batch: %d %s", status, b)
	}
}

func statementsPtr(i int) *proto.SignRequest {
	r := statements(i + 1)[i]
	return &r
}

// TestIdempotentBatch: a retried batch gets the first answer, items
// refused included, counted once; another batch under the key is 422.
func TestIdempotentBatch(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{Edit: withPlan(config.Plan{Name: "ten", ArtifactsPerDay: 10})})
	creds := h.Mint(t, devauth.Options{Plan: "ten"})
	rs := statements(4)
	rs[2].PredicateType = "stella.ops/other@v1"
	body := batchJSON(t, creds, rs)
	status, first, _ := postBatch(t, h, creds, body, withKey("batch-1"))
	if status != 200 {
		t.Fatalf("%d %s", status, first)
	}
	status, again, hdr := postBatch(t, h, creds, body, withKey("batch-1"))
	if status != 200 || hdr.Get(proto.HeaderIdempotentReplayed) != "true" || !bytes.Equal(first, again) {
		t.Fatalf("replay %d\n%s\n%s", status, again, first)
	}
	if len(h.Signed()) != 3 {
		t.Fatalf("%d signed", len(h.Signed()))
	}
	var res proto.BatchResponse
	_ = json.Unmarshal(first, &res)
	rp := replays(h)
	if len(rp) != 1 {
		t.Fatalf("%+v", rp)
	}
	for _, r := range res.Results {
		if r.OK() && !strings.Contains(rp[0].Reason, r.AuditID) {
			t.Fatalf("the replay record does not name %s: %s", r.AuditID, rp[0].Reason)
		}
	}
	status, b, _ := postBatch(t, h, creds, batchJSON(t, creds, rs[:2]), withKey("batch-1"))
	if p, _ := proto.DecodeProblem(b); status != 422 || p == nil || p.Code != proto.CodeIdempotencyKeyReused {
		t.Fatalf("other batch: %d %s", status, b)
	}
	// Counted once: 7 left, so a batch of 8 signs 7.
	res2, err := h.ClientWith(creds).SignBatch(context.Background(), &proto.BatchRequest{Requests: statements(8)})
	if err != nil {
		t.Fatal(err)
	}
	if r := res2.Results[6]; !r.OK() || r.Quota.RemainingToday != 0 {
		t.Fatalf("%+v", r)
	}
	if r := res2.Results[7]; r.OK() || r.Problem.Code != proto.CodeQuotaExhausted {
		t.Fatalf("%+v", r)
	}
}

// TestConcurrentDuplicates: requests with one key in flight at once sign
// once; the others wait for the first and replay its answer.
func TestConcurrentDuplicates(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	ctx := client.WithIdempotencyKey(context.Background(), "same-key")
	var wg sync.WaitGroup
	var mu sync.Mutex
	ids := map[string]int{}
	replayed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := h.Client.SignDSSE(ctx, signRequest())
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			ids[res.AuditID]++
			if res.Replayed {
				replayed++
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(ids) != 1 || replayed != 7 || len(h.Signed()) != 1 {
		t.Fatalf("audit ids %v, %d replayed, %d signed", ids, replayed, len(h.Signed()))
	}
}

// TestIdempotencyAcrossRestart: an answer kept before a clean restart is
// replayed after it (the journal, confirmed against the durable audit log),
// and counted once.
func TestIdempotencyAcrossRestart(t *testing.T) {
	edit := func(c *config.Config) { harness.DevPlan(c).ArtifactsPerDay = 3 }
	h := harness.StartAgent(t, harness.Options{FileAudit: true, Edit: edit})
	ctx := client.WithIdempotencyKey(context.Background(), "restart-key")
	first, err := h.Client.SignDSSE(ctx, signRequest())
	if err != nil {
		t.Fatal(err)
	}
	h.Stop()
	h2 := harness.StartAgent(t, harness.Options{Dir: h.Dir, FileAudit: true, Edit: edit})
	again, err := h2.Client.SignDSSE(ctx, signRequest())
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || again.AuditID != first.AuditID || !bytes.Equal(again.Envelope.Signatures[0].Sig, first.Envelope.Signatures[0].Sig) {
		t.Fatalf("not the first answer: %+v", again)
	}
	// 3 a day: one used; two more sign, the third is refused.
	for i := range 3 {
		_, err := h2.Client.SignDSSE(context.Background(), signRequest())
		if i < 2 && err != nil {
			t.Fatal(err)
		}
		if i == 2 && !errors.Is(err, client.ErrQuotaExhausted) {
			t.Fatalf("third: %v", err)
		}
	}
}

// TestIdempotencyUnauditedAnswerDropped: when the audit log refuses the
// allow record, the journaled answer is never published: the retry is
// signed afresh once the log is back.
func TestIdempotencyUnauditedAnswerDropped(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	ctx := client.WithIdempotencyKey(context.Background(), "k")
	h.Client.MaxAttempts = 1
	h.Audit.SetFail(errors.New("disk full"))
	if _, err := h.Client.SignDSSE(ctx, signRequest()); !errors.Is(err, client.ErrAuditUnavailable) {
		t.Fatalf("got %v", err)
	}
	h.Audit.SetFail(nil)
	res, err := h.Client.SignDSSE(ctx, signRequest())
	if err != nil || res.Replayed || len(h.Signed()) != 1 {
		t.Fatalf("%v %+v %d", err, res, len(h.Signed()))
	}
}

// TestIdempotentExport: an export retried with its key gets the first
// answer (export.json and the signature), counted once; another export
// under the key is 422.
func TestIdempotentExport(t *testing.T) {
	h := harness.StartAgent(t, harness.Options{})
	ctx := client.WithIdempotencyKey(context.Background(), "export-1")
	first, err := h.Client.SignExport(ctx, exportRequest(3))
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.Client.SignExport(ctx, exportRequest(3))
	if err != nil {
		t.Fatal(err)
	}
	if first.Replayed || !again.Replayed || again.AuditID != first.AuditID || again.ManifestDigest != first.ManifestDigest ||
		!bytes.Equal(again.Manifest, first.Manifest) || !bytes.Equal(again.Envelope.Signatures[0].Sig, first.Envelope.Signatures[0].Sig) {
		t.Fatalf("not the first answer:\n%+v\n%+v", first, again)
	}
	if len(h.Signed()) != 1 || len(replays(h)) != 1 {
		t.Fatalf("%d signed, %d replays", len(h.Signed()), len(replays(h)))
	}
	if _, err := h.Client.SignExport(ctx, exportRequest(4)); !errors.Is(err, client.ErrIdempotencyKeyReused) {
		t.Fatalf("another export under the key: %v", err)
	}
}
