package agent

import (
	"context"

	"github.com/stellaops/signer-agent/internal/export"
	"github.com/stellaops/signer-agent/proto"
)

// exportBodyGate is the body gate of POST /sign/export (SPEC §4.4): it
// reads the body under the cap and the in-flight budget as bodyGate does
// (charged twice: see chargeAgain), decodes and validates the export request strictly
// (proto.DecodeExportRequest) and builds export.json and the provenance
// statement (export.Build) for this agent's installation.
//
// After it, the request is a sign request for the SLSA provenance
// predicate type (rc.req = AsSignRequest: its poe, scannerImageDigest and
// options), so entitlement, release, quotas (the statement's size, one
// artifact), policy (the tenant must allow the predicate type; key
// choice) and the fallback key work as for /sign/dsse.
//
// The audit record names the manifest, not the files: SubjectDigests is
// the manifest digest alone (it covers every file's digest and size),
// with the export id and the number of files beside it.
func (a *Agent) exportBodyGate(_ context.Context, rc *requestContext) *Denial {
	if d := a.readBody(rc); d != nil {
		return d
	}
	body := rc.body
	// An export holds about twice a sign request's memory per body byte
	// (docs/exports.md §2): charge it twice.
	again, err := a.budget.chargeAgain(int64(len(body)))
	rc.onDone = append(rc.onDone, again)
	if err != nil {
		a.metrics.BodyBudgetRefused()
		return bodyDenial(err, rc.snap.cfg.Transport.MaxBodyBytes)
	}
	req, err := proto.DecodeExportRequest(body)
	if err != nil {
		return exportDenial(err)
	}
	rc.rec.PredicateType = proto.PredicateSLSAProvenanceV1
	rc.rec.ScannerDigest = req.ScannerImageDigest
	rc.rec.ExportID = req.Export.ID
	built, err := export.Build(req, exportInstallation(rc))
	if err != nil {
		return exportDenial(err)
	}
	rc.req = req.AsSignRequest()
	rc.export = built
	rc.statement = built.Statement
	rc.rec.ManifestDigest = built.ManifestDigest
	rc.rec.ExportFiles = built.Files
	rc.rec.SubjectDigests = []string{built.ManifestDigest}
	rc.rec.PayloadDigest = built.PayloadDigest
	return nil
}

// exportInstallation is the installation an export's provenance names as
// its builder: the configured authority.installation (the token's inst
// has been checked against it), else the verified token's inst claim;
// "" when there is neither (export.Build then refuses).
func exportInstallation(rc *requestContext) string {
	if inst := rc.snap.cfg.Authority.Installation; inst != "" {
		return inst
	}
	if rc.claims != nil {
		return rc.claims.Installation
	}
	return ""
}
