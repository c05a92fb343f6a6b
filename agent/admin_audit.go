package agent

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/proto"
)

// auditAdmin appends the allow record of an admin change. On failure it
// answers audit_unavailable (saying what was not done) and returns false:
// the change must not take effect unaudited.
func (a *Agent) auditAdmin(w http.ResponseWriter, rc *requestContext, change, reason, notDone string) bool {
	rc.rec.Admin, rc.rec.Reason = change, reason
	rc.rec.Decision, rc.rec.Gate, rc.rec.Time = audit.Allow, gateAdmin, a.now().UTC()
	rc.rec.LatencyMS = msSince(a.now, rc.start)
	if err := a.auditor.Append(rc.r.Context(), &rc.rec); err != nil {
		a.log.Error("audit append failed for admin change", zap.String("requestId", rc.id), zap.String("change", change), zap.Error(err))
		writeProblem(w, proto.NewProblem(proto.CodeAuditUnavailable, notDone, rc.id))
		return false
	}
	return true
}

// handleAudit is GET /admin/v1/audit: audit records as JSON lines, oldest
// first, filtered as proto.AuditQuery describes.
func (a *Agent) handleAudit(w http.ResponseWriter, rc *requestContext) {
	q, err := proto.ParseAuditQuery(rc.r.URL.Query())
	if err != nil {
		a.refuse(rc.r.Context(), w, rc, gateRoute, deny(proto.CodeInvalidRequest, trimInvalid(err), "bad audit query"))
		return
	}
	f := audit.Filter{Since: q.Since, Until: q.Until, Tenant: q.Tenant, Decision: q.Decision, Code: q.Code, AfterSeq: q.AfterSeq, Limit: q.Limit}
	w.Header().Set("Content-Type", proto.MediaTypeNDJSON)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	err = a.auditor.Query(f, func(r audit.Record) error {
		return enc.Encode(&r)
	})
	if err != nil {
		// Headers may be out already: log, and end the stream short.
		a.log.Error("audit query", zap.String("requestId", rc.id), zap.Error(err))
	}
	_ = bw.Flush()
}

// handleAuditExport is POST /admin/v1/audit/export: copies the closed
// (optionally: after rotating the active) segments not yet exported into
// dir with a manifest, for shipping off the node, and marks them exported
// so retention may delete them. Audited.
func (a *Agent) handleAuditExport(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	var body proto.AuditExportRequest
	if err := decodeAdminBody(rc.r, &body, false); err != nil || !filepath.IsAbs(body.Dir) {
		a.refuse(ctx, w, rc, gateAdmin, deny(proto.CodeInvalidRequest, `want {"dir": "/absolute/path", "rotate": true|false}`, "bad export request"))
		return
	}
	if !a.auditAdmin(w, rc, "audit-export", "export to "+body.Dir, "the export could not be audited and was not made") {
		return
	}
	if body.Rotate {
		if err := a.auditor.Rotate(ctx); err != nil {
			a.exportFailed(w, rc, "could not rotate the active segment", err)
			return
		}
	}
	m, err := a.auditor.Export(ctx, body.Dir, 0)
	if err != nil {
		a.exportFailed(w, rc, "export failed", err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (a *Agent) exportFailed(w http.ResponseWriter, rc *requestContext, what string, err error) {
	a.log.Error("audit export", zap.String("requestId", rc.id), zap.Error(err))
	code := proto.CodeInternalError
	switch {
	case errors.Is(err, audit.ErrNotDurable):
		code = proto.CodeNotFound
	case errors.Is(err, audit.ErrUnavailable):
		code = proto.CodeAuditUnavailable
	}
	writeProblem(w, proto.NewProblem(code, what+": "+oneLine(err.Error()), rc.id))
}
