package agent

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/internal/metrics"
	"github.com/stellaops/signer-agent/proto"
)

// Idempotent answers (SPEC §4.6), the handler side. A signed answer is
// built before its audit records are appended (rc.encode), journaled
// (persistAnswer), then audited, then published for retries
// (answerCommitted) and written. A retry of a kept answer is audited as a
// replay and answered with the kept bytes (writeReplay).

// writeReplay answers a retry with the kept answer: the same status and
// bytes (the original requestId and auditId inside), with
// Idempotent-Replayed: true. Nothing is signed or counted; the replay is
// audited (gate idempotency, decision allow, naming the original audit
// ids), and if that record cannot be made durable the retry is refused.
func (a *Agent) writeReplay(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	e := rc.replay
	rc.rec.Decision = audit.Allow
	rc.rec.Gate = gateIdempotency
	rc.rec.Reason = fmt.Sprintf("idempotent replay of the answer given at %s (audit ids %s)",
		e.Created.UTC().Format(time.RFC3339Nano), strings.Join(e.AuditIDs, ", "))
	rc.rec.Time = a.now().UTC()
	rc.rec.LatencyMS = msSince(a.now, rc.start)
	if err := a.auditor.Append(ctx, &rc.rec); err != nil {
		a.log.Error("audit append failed for a replay", zap.String("requestId", rc.id), zap.Error(err))
		a.refuse(ctx, w, rc, gateAudit, auditDenial(err))
		return
	}
	a.metrics.Idempotency(rc.route, metrics.IdemReplayed)
	a.log.Debug("replayed",
		zap.String("requestId", rc.id), zap.String("traceId", rc.traceID), zap.String("tenant", rc.tenant),
		zap.String("route", rc.route), zap.Strings("originalAuditIds", e.AuditIDs))
	w.Header().Set(proto.HeaderIdempotentReplayed, "true")
	w.Header().Set("Content-Type", proto.MediaTypeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(e.Body)))
	w.WriteHeader(e.Status)
	_, _ = w.Write(e.Body)
}

// prepareAnswer builds a signed request's answer with rc.encode (when the
// handler set one) before the allow record is appended, naming the record's
// audit id, and journals it for retries. It returns the gate and denial to
// refuse with when either fails: the signature is then discarded.
func (a *Agent) prepareAnswer(ctx context.Context, rc *requestContext, res *attest.Result) (string, *Denial) {
	if rc.encode == nil {
		return "", nil
	}
	if rc.rec.AuditID == "" {
		rc.rec.AuditID = audit.NewID()
	}
	body, err := rc.encode(res)
	if err != nil {
		a.log.Error("encode response", zap.String("requestId", rc.id), zap.Error(err))
		return gateSign, deny(proto.CodeInternalError, "", "encode response: "+err.Error())
	}
	rc.answer = body
	if d := a.persistAnswer(ctx, rc, []string{rc.rec.AuditID}); d != nil {
		return gateIdempotency, d
	}
	return "", nil
}

// persistAnswer journals rc.answer under the request's Idempotency-Key
// (nothing without one), resting on the audit records auditIDs, before
// they are appended. An answer over idempotency.maxBytes is sent but not
// kept.
func (a *Agent) persistAnswer(ctx context.Context, rc *requestContext, auditIDs []string) *Denial {
	if rc.idem == nil {
		return nil
	}
	kept, err := rc.idem.Persist(ctx, http.StatusOK, rc.answer, auditIDs)
	if err != nil {
		a.log.Error("idempotency journal write failed; signature discarded", zap.String("requestId", rc.id), zap.Error(err))
		return journalDenial(err)
	}
	rc.idemKept = kept
	if !kept {
		a.metrics.Idempotency(rc.route, metrics.IdemNotStored)
		a.log.Warn("answer over idempotency.maxBytes: sent but not kept for retries",
			zap.String("requestId", rc.id), zap.Int("bytes", len(rc.answer)))
	}
	return nil
}

// answerCommitted runs once the answer's audit records are durable and
// before it is written: the journaled answer becomes visible to retries
// (requests waiting for this one replay it), and the fault hook of test
// builds fires.
func (a *Agent) answerCommitted(rc *requestContext) {
	if rc.idem != nil {
		rc.idem.Publish()
		if rc.idemKept {
			a.metrics.Idempotency(rc.route, metrics.IdemStored)
		}
	}
	if a.afterCommit != nil {
		a.afterCommit(rc.route)
	}
}
