package client

import (
	"context"
	"errors"
	"fmt"

	"github.com/stellaops/signer-agent/proto"
)

// SignBatch asks the agent to sign up to proto.MaxBatchItems statements in
// one call (POST /api/v1/signer/sign/batch, SPEC §4.5): the token, proof,
// peer, entitlement and release checks run once; each statement is then
// validated, counted, checked against policy, signed and audited on its
// own. The batch is sent as given (the agent validates it), except that
// the client's PoE and ScannerImageDigest fill the batch's top level when
// neither the batch nor any item carries one.
//
// A batch the agent admits returns a *proto.BatchResponse with one result
// per request, in request order, whatever each item's outcome; use
// BatchItemError to turn a failed item into an *Error. A batch refused as a
// whole (bad token, malformed body, more than 64 items, …) is an *Error,
// like a SignDSSE refusal. Like every sign call, a batch carries an
// Idempotency-Key and is retried on 429, 503 and transport failures (see
// Client.MaxAttempts): the agent answers a retried batch with its first
// answer, so nothing is signed or counted twice.
func (c *Client) SignBatch(ctx context.Context, req *proto.BatchRequest) (*proto.BatchResponse, error) {
	if req == nil {
		return nil, errors.New("signer-agent: SignBatch: nil request")
	}
	poe, scanner := req.PoE == nil, req.ScannerImageDigest == ""
	sigs := 1
	for i := range req.Requests {
		r := &req.Requests[i]
		poe = poe && r.PoE == nil
		scanner = scanner && r.ScannerImageDigest == ""
		sigs = max(sigs, len(r.KeyIDs()))
	}
	if (poe && c.PoE != nil) || (scanner && c.ScannerImageDigest != "") {
		r := *req // the caller's request is not modified
		if poe {
			r.PoE = c.PoE
		}
		if scanner {
			r.ScannerImageDigest = c.ScannerImageDigest
		}
		req = &r
	}
	// Each signed item carries its statement in its envelope and again in
	// each bundle.
	var out proto.BatchResponse
	replayed, err := c.signCall(ctx, "SignBatch", proto.PathSignBatch, req, sigs+1, &out)
	if err != nil {
		return nil, err
	}
	out.Replayed = replayed
	if err := out.Check(len(req.Requests)); err != nil {
		return nil, fmt.Errorf("signer-agent: POST %s: %w", proto.PathSignBatch, err)
	}
	return &out, nil
}

// BatchItemError returns nil for a signed batch item and, for a refused
// one, an *Error carrying its status, code, detail and request id, so
// errors.Is works with the sentinels as for a single call:
//
//	for i := range resp.Results {
//		if err := client.BatchItemError(&resp.Results[i]); errors.Is(err, client.ErrPredicateNotAllowed) { … }
//	}
func BatchItemError(r *proto.BatchResult) error {
	if r == nil {
		return errors.New("signer-agent: nil batch result")
	}
	if r.OK() {
		return nil
	}
	e := &Error{Status: r.Status}
	if p := r.Problem; p != nil {
		e.Code, e.Title, e.Detail, e.RequestID = p.Code, p.Title, p.Detail, p.RequestID
	} else {
		e.Detail = "batch result without a problem document"
	}
	return e
}
