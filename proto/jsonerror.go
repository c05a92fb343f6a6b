package proto

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DescribeJSONError describes an encoding/json decoding error by position,
// member name and JSON kind only — never by the input's values. The
// standard messages may quote input (a number's digits, a string's
// contents), which in a request body is the caller's data and in a
// credentials file is a secret; this describer is the one both the agent
// (request bodies, problem details) and the client (credentials files)
// use, so the rule cannot drift between them.
func DescribeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var be base64.CorruptInputError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at offset %d", se.Offset)
	case errors.As(err, &te):
		// Value is "number", "string", … and for numbers may continue with
		// the literal itself: keep the kind only.
		kind, _, _ := strings.Cut(te.Value, " ")
		if te.Field != "" {
			return fmt.Sprintf("member %q has the wrong JSON type (%s, want %s)", te.Field, kind, te.Type)
		}
		return fmt.Sprintf("wrong JSON type at offset %d (%s, want %s)", te.Offset, kind, te.Type)
	case errors.As(err, &be):
		return fmt.Sprintf("invalid base64 at byte %d of a value", int64(be))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated or empty JSON"
	}
	// encoding/json reports unknown members as `json: unknown field "x"`:
	// the member's name, which is fine to name (bounded).
	if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
		name = strings.TrimSuffix(name, `"`)
		if len(name) > 64 {
			name = name[:64] + "…"
		}
		return fmt.Sprintf("unknown member %q", name)
	}
	return "malformed JSON"
}

// describeJSONError is DescribeJSONError for this package's decoders.
func describeJSONError(err error) string { return DescribeJSONError(err) }
