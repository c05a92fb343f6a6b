package attest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/stellaops/signer-agent/proto"
)

// ErrPolicyConflict is returned when a request carries a top-level policy and
// its predicate already has a "policy" member.
var ErrPolicyConflict = errors.New("predicate already has a \"policy\" member")

// statement is the in-toto Statement v1 shape, as verification reads it. It
// is written by hand rather than with in-toto's protobuf types because those
// hold the predicate as a protobuf Struct, which would turn every number
// into a double.
type statement struct {
	Type          string          `json:"_type"`
	Subject       []proto.Subject `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

// BuildStatement returns the canonical (RFC 8785) bytes of the in-toto
// Statement v1 for a validated request. A request policy is placed in the
// predicate as "policy" so that the signature covers it.
//
// The statement is written directly in canonical order
// (_type, predicate, predicateType, subject; digest, name), without
// encoding/json or a tree: the predicate goes through the canonicaliser
// straight from the request's bytes (jcs.go), the policy member is added
// while its object is written, and Go strings must be valid UTF-8 (never
// replaced by U+FFFD). The bytes are those that encoding/json followed by
// gowebpki/jcs produced before (FuzzBuildStatementMatchesLegacy and the
// golden files hold them to that). Nil subjects, digests and predicate are
// written as null, as encoding/json did.
func BuildStatement(req *proto.SignRequest) ([]byte, error) {
	n := len(req.Predicate) + 128 + len(proto.StatementType) + len(req.PredicateType)
	for _, s := range req.Subject {
		n += 32 + len(s.Name) + 160*len(s.Digest)
	}
	out := make([]byte, 0, n)
	out = append(out, `{"_type":`...)
	out = appendString(out, proto.StatementType)
	out = append(out, `,"predicate":`...)
	out, err := appendPredicate(out, req)
	if err != nil {
		return nil, err
	}
	out = append(out, `,"predicateType":`...)
	if out, err = appendGoString(out, req.PredicateType, "predicateType"); err != nil {
		return nil, err
	}
	out = append(out, `,"subject":`...)
	if req.Subject == nil {
		out = append(out, "null"...)
	} else {
		out = append(out, '[')
		for i, s := range req.Subject {
			if i > 0 {
				out = append(out, ',')
			}
			out = append(out, `{"digest":`...)
			if out, err = appendStringMap(out, s.Digest); err != nil {
				return nil, fmt.Errorf("encode statement: subject[%d].digest: %w", i, err)
			}
			out = append(out, `,"name":`...)
			if !utf8.ValidString(s.Name) {
				return nil, fmt.Errorf("encode statement: subject[%d].name: %w", i, errInvalidUTF8)
			}
			out = appendString(out, s.Name)
			out = append(out, '}')
		}
		out = append(out, ']')
	}
	return append(out, '}'), nil
}

// appendPredicate writes the canonical predicate, with the request policy
// as its "policy" member when there is one.
func appendPredicate(out []byte, req *proto.SignRequest) ([]byte, error) {
	if len(req.Predicate) == 0 {
		if req.Policy != nil {
			return nil, errors.New("decode predicate: empty predicate cannot carry the policy")
		}
		return append(out, "null"...), nil
	}
	c := getCanon(req.Predicate, out, proto.MaxJSONDepth)
	defer putCanon(c)
	var err error
	if req.Policy == nil {
		err = c.document()
	} else {
		var pol []byte
		if pol, err = policyJSON(req.Policy); err != nil {
			return nil, err
		}
		if c.peek() != '{' {
			return nil, errors.New("decode predicate: a predicate that carries the policy must be a JSON object")
		}
		if err = c.object(&extraMember{name: "policy", value: pol}); err == nil {
			if c.peek(); c.pos != len(c.in) {
				err = c.fail(c.pos, "trailing data after JSON value")
			}
		}
	}
	if errors.Is(err, errExtraConflict) {
		return nil, ErrPolicyConflict
	}
	if err != nil {
		return nil, fmt.Errorf("%w: predicate: %v", errCanon, err)
	}
	return c.out, nil
}

// policyJSON is the canonical form of the policy member: what
// encoding/json gave for proto.Policy (viewSet omitted when empty).
func policyJSON(p *proto.Policy) ([]byte, error) {
	out := append([]byte(nil), `{"digest":`...)
	out, err := appendGoString(out, p.Digest, "policy.digest")
	if err != nil {
		return nil, err
	}
	if len(p.ViewSet) > 0 {
		out = append(out, `,"viewSet":[`...)
		for i, v := range p.ViewSet {
			if i > 0 {
				out = append(out, ',')
			}
			if !utf8.ValidString(v) {
				return nil, fmt.Errorf("encode statement: policy.viewSet[%d]: %w", i, errInvalidUTF8)
			}
			out = appendString(out, v)
		}
		out = append(out, ']')
	}
	return append(out, '}'), nil
}

func appendGoString(out []byte, s, what string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, fmt.Errorf("encode statement: %s: %w", what, errInvalidUTF8)
	}
	return appendString(out, s), nil
}

// AppendStringMap appends a map of strings as an RFC 8785 object (nil as
// null); a key or value that is not valid UTF-8 is an error.
func AppendStringMap(out []byte, m map[string]string) ([]byte, error) { return appendStringMap(out, m) }

// appendStringMap writes a map of strings as a canonical object (nil as
// null).
func appendStringMap(out []byte, m map[string]string) ([]byte, error) {
	if m == nil {
		return append(out, "null"...), nil
	}
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return nil, errInvalidUTF8
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int { return compareUTF16([]byte(a), []byte(b)) })
	out = append(out, '{')
	for i, k := range keys {
		if i > 0 {
			out = append(out, ',')
		}
		out = appendString(out, k)
		out = append(out, ':')
		out = appendString(out, m[k])
	}
	return append(out, '}'), nil
}
