package attest

// The request path as it was before the strict decoder (issue #12): the
// body decoded with encoding/json, the predicate checked by walking
// encoding/json tokens, the statement marshalled by encoding/json and
// canonicalised by gowebpki/jcs through a generic tree. Kept, test-only, as
// the same-run baseline of BenchmarkBodyGate and as the reference that
// FuzzBuildStatementMatchesLegacy compares the current path with byte for
// byte (on input the strict decoder accepts, the two must agree).

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/gowebpki/jcs"

	"github.com/stellaops/signer-agent/proto"
)

func legacyDecodeSignRequest(b []byte) (*proto.SignRequest, error) {
	var r proto.SignRequest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	if err := legacyValidate(&r); err != nil {
		return nil, err
	}
	return &r, nil
}

func legacyValidate(r *proto.SignRequest) error {
	if len(r.Subject) == 0 || len(r.Subject) > proto.MaxSubjects {
		return errors.New("subject count")
	}
	for _, s := range r.Subject {
		if s.Name == "" || len(s.Name) > proto.MaxSubjectNameLen || len(s.Digest) == 0 {
			return errors.New("subject")
		}
		for alg, hex := range s.Digest {
			if err := proto.ValidateDigest(alg, hex); err != nil {
				return err
			}
		}
	}
	t := r.PredicateType
	if t == "" || len(t) > proto.MaxPredicateTypeLen {
		return errors.New("predicateType")
	}
	for _, c := range t {
		if c <= ' ' || c == 0x7f || c > 0x7e {
			return errors.New("predicateType")
		}
	}
	if len(bytes.TrimSpace(r.Predicate)) == 0 || string(bytes.TrimSpace(r.Predicate)) == "null" {
		return errors.New("predicate: required")
	}
	if err := legacyCheckJSONObject(r.Predicate); err != nil {
		return err
	}
	if r.ScannerImageDigest != "" {
		if err := proto.ValidateDigestString(r.ScannerImageDigest); err != nil {
			return err
		}
	}
	if r.PoE != nil && (r.PoE.Format != "jwt" && r.PoE.Format != "opaque" || r.PoE.Value == "") {
		return errors.New("poe")
	}
	if r.Policy != nil {
		if err := proto.ValidateDigestString(r.Policy.Digest); err != nil {
			return err
		}
		for _, v := range r.Policy.ViewSet {
			if v == "" {
				return errors.New("policy.viewSet")
			}
		}
	} else if r.PredicateType == proto.ReportPredicateShort {
		return errors.New("policy: required")
	}
	if r.Options != nil {
		switch r.Options.Mode {
		case "", proto.ModeKeyful, proto.ModeKeyless:
		default:
			return errors.New("options.mode")
		}
		if len(r.Options.KeyIDs) > proto.MaxKeyIDs {
			return errors.New("options.keyIds")
		}
		seen := map[string]bool{}
		for _, id := range r.Options.KeyIDs {
			if id == "" || seen[id] {
				return errors.New("options.keyIds")
			}
			seen[id] = true
		}
	}
	return nil
}

func legacyCheckJSONObject(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("must be a JSON object")
	}
	if err := legacyWalkObject(dec, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

func legacyWalkObject(dec *json.Decoder, depth int) error {
	if depth > proto.MaxJSONDepth {
		return fmt.Errorf("nested deeper than %d", proto.MaxJSONDepth)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("object key is not a string")
		}
		if seen[key] {
			return errors.New("duplicate object key")
		}
		seen[key] = true
		if err := legacyWalkValue(dec, depth); err != nil {
			return err
		}
	}
	_, err := dec.Token()
	return err
}

func legacyWalkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			return legacyWalkObject(dec, depth+1)
		case '[':
			if depth+1 > proto.MaxJSONDepth {
				return fmt.Errorf("nested deeper than %d", proto.MaxJSONDepth)
			}
			for dec.More() {
				if err := legacyWalkValue(dec, depth+1); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return err
			}
		}
	case json.Number:
		return legacyCheckNumber(string(v))
	}
	return nil
}

func legacyCheckNumber(s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return errors.New("number is not a finite double")
	}
	if !strings.ContainsAny(s, ".eE") {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > 1<<53 || n < -(1<<53) {
			return errors.New("integer beyond ±2^53 would lose precision")
		}
	} else if f == math.Trunc(f) && math.Abs(f) > 1<<53 {
		return errors.New("number beyond ±2^53 would lose precision")
	}
	return nil
}

type legacyStatement struct {
	Type          string          `json:"_type"`
	Subject       []proto.Subject `json:"subject"`
	PredicateType string          `json:"predicateType"`
	Predicate     json.RawMessage `json:"predicate"`
}

func legacyBuildStatement(req *proto.SignRequest) ([]byte, error) {
	pred := req.Predicate
	if req.Policy != nil {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(pred, &m); err != nil {
			return nil, fmt.Errorf("decode predicate: %w", err)
		}
		if m == nil {
			return nil, errors.New("predicate is null")
		}
		if _, ok := m["policy"]; ok {
			return nil, ErrPolicyConflict
		}
		pol, err := json.Marshal(req.Policy)
		if err != nil {
			return nil, err
		}
		m["policy"] = pol
		if pred, err = json.Marshal(m); err != nil {
			return nil, err
		}
	}
	raw, err := json.Marshal(legacyStatement{
		Type:          proto.StatementType,
		Subject:       req.Subject,
		PredicateType: req.PredicateType,
		Predicate:     pred,
	})
	if err != nil {
		return nil, err
	}
	return jcs.Transform(raw)
}
