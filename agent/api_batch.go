package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/proto"
)

// batchItem is one request of an admitted batch: its own request context
// (request, statement, keys, quota field and audit record, with the batch's
// token, entitlement and release facts), and its outcome.
type batchItem struct {
	rc     *requestContext
	res    *attest.Result // signed
	gate   string         // refused: at this gate, with denial
	denial *Denial
}

func (it *batchItem) refuse(gate string, d *Denial) { it.gate, it.denial, it.res = gate, d, nil }

// handleBatch runs the per-item gates of an admitted batch (SPEC §4.5):
// each item's body validation, then one quota reservation for the batch
// (AdmitN: one round trip to a shared store) of which the first Granted
// items go ahead, then policy and signing per item. Every item gets its
// own audit record, allow or deny, and the records of the batch are made
// durable together (AuditLog.AppendBatch: one write and one fdatasync).
// The answer is HTTP 200 with one result per item in request order; it is
// built and journaled (for a request with an Idempotency-Key) before the
// records are appended, and written once they are durable.
//
// An item's request id, in its result and its audit record, is the
// batch's followed by "#" and the item's index ("…#0" first). Item
// denials are always audited: the batch is authenticated and holds at most
// 64 items, so the per-peer denial-record rate does not apply to them.
func (a *Agent) handleBatch(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	items := make([]*batchItem, len(rc.batch.Items))
	for i := range rc.batch.Items {
		items[i] = newBatchItem(rc, i)
	}
	a.admitBatch(ctx, rc, items)
	for _, it := range items {
		if it.denial != nil {
			continue
		}
		if d := a.policyGate(ctx, it.rc); d != nil {
			it.refuse(gatePolicy, d)
			continue
		}
		res, err := a.sign(ctx, it.rc)
		if err != nil {
			a.log.Error("signing failed", zap.String("requestId", it.rc.id), zap.Error(err))
			it.refuse(gateSign, signingDenial(err))
			continue
		}
		it.res = res
	}

	recs := make([]*audit.Record, len(items))
	ids := make([]string, len(items))
	for i, it := range items {
		recs[i] = a.itemRecord(it)
		ids[i] = recs[i].AuditID
	}
	var err error
	if rc.answer, err = a.encodeBatch(rc, items); err != nil {
		a.log.Error("encode batch response", zap.String("requestId", rc.id), zap.Error(err))
		a.refuse(ctx, w, rc, gateSign, deny(proto.CodeInternalError, "", "encode batch response: "+err.Error()))
		return
	}
	if d := a.persistAnswer(ctx, rc, ids); d != nil {
		// Nothing is audited as allowed and nothing is answered: the
		// signatures are discarded and the batch is refused whole.
		a.refuse(ctx, w, rc, gateIdempotency, d)
		return
	}
	n, err := a.auditor.AppendBatch(ctx, recs)
	if err != nil {
		a.log.Error("audit append failed for a batch; signatures of the items not made durable are discarded",
			zap.String("requestId", rc.id), zap.Int("durable", n), zap.Int("items", len(items)), zap.Error(err))
		for _, it := range items[n:] {
			if it.res != nil {
				it.refuse(gateAudit, auditDenial(err))
			}
		}
		if rc.answer, err = a.encodeBatch(rc, items); err != nil {
			a.log.Error("encode batch response", zap.String("requestId", rc.id), zap.Error(err))
			writeProblem(w, proto.NewProblem(proto.CodeInternalError, "", rc.id))
			return
		}
	}
	signed := 0
	for _, it := range items {
		if it.res != nil {
			signed++
		}
		a.logItem(rc, it)
	}
	if rc.ticket != nil {
		rc.ticket.Settle(signed)
	}
	if n == len(items) {
		a.answerCommitted(rc)
	}
	writeBody(w, rc.answer)
}

// newBatchItem derives item i's request context from the batch's, with the
// item's request and the statement (or body denial) the body gate built.
func newBatchItem(rc *requestContext, i int) *batchItem {
	ic := &requestContext{
		id: rc.id + "#" + strconv.Itoa(i), traceID: rc.traceID, route: rc.route, socket: rc.socket,
		start: rc.start, r: rc.r, peer: rc.peer, snap: rc.snap, tenant: rc.tenant, token: rc.token,
		claims: rc.claims, entitlement: rc.entitlement, clientCert: rc.clientCert,
	}
	ic.rec = rc.rec // the batch's token, entitlement and release facts
	ic.rec.RequestID = ic.id
	it := &batchItem{rc: ic}
	if req := rc.batch.Items[i].Request; req != nil {
		noteRequest(ic, req)
	}
	if s := rc.batchStatements[i]; s.denial != nil {
		it.refuse(gateBody, s.denial)
	} else {
		useStatement(ic, s.statement)
	}
	return it
}

