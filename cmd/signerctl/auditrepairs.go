package main

import (
	"fmt"
	"io"
	"time"

	"github.com/stellaops/signer-agent/internal/audit"
)

// printRepairs lists the repaired tails of a verified log (the Recovery
// notices in its chain), one line each, after a count. A log that never
// needed one prints nothing.
func printRepairs(w io.Writer, rep *audit.VerifyReport) {
	if rep.RepairedTails == 0 {
		return
	}
	noun := "tails"
	if rep.RepairedTails == 1 {
		noun = "tail"
	}
	fmt.Fprintf(w, "%d repaired %s (declared in the chain by notice records):\n", rep.RepairedTails, noun)
	for _, r := range rep.Repairs {
		fmt.Fprintf(w, "  %s\n", describeRepair(r))
	}
}

// describeRepair says what one repair did, in the operator's terms.
func describeRepair(r audit.RepairedTail) string {
	var what string
	switch r.Reason {
	case audit.RecoveryTruncated:
		what = fmt.Sprintf("torn write of %d bytes cut off after offset %d (never acknowledged)", r.TruncatedBytes, r.Offset)
	case audit.RecoveryAbandoned:
		what = fmt.Sprintf("%d bytes of a failed write left in place after offset %d, not part of the chain (never acknowledged)", r.AbandonedBytes, r.Offset)
	case audit.RecoveryCorrupt:
		what = fmt.Sprintf("DAMAGED: %d bytes after offset %d could not be read and were left for inspection; acknowledged records may be among them", r.AbandonedBytes, r.Offset)
	default:
		what = fmt.Sprintf("%s after offset %d", r.Reason, r.Offset)
	}
	s := fmt.Sprintf("%s: %s; notice seq %d in %s at %s", r.Segment, what, r.NoticeSeq, r.NoticeSegment, r.NoticeTime.UTC().Format(time.RFC3339))
	if r.Detail != "" {
		s += " (" + r.Detail + ")"
	}
	return s
}
