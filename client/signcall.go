package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/stellaops/signer-agent/proto"
)

// defaults fills a request's PoE and scanner image digest from the
// client's where the request carries none, and reports whether it filled
// either (then the caller signs a copy, never the request it was given).
func (c *Client) defaults(poe *proto.PoE, digest string) (*proto.PoE, string, bool) {
	filled := false
	if poe == nil && c.PoE != nil {
		poe, filled = c.PoE, true
	}
	if digest == "" && c.ScannerImageDigest != "" {
		digest, filled = c.ScannerImageDigest, true
	}
	return poe, digest, filled
}

// signCall encodes req, posts it to path and decodes the answer into out,
// reporting whether the agent replayed an earlier answer. The response may
// exceed the fixed MaxResponseBytes by copies base64 copies of the request
// (statements come back in the envelope and again in each bundle).
func (c *Client) signCall(ctx context.Context, op, path string, req any, copies int, out any) (bool, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return false, fmt.Errorf("signer-agent: %s: encode request: %w", op, err)
	}
	limit := MaxResponseBytes + int64(len(body))*2*int64(copies)
	return c.callReplayed(ctx, path, body, limit, out)
}
