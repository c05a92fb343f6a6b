package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/stellaops/signer-agent/client"
	"github.com/stellaops/signer-agent/proto"
)

// signBatch is `signerctl sign` with several --predicate/--type pairs: one
// POST /sign/batch (client.SignBatch). The signed statements are saved
// (outEnvelopes[i], outBundles[i] for statement i, when given) and
// summarised; if the agent refused any, the command fails after saving the
// others.
func (a *app) signBatch(ctx context.Context, c *client.Client, creds *client.Credentials, reqs []proto.SignRequest,
	outEnvelopes, outBundles stringList, asJSON bool) error {
	batch := &proto.BatchRequest{Requests: reqs}
	// The scanner digest and the PoE travel once, at the batch's top
	// level (the client fills them from the credentials).
	for i := range reqs {
		batch.ScannerImageDigest = reqs[i].ScannerImageDigest
		reqs[i].ScannerImageDigest = ""
	}
	if creds != nil && batch.ScannerImageDigest == "" {
		batch.ScannerImageDigest = creds.ScannerImageDigest
	}
	for i := range reqs {
		if err := reqs[i].Validate(); err != nil {
			return fmt.Errorf("statement %d (%s): %w", i+1, reqs[i].PredicateType, err)
		}
	}
	resp, err := c.SignBatch(ctx, batch)
	if err != nil {
		return err
	}
	written := make([][]string, len(resp.Results))
	var refused []string
	for i := range resp.Results {
		r := &resp.Results[i]
		if err := client.BatchItemError(r); err != nil {
			refused = append(refused, fmt.Sprintf("statement %d (%s): %v", i+1, reqs[i].PredicateType, err))
			continue
		}
		if written[i], err = saveSigned(r.SignResponse, at(outEnvelopes, i), at(outBundles, i)); err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		}
	}
	if asJSON {
		if err := printJSON(a.stdout, resp); err != nil {
			return err
		}
	} else {
		printBatchSummary(a.stdout, resp, reqs, written)
		if len(outEnvelopes) == 0 && len(outBundles) == 0 {
			fmt.Fprintln(a.stderr, "signerctl: note: no --out-envelope, --out-bundle or --json: the signatures were not saved")
		}
	}
	if len(refused) > 0 {
		return fmt.Errorf("the agent refused %d of %d statements: %s", len(refused), len(reqs), strings.Join(refused, "; "))
	}
	return nil
}

// at is l[i], or "" when l is empty.
func at(l stringList, i int) string {
	if i < len(l) {
		return l[i]
	}
	return ""
}

// printBatchSummary prints each statement's outcome, in request order.
func printBatchSummary(w io.Writer, resp *proto.BatchResponse, reqs []proto.SignRequest, written [][]string) {
	fmt.Fprintf(w, "requestId:     %s\n", resp.RequestID)
	if resp.Replayed {
		fmt.Fprintln(w, "replayed:      the agent's first answer to this batch (Idempotent-Replayed)")
	}
	for i := range resp.Results {
		r := &resp.Results[i]
		fmt.Fprintf(w, "\n[%d] %s\n", i+1, reqs[i].PredicateType)
		if err := client.BatchItemError(r); err != nil {
			fmt.Fprintf(w, "refused:       %v\n", err)
			continue
		}
		printSignSummary(w, r.SignResponse, written[i])
	}
}
