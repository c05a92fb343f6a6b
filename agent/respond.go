package agent

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/proto"
)

// refuse audits a denial and writes its problem document. If the denial
// cannot be audited, the caller still gets the denial (nothing was signed)
// and the failure is logged.
func (a *Agent) refuse(ctx context.Context, w http.ResponseWriter, rc *requestContext, gateName string, d *Denial) {
	rc.rec.Decision = audit.Deny
	rc.rec.Code = string(d.Code)
	rc.rec.Gate = gateName
	rc.rec.Reason = d.Reason
	rc.rec.Time = a.now().UTC()
	rc.rec.LatencyMS = msSince(a.now, rc.start)
	// Not cancelled with the request: a caller whose connection broke
	// (often the very reason for the denial, a body that timed out) is
	// still audited.
	if err := a.auditDenial(context.WithoutCancel(ctx), &rc.rec); err != nil {
		a.log.Error("audit append failed for denial", zap.String("requestId", rc.id), zap.Error(err))
	}
	a.log.Info("request denied",
		zap.String("requestId", rc.id), zap.String("traceId", rc.traceID), zap.String("tenant", rc.tenant),
		zap.String("route", rc.route), zap.String("decision", audit.Deny), zap.String("gate", gateName),
		zap.String("code", string(d.Code)), zap.String("reason", d.Reason), zap.Float64("latencyMs", rc.rec.LatencyMS))
	for k, vs := range d.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if d.RetryAfter > 0 {
		w.Header().Set(proto.HeaderRetryAfter, retryAfterSeconds(d.RetryAfter))
	}
	writeProblem(w, proto.NewProblem(d.Code, d.Detail, rc.id))
}

func writeProblem(w http.ResponseWriter, p *proto.Problem) {
	w.Header().Set("Content-Type", proto.MediaTypeProblem)
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeProblem(w, proto.NewProblem(proto.CodeInternalError, "", w.Header().Get(proto.HeaderRequestID)))
		return
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", proto.MediaTypeJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func retryAfterSeconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return itoa(s)
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func msSince(now func() time.Time, t time.Time) float64 {
	return float64(now().Sub(t).Microseconds()) / 1000
}

// oneLine makes s safe for a single line (STATUS=, problem details).
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", "; ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}
