package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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
	if (req.PoE == nil && c.PoE != nil) || (req.ScannerImageDigest == "" && c.ScannerImageDigest != "") {
		r := *req // the caller's request is not modified
		if r.PoE == nil {
			r.PoE = c.PoE
		}
		if r.ScannerImageDigest == "" {
			r.ScannerImageDigest = c.ScannerImageDigest
		}
		req = &r
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("signer-agent: SignExport: encode request: %w", err)
	}
	// The response carries export.json (about the size of the request's
	// file list) and the statement (about the same again) base64-encoded
	// in the envelope and in each signature's bundle; allow for that on
	// top of the fixed cap.
	sigs := max(len(req.KeyIDs()), 1)
	limit := MaxResponseBytes + int64(len(body))*2*int64(sigs+2)
	var out proto.ExportResponse
	replayed, err := c.callReplayed(ctx, proto.PathSignExport, body, limit, &out)
	if err != nil {
		return nil, err
	}
	out.Replayed = replayed
	return &out, nil
}
