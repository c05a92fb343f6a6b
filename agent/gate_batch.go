package agent

import (
	"context"

	"github.com/stellaops/signer-agent/proto"
)

// batchBodyGate reads and decodes a /sign/batch body (SPEC §4.5) under the
// cap and the memory budget. It refuses the whole batch only for what
// cannot be decided per item: not one strict JSON object of the batch's
// shape, no item or more than 64, a malformed batch-level field, or items
// that disagree about poe or scannerImageDigest (proto.DecodeBatchRequest).
// An item that fails its own validation is answered in its own result.
//
// The batch-level gates that follow (entitlement, release) read rc.req,
// which here holds only the batch's effective poe and scanner digest.
func (a *Agent) batchBodyGate(_ context.Context, rc *requestContext) *Denial {
	if d := a.readBody(rc); d != nil {
		return d
	}
	b, err := proto.DecodeBatchRequest(rc.body)
	if err != nil {
		return deny(proto.CodeInvalidRequest, trimInvalid(err), err.Error())
	}
	rc.batch = b
	rc.req = &proto.SignRequest{PoE: b.PoE, ScannerImageDigest: b.ScannerImageDigest}
	rc.rec.ScannerDigest = b.ScannerImageDigest
	return nil
}
