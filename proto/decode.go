package proto

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrInvalidRequest is wrapped by every decoding or validation failure;
// callers map it to CodeInvalidRequest.
var ErrInvalidRequest = errors.New("invalid request")

// Limits applied while validating a sign request.
const (
	MaxSubjects          = 1024
	MaxKeyIDs            = 8
	MaxPredicateTypeLen  = 256
	MaxSubjectNameLen    = 2048
	MaxJSONDepth         = 64
	ReportPredicateShort = "stella.ops/report@v1"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// DecodeStrict decodes exactly one JSON value from b into v (a non-nil
// pointer) under the rules of SPEC §15: member names match struct fields
// exactly (case-sensitive; unknown names are refused), no object repeats a
// name, every string is valid UTF-8 without lone surrogates, every number
// keeps its value in RFC 8785 form (CheckNumber), nesting stays within
// MaxJSONDepth levels below the top-level value, and nothing follows the
// value. See strictdecode.go for how JSON maps to Go values. Every failure
// of the input wraps ErrInvalidRequest and names the field and byte offset,
// never input content beyond an unknown field's name.
func DecodeStrict(b []byte, v any) error {
	if err := decodeStrict(b, v, MaxJSONDepth+1); err != nil {
		if _, ok := err.(*syntaxError); ok {
			return invalid("%s", err)
		}
		return err
	}
	return nil
}

// DecodeSignRequest strictly decodes and validates a sign request.
func DecodeSignRequest(b []byte) (*SignRequest, error) {
	var r SignRequest
	if err := DecodeStrict(b, &r); err != nil {
		return nil, err
	}
	// DecodeStrict has checked the predicate's bytes under the same rules
	// as CheckJSONObject (its depth counted from the predicate, too).
	if err := r.validate(false); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks the request's shape (SPEC §4.1, §9), for requests built
// in Go rather than decoded: the predicate goes through CheckJSONObject and
// every string must be valid UTF-8. It does not decide policy (predicate
// allowlists, keys): the agent's gates do.
func (r *SignRequest) Validate() error {
	return r.validate(true)
}

func (r *SignRequest) validate(checkPredicate bool) error {
	if len(r.Subject) == 0 {
		return invalid("subject: at least one subject is required")
	}
	if len(r.Subject) > MaxSubjects {
		return invalid("subject: more than %d subjects", MaxSubjects)
	}
	for i, s := range r.Subject {
		if err := s.validate(); err != nil {
			return invalid("subject[%d]: %s", i, err)
		}
	}
	if err := validatePredicateType(r.PredicateType); err != nil {
		return invalid("predicateType: %s", err)
	}
	pred := bytes.TrimSpace(r.Predicate)
	if len(pred) == 0 || string(pred) == "null" {
		return invalid("predicate: required")
	}
	if checkPredicate {
		if err := CheckJSONObject(r.Predicate); err != nil {
			return invalid("predicate: %s", err)
		}
	} else if pred[0] != '{' {
		return invalid("predicate: must be a JSON object")
	}
	if r.ScannerImageDigest != "" {
		if err := ValidateDigestString(r.ScannerImageDigest); err != nil {
			return invalid("scannerImageDigest: %s", err)
		}
	}
	if r.PoE != nil {
		switch r.PoE.Format {
		case "jwt", "opaque":
		default:
			return invalid("poe.format: must be \"jwt\" or \"opaque\"")
		}
		if r.PoE.Value == "" {
			return invalid("poe.value: required")
		}
		if !utf8.ValidString(r.PoE.Value) {
			return invalid("poe.value: not valid UTF-8")
		}
	}
	if r.Policy != nil {
		if err := ValidateDigestString(r.Policy.Digest); err != nil {
			return invalid("policy.digest: %s", err)
		}
		for i, v := range r.Policy.ViewSet {
			if v == "" {
				return invalid("policy.viewSet[%d]: empty", i)
			}
			if !utf8.ValidString(v) {
				return invalid("policy.viewSet[%d]: not valid UTF-8", i)
			}
		}
	} else if r.PredicateType == ReportPredicateShort {
		return invalid("policy: required for %s", ReportPredicateShort)
	}
	if r.Options != nil {
		switch r.Options.Mode {
		case "", ModeKeyful, ModeKeyless:
		default:
			return invalid("options.mode: must be %q or %q", ModeKeyful, ModeKeyless)
		}
		if len(r.Options.KeyIDs) > MaxKeyIDs {
			return invalid("options.keyIds: more than %d keys", MaxKeyIDs)
		}
		seen := map[string]bool{}
		for i, id := range r.Options.KeyIDs {
			if id == "" {
				return invalid("options.keyIds[%d]: empty", i)
			}
			if !utf8.ValidString(id) {
				return invalid("options.keyIds[%d]: not valid UTF-8", i)
			}
			if seen[id] {
				return invalid("options.keyIds[%d]: duplicate key id", i)
			}
			seen[id] = true
		}
	}
	return nil
}

// Mode returns the requested signing mode, keyful by default.
func (r *SignRequest) Mode() string {
	if r.Options == nil || r.Options.Mode == "" {
		return ModeKeyful
	}
	return r.Options.Mode
}

// KeyIDs returns the requested key ids (nil: the tenant's default key).
func (r *SignRequest) KeyIDs() []string {
	if r.Options == nil {
		return nil
	}
	return r.Options.KeyIDs
}

func (s Subject) validate() error {
	if s.Name == "" {
		return errors.New("name: required")
	}
	if len(s.Name) > MaxSubjectNameLen {
		return fmt.Errorf("name: longer than %d bytes", MaxSubjectNameLen)
	}
	if !utf8.ValidString(s.Name) {
		return errors.New("name: not valid UTF-8")
	}
	if len(s.Digest) == 0 {
		return errors.New("digest: at least one of sha256, sha512 is required")
	}
	for alg, hex := range s.Digest {
		if err := ValidateDigest(alg, hex); err != nil {
			return fmt.Errorf("digest.%s: %w", alg, err)
		}
	}
	return nil
}

var digestLen = map[string]int{"sha256": 64, "sha512": 128}

// ValidateDigest checks a digest algorithm and its lowercase hex value.
func ValidateDigest(alg, hex string) error {
	n, ok := digestLen[alg]
	if !ok {
		return fmt.Errorf("unsupported digest algorithm (want sha256 or sha512)")
	}
	if len(hex) != n {
		return fmt.Errorf("want %d hex characters, got %d", n, len(hex))
	}
	for i := 0; i < len(hex); i++ {
		c := hex[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("not lowercase hex")
		}
	}
	return nil
}

// ValidateDigestString checks an "alg:hex" digest such as "sha256:ab…".
func ValidateDigestString(d string) error {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok {
		return fmt.Errorf("want algorithm:hex")
	}
	return ValidateDigest(alg, hex)
}

func validatePredicateType(t string) error {
	if t == "" {
		return errors.New("required")
	}
	if len(t) > MaxPredicateTypeLen {
		return fmt.Errorf("longer than %d bytes", MaxPredicateTypeLen)
	}
	for _, c := range t {
		if c <= ' ' || c == 0x7f || c > 0x7e {
			return errors.New("must be printable ASCII without spaces")
		}
	}
	return nil
}

// CheckJSONObject verifies that b is a single JSON object that DecodeStrict
// would accept as a predicate: valid UTF-8 without lone surrogates, no
// object repeating a name, every number keeping its value in RFC 8785 form
// (CheckNumber), at most MaxJSONDepth levels of nesting (the object itself
// is the first) and nothing after it.
func CheckJSONObject(b []byte) error {
	s := scanner{data: b, maxDepth: MaxJSONDepth}
	if c := s.peek(); c != '{' {
		if c == 0 && s.pos == len(b) {
			return errors.New("empty JSON")
		}
		return errors.New("must be a JSON object")
	}
	if err := s.skipValue(); err != nil {
		return err
	}
	return s.end()
}
