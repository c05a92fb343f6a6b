package agent

import (
	"bytes"
	"net/http"

	"github.com/stellaops/signer-agent/proto"
)

// maxAdminBody caps admin request bodies.
const maxAdminBody = 64 << 10

// decodeAdminBody strictly decodes an admin request's JSON body into v (a
// proto admin type). An empty body is an error unless allowEmpty (then v
// keeps its zero value). The body buffer is wiped after decoding: admin
// bodies may carry a PIN.
func decodeAdminBody(r *http.Request, v any, allowEmpty bool) error {
	b, err := readSmallBody(r, maxAdminBody)
	defer clear(b)
	if err != nil {
		return err
	}
	if allowEmpty && len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	return proto.DecodeStrict(b, v)
}
