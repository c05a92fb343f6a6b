package agent

import (
	"net/http"

	"github.com/stellaops/signer-agent/internal/release"
	"github.com/stellaops/signer-agent/proto"
)

// handleReferrers is GET /api/v1/signer/verify/referrers?digest=…: the
// release-integrity verdict, its source and the key that signed it.
func (a *Agent) handleReferrers(w http.ResponseWriter, rc *requestContext) {
	d := rc.r.URL.Query().Get("digest")
	if err := release.ValidateDigest(d); err != nil {
		a.refuse(rc.r.Context(), w, rc, gateRoute, deny(proto.CodeInvalidRequest, "digest: want sha256:<64 lowercase hex>", "bad digest query"))
		return
	}
	v, err := rc.snap.rel.Check(rc.r.Context(), d)
	if err != nil {
		a.refuse(rc.r.Context(), w, rc, gateRelease, deny(proto.CodeInvalidRequest, "digest could not be checked", err.Error()))
		return
	}
	writeJSON(w, http.StatusOK, v)
}
