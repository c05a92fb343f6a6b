package attest

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stellaops/signer-agent/proto"
)

// ErrPolicyConflict is returned when a request carries a top-level policy and
// its predicate already has a "policy" member.
var ErrPolicyConflict = errors.New("predicate already has a \"policy\" member")

// statement is the in-toto Statement v1 shape. It is written by hand rather
// than with in-toto's protobuf types because those hold the predicate as a
// protobuf Struct, which would turn every number into a double before we can
// check it; here the predicate stays the caller's bytes until RFC 8785.
type statement struct {
	Type          string          `json:"_type"`
	Subject       []proto.Subject `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// BuildStatement returns the canonical (RFC 8785) bytes of the in-toto
// Statement v1 for a validated request. A request policy is placed in the
// predicate as "policy" so that the signature covers it.
func BuildStatement(req *proto.SignRequest) ([]byte, error) {
	pred := req.Predicate
	if req.Policy != nil {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(pred, &m); err != nil {
			return nil, fmt.Errorf("decode predicate: %w", err)
		}
		if _, ok := m["policy"]; ok {
			return nil, ErrPolicyConflict
		}
		pol, err := json.Marshal(req.Policy)
		if err != nil {
			return nil, fmt.Errorf("encode policy: %w", err)
		}
		m["policy"] = pol
		if pred, err = json.Marshal(m); err != nil {
			return nil, fmt.Errorf("encode predicate: %w", err)
		}
	}
	raw, err := json.Marshal(statement{
		Type:          proto.StatementType,
		Subject:       req.Subject,
		PredicateType: req.PredicateType,
		Predicate:     pred,
	})
	if err != nil {
		return nil, fmt.Errorf("encode statement: %w", err)
	}
	return Canonicalize(raw)
}
