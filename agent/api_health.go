package agent

import (
	"net/http"

	"github.com/stellaops/signer-agent/proto"
)

func (a *Agent) handleHealthz(w http.ResponseWriter, rc *requestContext) {
	writeJSON(w, http.StatusOK, proto.Health{Status: "ok", Version: Version})
}

// handleReadyz reports ready when the configuration is loaded and every
// active key answers with a public key.
func (a *Agent) handleReadyz(w http.ResponseWriter, rc *requestContext) {
	h := a.readiness(rc.snap)
	status := http.StatusOK
	if h.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, h)
}
