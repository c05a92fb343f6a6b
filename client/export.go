package client

import (
	"context"
	"errors"

	"github.com/stellaops/signer-agent/proto"
)

// SignExport asks the agent to sign an export (POST
// /api/v1/signer/sign/export, SPEC §4.4): the agent builds export.json from
// req.Export and signs SLSA provenance over it and every file. The
// response's Manifest holds the export.json bytes to ship with the export.
//
// As for SignDSSE, the client's PoE and ScannerImageDigest fill a request
// that carries none (the caller's request is not modified), the request is
// sent as given and the agent validates it; refusals are *Error values.
func (c *Client) SignExport(ctx context.Context, req *proto.ExportRequest) (*proto.ExportResponse, error) {
	if req == nil {
		return nil, errors.New("signer-agent: SignExport: nil request")
	}
	if poe, digest, filled := c.defaults(req.PoE, req.ScannerImageDigest); filled {
		r := *req // the caller's request is not modified
		r.PoE, r.ScannerImageDigest = poe, digest
		req = &r
	}
	// The response carries export.json (about the size of the request's
	// file list) and the statement (about the same again), base64-encoded
	// in the envelope and in each signature's bundle.
	var out proto.ExportResponse
	replayed, err := c.signCall(ctx, "SignExport", proto.PathSignExport, req, max(len(req.KeyIDs()), 1)+2, &out)
	if err != nil {
		return nil, err
	}
	out.Replayed = replayed
	return &out, nil
}
