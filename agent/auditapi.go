package agent

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/internal/audit"
	"github.com/stellaops/signer-agent/proto"
)

// maxAuditQuery bounds one GET /admin/v1/audit answer.
const maxAuditQuery = 100000

// handleAudit is GET /admin/v1/audit: audit records as JSON lines, oldest
// first, filtered by since/until (RFC 3339), tenant, decision, code,
// afterSeq and limit (default 1000).
func (a *Agent) handleAudit(w http.ResponseWriter, rc *requestContext) {
	q := rc.r.URL.Query()
	f := audit.Filter{Tenant: q.Get("tenant"), Decision: q.Get("decision"), Code: q.Get("code"), Limit: 1000}
	bad := func(detail string) {
		a.refuse(rc.r.Context(), w, rc, gateRoute, deny(proto.CodeInvalidRequest, detail, "bad audit query"))
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				bad(name + ": want RFC 3339")
				return
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditQuery {
			bad("limit: 1 to 100000")
			return
		}
		f.Limit = n
	}
	if v := q.Get("afterSeq"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			bad("afterSeq: a record sequence number")
			return
		}
		f.AfterSeq = n
	}
	w.Header().Set("Content-Type", proto.MediaTypeNDJSON)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	err := audit.Query(rc.snap.cfg.Audit.Dir, f, func(r audit.Record) error {
		return enc.Encode(&r)
	})
	if err != nil {
		// Headers may be out already: log, and end the stream short.
		a.log.Error("audit query", zap.String("requestId", rc.id), zap.Error(err))
	}
	_ = bw.Flush()
}

// pruneLoop applies audit retention hourly (the log prunes on rotation and
// export too, but an idle log needs a clock).
func (a *Agent) pruneLoop(ctx context.Context) {
	l, ok := a.auditor.(*audit.Log)
	if !ok {
		return
	}
	every(ctx, time.Hour, func() {
		if removed, err := l.Prune(); err != nil {
			a.log.Warn("audit retention", zap.Error(err))
		} else if len(removed) > 0 {
			a.log.Info("audit retention removed segments", zap.Strings("segments", removed))
		}
	})
}

// handleAuditExport is POST /admin/v1/audit/export {"dir": "/abs", "rotate":
// true}: copies the closed (optionally: after rotating the active) segments
// not yet exported into dir with a manifest, for shipping off the node, and
// marks them exported so retention may delete them. Audited.
func (a *Agent) handleAuditExport(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	l, ok := a.auditor.(*audit.Log)
	if !ok {
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeNotFound, "this agent's audit log cannot be exported", "auditor is not a durable log"))
		return
	}
	var body struct {
		Dir    string `json:"dir"`
		Rotate bool   `json:"rotate"`
	}
	if err := decodeAdminBody(rc.r, &body, false); err != nil || !filepath.IsAbs(body.Dir) {
		a.refuse(ctx, w, rc, "admin", deny(proto.CodeInvalidRequest, `want {"dir": "/absolute/path", "rotate": true|false}`, "bad export request"))
		return
	}
	if !a.auditAdmin(w, rc, "audit-export", "export to "+body.Dir, "the export could not be audited and was not made") {
		return
	}
	if body.Rotate {
		if err := l.Rotate(ctx); err != nil {
			writeProblem(w, proto.NewProblem(proto.CodeAuditUnavailable, "could not rotate the active segment: "+oneLine(err.Error()), rc.id))
			return
		}
	}
	m, err := l.Export(ctx, body.Dir, 0)
	if err != nil {
		a.log.Error("audit export", zap.Error(err))
		writeProblem(w, proto.NewProblem(proto.CodeInternalError, "export failed: "+oneLine(err.Error()), rc.id))
		return
	}
	writeJSON(w, http.StatusOK, m)
}
