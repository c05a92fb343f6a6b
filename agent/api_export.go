package agent

import (
	"net/http"

	"go.uber.org/zap"

	"github.com/stellaops/signer-agent/proto"
)

// handleSignExport answers POST /api/v1/signer/sign/export (SPEC §4.4)
// once every gate passed: it signs the provenance statement the export
// body gate built (with fallback), audits and commits the quota as
// /sign/dsse does, then answers with export.json and its digest plus
// every field of a sign response.
func (a *Agent) handleSignExport(w http.ResponseWriter, rc *requestContext) {
	ctx := rc.r.Context()
	res, gate, d := a.signAndCommit(ctx, rc)
	if d != nil {
		a.refuse(ctx, w, rc, gate, d)
		return
	}
	resp := &proto.ExportResponse{
		Manifest:       rc.export.Manifest,
		ManifestDigest: rc.export.ManifestDigest,
		SignResponse:   *a.signResponse(rc, res),
	}
	body, err := encodeWithBundles(resp, &resp.SignResponse.Bundles)
	if err != nil {
		a.log.Error("encode export response", zap.String("requestId", rc.id), zap.Error(err))
		writeProblem(w, proto.NewProblem(proto.CodeInternalError, "", rc.id))
		return
	}
	writeBody(w, body)
}
