package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/stellaops/signer-agent/proto"
)

// Referrers asks the agent for the release-integrity verdict of a scanner
// image digest (GET /api/v1/signer/verify/referrers?digest=…, SPEC §7):
// whether the agent trusts that release, and why. A scanner calls it at
// start with its own image digest, so that an untrusted or unknown release
// shows up at once rather than as release_untrusted on the first sign
// call. An answer with Trusted false is not an error; an invalid digest
// fails before anything is sent.
func (c *Client) Referrers(ctx context.Context, digest string) (*proto.ReleaseVerdict, error) {
	if err := proto.ValidateDigestString(digest); err != nil {
		return nil, fmt.Errorf("signer-agent: Referrers: digest: %w", err)
	}
	var out proto.ReleaseVerdict
	path := proto.PathReferrers + "?digest=" + url.QueryEscape(digest)
	if err := c.call(ctx, http.MethodGet, path, nil, MaxResponseBytes, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
