package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/keys"
	"github.com/stellaops/signer-agent/proto"
)

// handleSign runs after every gate passed: it signs, audits, then answers.
// The response is written only once the allow record is appended; if the
// audit log refuses it, the signature is discarded and the caller gets
// audit_unavailable. The answer is encoded before the record is appended,
// so that a request with an Idempotency-Key can journal it (see
// prepareAnswer).
func (a *Agent) handleSign(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	rc.encode = func(res *attest.Result) ([]byte, error) {
		resp := a.signResponse(rc, res)
		return encodeWithBundles(resp, &resp.Bundles)
	}
	_, gate, d := a.signAndCommit(ctx, rc)
	if d != nil {
		a.refuse(ctx, w, rc, gate, d)
		return
	}
	writeBody(w, rc.answer)
}

// signAndCommit signs rc.statement with rc.keys (or the tenant's fallback
// key when the primary backend fails), appends the allow record and
// commits the quota ticket. With rc.encode set it also builds the answer
// into rc.answer before the record is appended and journals it under the
// request's Idempotency-Key (prepareAnswer); once the record is durable
// the answer is published for retries (answerCommitted). On failure it
// returns the gate and denial to refuse with: nothing was signed, or the
// signature was discarded because it could not be audited.
func (a *Agent) signAndCommit(ctx context.Context, rc *requestContext) (*attest.Result, string, *Denial) {
	res, err := a.sign(ctx, rc)
	if err != nil {
		a.log.Error("signing failed", zap.String("requestId", rc.id), zap.Error(err))
		return nil, gateSign, signingDenial(err)
	}
	rc.rec.Decision = audit.Allow
	rc.rec.Gate = gateSign
	rc.rec.BundleHash = res.BundleHash
	rc.rec.Certificates = auditCertificates(res)
	rc.rec.Time = a.now().UTC()
	rc.rec.LatencyMS = msSince(a.now, rc.start)
	if gate, d := a.prepareAnswer(ctx, rc, res); d != nil {
		return nil, gate, d
	}
	if err := a.auditor.Append(ctx, &rc.rec); err != nil {
		a.log.Error("audit append failed; signature discarded", zap.String("requestId", rc.id), zap.Error(err))
		return nil, gateAudit, auditDenial(err)
	}
	if rc.ticket != nil {
		rc.ticket.Commit()
	}
	a.answerCommitted(rc)
	// Each decision is in the audit log; the success line is debug-level
	// so the log does not duplicate the audit at request rate.
	a.log.Debug("signed",
		zap.String("requestId", rc.id), zap.String("traceId", rc.traceID), zap.String("tenant", rc.tenant),
		zap.String("decision", audit.Allow), zap.Strings("keys", rc.rec.KeyIDs),
		zap.String("payloadDigest", res.PayloadDigest), zap.Float64("latencyMs", rc.rec.LatencyMS))
	return res, "", nil
}

// sign signs rc.statement with rc.keys (after a keyless signature when
// rc.keyless is set), falling back to the tenant's fallback key when the
// primary's backend (or the keyless backend) fails (the switch is logged,
// counted and noted in the audit record).
func (a *Agent) sign(ctx context.Context, rc *requestContext) (*attest.Result, error) {
	if rc.keyless != nil {
		res, err := a.signKeyless(ctx, rc)
		if err == nil {
			return res, nil
		}
		if a.keylessFallback(rc, err) == nil {
			return nil, err
		}
		return a.signMetered(ctx, rc.statement, rc.keys) // the fallback key
	}
	res, err := a.signMetered(ctx, rc.statement, rc.keys)
	if err == nil {
		return res, nil
	}
	fb := a.fallbackFor(rc, err)
	if fb == nil {
		return nil, err
	}
	primary := rc.keys[0]
	a.log.Warn("primary key backend failed; signing with the fallback key",
		zap.String("requestId", rc.id), zap.String("tenant", rc.tenant),
		zap.String("primary", primary.cfg.ID), zap.String("fallback", fb.cfg.ID), zap.Error(err))
	a.metrics.Fallback(rc.tenant, primary.cfg.ID, fb.cfg.ID)
	rc.rec.Reason = fmt.Sprintf("fallback from key %q to %q: %v", primary.cfg.ID, fb.cfg.ID, err)
	rc.keys = []*keyEntry{fb}
	rc.rec.KeyIDs, rc.rec.KeySources, rc.rec.KeyFingerprints = []string{fb.cfg.ID}, []string{fb.source}, []string{fb.fingerprint}
	return a.signMetered(ctx, rc.statement, rc.keys)
}

