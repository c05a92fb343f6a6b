package agent

import (
	"context"

	"github.com/stellaops/signer-agent/proto"
)

// itemStatement is one batch item's canonical statement, or the denial of
// its body, built once by the batch's body gate.
type itemStatement struct {
	statement []byte
	denial    *Denial
}

// batchBodyGate reads and decodes a /sign/batch body (SPEC §4.5) under the
// cap and the memory budget. It refuses the whole batch only for what
// cannot be decided per item: not one strict JSON object of the batch's
// shape, no item or more than 64, a malformed batch-level field, or items
// that disagree about poe or scannerImageDigest (proto.DecodeBatchRequest).
// Each item is validated as a /sign/dsse body and its statement built
// here; an item that fails is answered in its own result.
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
	rc.batchStatements = make([]itemStatement, len(b.Items))
	for i, it := range b.Items {
		s := &rc.batchStatements[i]
		if it.Err != nil {
			s.denial = deny(proto.CodeInvalidRequest, trimInvalid(it.Err), it.Err.Error())
			continue
		}
		s.statement, s.denial = buildStatement(it.Request)
	}
	rc.req = &proto.SignRequest{PoE: b.PoE, ScannerImageDigest: b.ScannerImageDigest}
	rc.rec.ScannerDigest = b.ScannerImageDigest
	return nil
}
