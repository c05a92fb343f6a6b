package agent

import (
	"net/http"

	"github.com/stellaops/signer-agent/proto"
)

// handleReload is POST /admin/v1/reload.
func (a *Agent) handleReload(w http.ResponseWriter, rc *requestContext) {
	err := a.reload(rc.r.Context())
	rc.rec.Admin = "reload"
	if err != nil {
		a.refuse(rc.r.Context(), w, rc, gateAdmin, deny(proto.CodeInvalidRequest, "new configuration refused; the previous one stays in force", err.Error()))
		return
	}
	if !a.auditAdmin(w, rc, "reload", "", "reload applied but could not be audited") {
		return
	}
	writeJSON(w, http.StatusOK, proto.ReloadResponse{Status: "ok", Version: Version, Checks: map[string]string{"config": a.Config().Path()}})
}