// signMetered is signWith, with each key's signing time and outcome
// counted.
func (a *Agent) signMetered(ctx context.Context, statement []byte, ks []*keyEntry) (*attest.Result, error) {
	t0 := time.Now()
	res, err := signWith(ctx, statement, ks)
	for _, k := range ks {
		a.metrics.Sign(k.cfg.ID, k.source, time.Since(t0), err == nil)
	}
	return res, err
}

// signResponse is the §4.2 answer for a signed and audited request.
func (a *Agent) signResponse(rc *requestContext, res *attest.Result) *proto.SignResponse {
	return &proto.SignResponse{
		RequestID:       rc.id,
		AuditID:         rc.rec.AuditID,
		Envelope:        res.Envelope,
		Bundles:         res.Bundles,
		SigningIdentity: res.SigningIdentity,
		PayloadDigest:   res.PayloadDigest,
		BundleHash:      res.BundleHash,
		Quota:           rc.quota,
	}
}

// signWith signs the statement with ks, or fails with the reason a pending
// key gives (it wraps keys.ErrBackendUnavailable, as a backend failing
// mid-signature does, so the tenant's fallback key applies the same way).
func signWith(ctx context.Context, statement []byte, ks []*keyEntry) (*attest.Result, error) {
	signers := make([]attest.Signer, len(ks))
	for i, k := range ks {
		if k.pending != nil {
			return nil, k.pending
		}
		signers[i] = k.signer()
	}
	return attest.Sign(ctx, statement, signers)
}

// encodeWithBundles marshals v, a response holding the bundles *bundles
// points into, splicing the bundles in as the canonical bytes they already
// are: encoding/json would otherwise re-scan and compact every bundle (a
// measurable share of each request). v's JSON must hold the member
// "bundles" exactly once.
func encodeWithBundles(v any, bundles *[]json.RawMessage) ([]byte, error) {
	saved := *bundles
	*bundles = []json.RawMessage{}
	b, err := json.Marshal(v)
	*bundles = saved
	if err != nil {
		return nil, err
	}
	const marker = `"bundles":[]`
	i := bytes.Index(b, []byte(marker))
	if i < 0 || bytes.Count(b, []byte(marker)) != 1 {
		return nil, errors.New("encode response: bundles field not found exactly once")
	}
	n := len(b) + 2
	for _, x := range saved {
		n += len(x) + 1
	}
	out := make([]byte, 0, n)
	out = append(out, b[:i+len(marker)-1]...)
	for j, x := range saved {
		if j > 0 {
			out = append(out, ',')
		}
		out = append(out, x...)
	}
	out = append(out, b[i+len(marker)-1:]...)
	return append(out, '\n'), nil
}

// writeBody writes a 200 JSON answer.
func writeBody(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Type", proto.MediaTypeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// fallbackFor returns the tenant's fallback key when the request used the
// tenant's default key (not explicit key ids), that key's backend failed,
// and the fallback key can sign now.
func (a *Agent) fallbackFor(rc *requestContext, err error) *keyEntry {
	if len(rc.req.KeyIDs()) > 0 || len(rc.keys) != 1 || !errors.Is(err, keys.ErrBackendUnavailable) {
		return nil
	}
	t := rc.snap.cfg.Tenant(rc.tenant)
	if t == nil || t.FallbackKey == "" {
		return nil
	}
	fb, ok := rc.snap.keys[t.FallbackKey]
	if !ok || !fb.serves(rc.tenant) || fb.usable(a.now()) != "" {
		return nil
	}
	return fb
}
