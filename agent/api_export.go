package agent

import (
	"net/http"

	"github.com/stellaops/signer-agent/internal/attest"
	"github.com/stellaops/signer-agent/proto"
)

// handleSignExport answers POST /api/v1/signer/sign/export (SPEC §4.4)
// once every gate passed: it signs the provenance statement the export
// body gate built (with fallback), audits and commits the quota as
// /sign/dsse does, then answers with export.json and its digest plus
// every field of a sign response. Like /sign/dsse, the answer is encoded
// before its audit record is appended, so that an export with an
// Idempotency-Key can journal it (prepareAnswer).
func (a *Agent) handleSignExport(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	rc.encode = func(res *attest.Result) ([]byte, error) {
		resp := &proto.ExportResponse{
			Manifest:       rc.export.Manifest,
			ManifestDigest: rc.export.ManifestDigest,
			SignResponse:   *a.signResponse(rc, res),
		}
		return encodeWithBundles(resp, &resp.SignResponse.Bundles)
	}
	_, gate, d := a.signAndCommit(ctx, rc)
	if d != nil {
		a.refuse(ctx, w, rc, gate, d)
		return
	}
	writeBody(w, rc.answer)
}
