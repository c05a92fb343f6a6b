package attest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/stellaops/signer-agent/proto"
)

// maxCanonicalDepth bounds the nesting Canonicalize accepts: a whole
// statement, whose predicate may nest proto.MaxJSONDepth levels.
const maxCanonicalDepth = proto.MaxJSONDepth + 1

// Canonicalize returns the RFC 8785 (JCS) form of a JSON document (any
// value). It writes the canonical bytes straight from b (jcs.go) and
// refuses, rather than repairs, what RFC 8785 cannot represent as sent:
// invalid UTF-8, lone surrogate escapes, repeated member names, numbers
// that proto.CheckNumber refuses, nesting deeper than
// proto.MaxJSONDepth+1 and trailing data.
func Canonicalize(b []byte) ([]byte, error) {
	c := getCanon(b, make([]byte, 0, len(b)), maxCanonicalDepth)
	defer putCanon(c)
	if err := c.document(); err != nil {
		return nil, fmt.Errorf("%w: %v", errCanon, err)
	}
	return c.out, nil
}

// Digest returns "sha256:<hex>" of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
