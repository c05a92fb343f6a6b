package proto

import (
	"encoding/json"
	"errors"
	"fmt"
)

// MaxBatchItems is the most statements one batch may carry (SPEC §4.5).
const MaxBatchItems = 64

// BatchRequest is the body of POST /api/v1/signer/sign/batch (SPEC §4.5):
// 1–MaxBatchItems sign requests signed under one token, one DPoP proof and
// one pass of the peer, entitlement and release gates.
//
// PoE and ScannerImageDigest may be given once here instead of in every
// item. Because entitlement and release are checked once for the whole
// batch, the items may not disagree about them: an item that carries its
// own poe or scannerImageDigest must carry the batch's value (see
// DecodedBatch.PoE).
type BatchRequest struct {
	Requests           []SignRequest `json:"requests"`
	ScannerImageDigest string        `json:"scannerImageDigest,omitempty"`
	PoE                *PoE          `json:"poe,omitempty"`
}

// batchWire is the strict decoding form of a BatchRequest: the items stay
// raw so each is decoded and validated exactly as a /sign/dsse body.
type batchWire struct {
	Requests           []json.RawMessage `json:"requests"`
	ScannerImageDigest string            `json:"scannerImageDigest,omitempty"`
	PoE                *PoE              `json:"poe,omitempty"`
}

// DecodedBatch is a batch request as the agent sees it after
// DecodeBatchRequest: the batch-level fields, checked, and one BatchItem
// per request in request order.
type DecodedBatch struct {
	// ScannerImageDigest and PoE are the batch's effective values: the
	// top-level ones, else the one value the items agree on ("" / nil when
	// nobody gave one).
	ScannerImageDigest string
	PoE                *PoE
	Items              []BatchItem
}

// BatchItem is one request of a batch. Exactly one of Request and Err is
// set: Err (wrapping ErrInvalidRequest) is the item's own body-validation
// failure, which SPEC §4.5 reports in that item's result while the other
// items go on.
type BatchItem struct {
	// Raw is the item's exact bytes in the batch body (for the item's
	// idempotency hash and audit record).
	Raw     json.RawMessage
	Request *SignRequest
	Err     error
}

// DecodeBatchRequest decodes a batch body. It refuses the whole batch
// (an error wrapping ErrInvalidRequest) when the body is not one strict
// JSON object of this shape, when it holds no item or more than
// MaxBatchItems, when a batch-level field is malformed, or when items
// disagree with each other or with the batch about poe or
// scannerImageDigest: none of those can be decided per item.
//
// Each item is then decoded with DecodeSignRequest, so an item is held to
// exactly the rules of a /sign/dsse body; its failure is recorded in its
// BatchItem and does not refuse the batch. Items inherit the batch's
// effective poe and scannerImageDigest.
func DecodeBatchRequest(b []byte) (*DecodedBatch, error) {
	var w batchWire
	if err := DecodeStrict(b, &w); err != nil {
		return nil, err
	}
	switch {
	case w.Requests == nil:
		return nil, invalid("requests: required")
	case len(w.Requests) == 0:
		return nil, invalid("requests: at least one request is required")
	case len(w.Requests) > MaxBatchItems:
		return nil, invalid("requests: %d requests, at most %d in one batch", len(w.Requests), MaxBatchItems)
	}
	if w.ScannerImageDigest != "" {
		if err := ValidateDigestString(w.ScannerImageDigest); err != nil {
			return nil, invalid("scannerImageDigest: %s", err)
		}
	}
	if err := validatePoE(w.PoE); err != nil {
		return nil, invalid("poe: %s", err)
	}
	out := &DecodedBatch{ScannerImageDigest: w.ScannerImageDigest, PoE: w.PoE, Items: make([]BatchItem, len(w.Requests))}
	for i, raw := range w.Requests {
		it := &out.Items[i]
		it.Raw = raw
		r, err := DecodeSignRequest(raw)
		if err != nil {
			it.Err = fmt.Errorf("requests[%d]: %w", i, err)
			continue
		}
		it.Request = r
		// The batch-level gates see one PoE and one scanner digest.
		if r.ScannerImageDigest != "" {
			switch {
			case out.ScannerImageDigest == "":
				out.ScannerImageDigest = r.ScannerImageDigest
			case out.ScannerImageDigest != r.ScannerImageDigest:
				return nil, invalid("requests[%d].scannerImageDigest: differs from the batch's; a batch is checked for one scanner release", i)
			}
		}
		if r.PoE != nil {
			switch {
			case out.PoE == nil:
				out.PoE = r.PoE
			case *out.PoE != *r.PoE:
				return nil, invalid("requests[%d].poe: differs from the batch's; a batch is checked under one entitlement", i)
			}
		}
	}
	for i := range out.Items {
		if r := out.Items[i].Request; r != nil {
			if r.ScannerImageDigest == "" {
				r.ScannerImageDigest = out.ScannerImageDigest
			}
			if r.PoE == nil && out.PoE != nil {
				p := *out.PoE
				r.PoE = &p
			}
		}
	}
	return out, nil
}

// validatePoE checks a PoE's shape (nil is fine).
func validatePoE(p *PoE) error {
	if p == nil {
		return nil
	}
	switch p.Format {
	case "jwt", "opaque":
	default:
		return errors.New(`format: must be "jwt" or "opaque"`)
	}
	if p.Value == "" {
		return errors.New("value: required")
	}
	return nil
}

// BatchResponse is the 200 body of a batch: the batch's request id and one
// result per request, in request order. A batch refused before the
// per-item gates gets one problem document instead (SPEC §4.5).
type BatchResponse struct {
	RequestID string        `json:"requestId"`
	Results   []BatchResult `json:"results"`
	// Replayed is not on the wire: the client sets it when the agent
	// answered with the kept answer to an earlier batch with the same
	// Idempotency-Key (Idempotent-Replayed: true, SPEC §4.6).
	Replayed bool `json:"-"`
}

// BatchResult is one item's outcome: status 200 with every §4.2 field of a
// sign response inlined, or a 4xx/5xx status with its problem document.
type BatchResult struct {
	Status int `json:"status"`
	// SignResponse is set when Status is 200; its fields are inlined.
	*SignResponse
	// Problem is set when Status is not 200.
	Problem *Problem `json:"problem,omitempty"`
}

// OK reports whether the item was signed.
func (r *BatchResult) OK() bool { return r.Status == 200 && r.SignResponse != nil && r.Problem == nil }

// Check verifies the response's shape against the request it answers:
// one result per request, each either a signed result (status 200 with an
// envelope) or a problem whose status matches. Clients call it before
// trusting Results[i] to belong to request i.
func (r *BatchResponse) Check(items int) error {
	if len(r.Results) != items {
		return fmt.Errorf("batch response has %d results for %d requests", len(r.Results), items)
	}
	for i := range r.Results {
		res := &r.Results[i]
		switch {
		case res.Status == 200:
			if res.SignResponse == nil || res.Problem != nil {
				return fmt.Errorf("results[%d]: status 200 without a sign response, or with a problem", i)
			}
		case res.Status >= 400 && res.Status <= 599:
			if res.Problem == nil || res.SignResponse != nil {
				return fmt.Errorf("results[%d]: status %d without a problem, or with a sign response", i, res.Status)
			}
			if res.Problem.Code == "" {
				return fmt.Errorf("results[%d]: problem without a code", i)
			}
		default:
			return fmt.Errorf("results[%d]: status %d is neither 200 nor an error", i, res.Status)
		}
	}
	return nil
}
