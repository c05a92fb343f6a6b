package proto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
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
	maxSafeInteger       = 1 << 53
	ReportPredicateShort = "stella.ops/report@v1"
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}

// DecodeStrict decodes exactly one JSON value from b into v, refusing unknown
// fields and trailing data.
func DecodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("%s", describeJSONError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("trailing data after JSON value")
	}
	return nil
}

// DecodeSignRequest strictly decodes and validates a sign request.
func DecodeSignRequest(b []byte) (*SignRequest, error) {
	var r SignRequest
	if err := DecodeStrict(b, &r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// Validate checks the request's shape (SPEC §4.1, §9). It does not decide
// policy (predicate allowlists, keys): the agent's gates do.
func (r *SignRequest) Validate() error {
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
	if len(bytes.TrimSpace(r.Predicate)) == 0 || string(bytes.TrimSpace(r.Predicate)) == "null" {
		return invalid("predicate: required")
	}
	if err := CheckJSONObject(r.Predicate); err != nil {
		return invalid("predicate: %s", err)
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
	}
	if r.Policy != nil {
		if err := ValidateDigestString(r.Policy.Digest); err != nil {
			return invalid("policy.digest: %s", err)
		}
		for i, v := range r.Policy.ViewSet {
			if v == "" {
				return invalid("policy.viewSet[%d]: empty", i)
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

// CheckJSONObject verifies that b is a single JSON object whose numbers all
// round-trip exactly through IEEE-754 doubles (RFC 8785 serialises numbers as
// doubles, so integers beyond ±2^53 would silently change), that no object
// repeats a key, and that nesting stays within MaxJSONDepth.
func CheckJSONObject(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return errors.New(describeJSONError(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("must be a JSON object")
	}
	if err := walkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

func walkObject(dec *json.Decoder, depth int) error {
	if depth > MaxJSONDepth {
		return fmt.Errorf("nested deeper than %d", MaxJSONDepth)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errors.New(describeJSONError(err))
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("object key is not a string")
		}
		if seen[key] {
			return errors.New("duplicate object key")
		}
		seen[key] = true
		if err := walkValue(dec, depth); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	if err != nil {
		return errors.New(describeJSONError(err))
	}
	return nil
}

func walkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return errors.New(describeJSONError(err))
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return walkObject(dec, depth+1)
		case '[':
			if depth+1 > MaxJSONDepth {
				return fmt.Errorf("nested deeper than %d", MaxJSONDepth)
			}
			for dec.More() {
				if err := walkValue(dec, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return errors.New(describeJSONError(err))
			}
		}
	case json.Number:
		return CheckNumber(string(v))
	}
	return nil
}

// CheckNumber refuses JSON numbers that cannot be represented exactly as an
// IEEE-754 double: integers beyond ±2^53 and values that overflow to ±Inf.
func CheckNumber(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return errors.New("number is not a finite double")
	}
	if !strings.ContainsAny(s, ".eE") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > maxSafeInteger || n < -maxSafeInteger {
			return errors.New("integer beyond ±2^53 would lose precision")
		}
	} else if f == math.Trunc(f) && math.Abs(f) > maxSafeInteger {
		return errors.New("number beyond ±2^53 would lose precision")
	}
	return nil
}