// admitBatch applies the plan to the items that passed body validation:
// the size limit per item, then one reservation of the rest (AdmitN, one
// round trip to a shared store). The first Granted go ahead; the others
// get the reservation's Short reason; a reservation refused whole refuses
// them all. The ticket is settled with the number of signatures once the
// batch is audited (and released by the socket handler otherwise).
func (a *Agent) admitBatch(ctx context.Context, rc *requestContext, items []*batchItem) {
	p, ok := planFor(rc)
	var want []*batchItem
	var size int64
	for _, it := range items {
		if ok {
			it.rc.rec.Plan = p.Name
		}
		if it.denial != nil {
			continue
		}
		n := int64(len(it.rc.statement))
		if d := p.CheckSize(n); d != nil {
			den, kind := quotaDenial(d)
			a.metrics.QuotaHit(rc.tenant, p.Name, kind)
			it.refuse(gateQuota, den)
			continue
		}
		want = append(want, it)
		size = max(size, n)
	}
	if len(want) == 0 {
		return
	}
	t, err := a.quota.AdmitN(ctx, rc.tenant, p, size, len(want))
	if err != nil {
		d, kind := quotaDenial(err)
		for _, it := range want {
			if kind != "" {
				a.metrics.QuotaHit(rc.tenant, p.Name, kind)
			}
			it.refuse(gateQuota, d)
		}
		return
	}
	rc.ticket = t
	for i, it := range want {
		if i >= t.Granted {
			d, kind := quotaDenial(t.Short)
			if kind != "" {
				a.metrics.QuotaHit(rc.tenant, p.Name, kind)
			}
			it.refuse(gateQuota, d)
			continue
		}
		if ok && p.ArtifactsPerDay > 0 {
			it.rc.quota = &proto.Quota{Plan: p.Name, RemainingToday: t.Remaining}
		}
	}
}

// itemRecord completes an item's audit record: allow at the sign gate for
// a signature, deny with its code, gate and reason otherwise. The audit id
// is set here, so the answer can name it before the record is appended.
func (a *Agent) itemRecord(it *batchItem) *audit.Record {
	r := &it.rc.rec
	if r.AuditID == "" {
		r.AuditID = audit.NewID()
	}
	if it.res != nil {
		r.Decision, r.Gate, r.BundleHash = audit.Allow, gateSign, it.res.BundleHash
		r.Certificates = auditCertificates(it.res)
	} else {
		r.Decision, r.Code, r.Gate, r.Reason = audit.Deny, string(it.denial.Code), it.gate, it.denial.Reason
	}
	r.Time = a.now().UTC()
	r.LatencyMS = msSince(a.now, it.rc.start)
	return r
}

// encodeBatch is the batch's answer: proto.BatchResponse, with each signed
// item's bundles spliced in as the canonical bytes they already are (as
// encodeWithBundles does for one sign response). The items are encoded
// first and copied once into an answer of the exact size.
func (a *Agent) encodeBatch(rc *requestContext, items []*batchItem) ([]byte, error) {
	id, err := json.Marshal(rc.id)
	if err != nil {
		return nil, err
	}
	const ok = `{"status":200,`
	parts := make([][]byte, len(items))
	size := len(`{"requestId":,"results":[]}`) + len(id) + 1
	for i, it := range items {
		if it.res == nil {
			b, err := json.Marshal(proto.BatchResult{Status: it.denial.Code.Status(),
				Problem: proto.NewProblem(it.denial.Code, it.denial.Detail, it.rc.id)})
			if err != nil {
				return nil, err
			}
			parts[i] = b
			size += len(b) + 1
			continue
		}
		resp := a.signResponse(it.rc, it.res)
		b, err := encodeWithBundles(resp, &resp.Bundles)
		if err != nil {
			return nil, err
		}
		// {"status":200, then the sign response's members, without the
		// sign response's own '{' and newline.
		if len(b) < 3 || b[0] != '{' || b[len(b)-1] != '\n' {
			return nil, fmt.Errorf("encode batch item %d: not an object", i)
		}
		parts[i] = b[1 : len(b)-1]
		size += len(ok) + len(parts[i]) + 1
	}
	out := make([]byte, 0, size)
	out = append(append(append(out, `{"requestId":`...), id...), `,"results":[`...)
	for i, it := range items {
		if i > 0 {
			out = append(out, ',')
		}
		if it.res != nil {
			out = append(out, ok...)
		}
		out = append(out, parts[i]...)
	}
	return append(out, "]}\n"...), nil
}

// logItem logs one item's outcome, as /sign/dsse logs a request's: a
// denial at info level, a signature at debug level (the audit log holds
// every decision), and counts it.
func (a *Agent) logItem(rc *requestContext, it *batchItem) {
	ic := it.rc
	if it.res != nil {
		a.metrics.BatchItem("")
		a.log.Debug("signed",
			zap.String("requestId", ic.id), zap.String("traceId", rc.traceID), zap.String("tenant", rc.tenant),
			zap.String("decision", audit.Allow), zap.Strings("keys", ic.rec.KeyIDs),
			zap.String("payloadDigest", it.res.PayloadDigest), zap.Float64("latencyMs", ic.rec.LatencyMS))
		return
	}
	a.metrics.BatchItem(string(it.denial.Code))
	a.log.Info("batch item denied",
		zap.String("requestId", ic.id), zap.String("traceId", rc.traceID), zap.String("tenant", rc.tenant),
		zap.String("route", rc.route), zap.String("decision", audit.Deny), zap.String("gate", it.gate),
		zap.String("code", string(it.denial.Code)), zap.String("reason", it.denial.Reason))
}
