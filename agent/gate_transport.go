package agent

import (
	"context"
	"fmt"

	"github.com/stellaops/signer-agent/proto"
)

// transportGate enforces the pseudo Host, refuses browser-originated
// requests and bodies declared over the cap.
func transportGate(_ context.Context, rc *requestContext) *Denial {
	r := rc.r
	if r.Host != proto.Host {
		return deny(proto.CodeInvalidRequest, "Host must be "+proto.Host, fmt.Sprintf("wrong Host header (%d bytes)", len(r.Host)))
	}
	_, origin := r.Header["Origin"]
	_, referer := r.Header["Referer"]
	if origin || referer { // present, even empty
		return deny(proto.CodePeerNotAllowed, "browser-originated requests are refused", "request carries Origin or Referer")
	}
	max := rc.snap.cfg.Transport.MaxBodyBytes
	if r.ContentLength > max {
		return deny(proto.CodePayloadTooLarge, fmt.Sprintf("request body over %d bytes", max), fmt.Sprintf("Content-Length %d over cap %d", r.ContentLength, max))
	}
	return nil
}
