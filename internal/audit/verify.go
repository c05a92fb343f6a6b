package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// BreakKind says how the chain is broken.
type BreakKind string

// Break kinds.
const (
	// BreakHash: a record's hash does not match its bytes (edited).
	BreakHash BreakKind = "hash"
	// BreakUnparsable: a line is not a chained record.
	BreakUnparsable BreakKind = "unparsable"
	// BreakSeq: seq is not one more than the record before (records
	// deleted, swapped or duplicated).
	BreakSeq BreakKind = "seq"
	// BreakPrevHash: prevHash is not the hash of the record before.
	BreakPrevHash BreakKind = "prevHash"
	// BreakTorn: a line is cut short inside the log (a truncated segment
	// that is not the last one).
	BreakTorn BreakKind = "torn"
	// BreakMissingSegment: a segment file is missing.
	BreakMissingSegment BreakKind = "missingSegment"
	// BreakExport: an exported segment no longer matches its manifest.
	BreakExport BreakKind = "export"
	// BreakTail: the log ends before a record the state file knows of.
	BreakTail BreakKind = "tail"
)

// Break locates the first problem Verify found.
type Break struct {
	Kind    BreakKind `json:"kind"`
	Segment string    `json:"segment"`
	// Line is 1-based; 0 when the problem is not one line.
	Line   int    `json:"line,omitempty"`
	Offset int64  `json:"offset,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Detail string `json:"detail"`
}

func (b *Break) Error() string {
	if b.Line == 0 {
		return fmt.Sprintf("audit chain broken (%s) at %s: %s", b.Kind, b.Segment, b.Detail)
	}
	return fmt.Sprintf("audit chain broken (%s) at %s line %d: %s", b.Kind, b.Segment, b.Line, b.Detail)
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	// OK is true when the whole chain holds (Break is nil).
	OK       bool   `json:"ok"`
	Segments int    `json:"segments"`
	Records  uint64 `json:"records"`
	FirstSeq uint64 `json:"firstSeq,omitempty"`
	LastSeq  uint64 `json:"lastSeq,omitempty"`
	LastHash string `json:"lastHash,omitempty"`
	// Pruned is where the chain starts when retention deleted older
	// segments.
	Pruned *PruneAnchor `json:"pruned,omitempty"`
	// Recoveries lists the repairs recorded in Notice records.
	Recoveries []Recovery `json:"recoveries,omitempty"`
	// RepairedTails counts them (len(Repairs)); present even when 0, so
	// a script can tell a log that never needed a repair.
	RepairedTails int `json:"repairedTails"`
	// Repairs are the same repairs with the Notice record that declared
	// each one.
	Repairs []RepairedTail `json:"repairs,omitempty"`
	// Incomplete is set when the last segment ends in a line without a
	// newline: a write in progress, or a crash that Open will repair. It
	// does not make the report fail.
	Incomplete *Break `json:"incomplete,omitempty"`
	// Break is the first problem, nil when OK.
	Break *Break `json:"break,omitempty"`
}

// RepairedTail is one repair of a segment's end that the chain records
// (see Recovery): a crash's torn write cut off, a failed write abandoned
// in place, or damage found at open. Unacknowledged bytes are all a
// truncation or an abandonment ever removes from the chain.
type RepairedTail struct {
	Recovery
	// NoticeSeq and NoticeTime identify the Notice record that declared
	// the repair; NoticeSegment is the segment holding it.
	NoticeSeq     uint64    `json:"noticeSeq"`
	NoticeTime    time.Time `json:"noticeTime"`
	NoticeSegment string    `json:"noticeSegment"`
}

// Verify walks the whole chain of the log in dir, across segments, and
// reports the first broken record: edited (hash), deleted, swapped or
// duplicated (seq, prevHash), a segment cut short (torn), a missing
// segment, an exported segment that changed, or a log that ends before a
// record the state file knows of. The error is for failures to read; a
// broken chain is a report with OK false. Verify only reads, so it can run
// on a live log.
func Verify(dir string) (*VerifyReport, error) {
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{}
	expSeq, expPrev, first := uint64(1), GenesisHash, 1
	if a := st.Pruned; a != nil {
		through, _ := parseSegmentName(a.Through)
		for len(segs) > 0 && segs[0].num <= through {
			segs = segs[1:] // deleted by retention, not yet removed
		}
		expSeq, expPrev, first = a.NextSeq, a.PrevHash, through+1
		rep.Pruned = a
	}
	rep.Segments = len(segs)
	fail := func(b *Break) (*VerifyReport, error) {
		rep.Break = b
		return rep, nil
	}
	prevNum := first - 1
	for i, s := range segs {
		if s.num != prevNum+1 {
			return fail(&Break{Kind: BreakMissingSegment, Segment: segmentName(prevNum + 1),
				Detail: fmt.Sprintf("segment missing; the next present is %s", s.name)})
		}
		prevNum = s.num
		limit := int64(-1)
		if cut := declaredCut(segs, i); cut != nil {
			limit = cut.Offset
		}
		var brk *Break
		read, err := readSegmentLines(s.path, limit, func(off int64, n int, line []byte, complete bool) error {
			at := &Break{Segment: s.name, Line: n, Offset: off}
			if !complete {
				at.Kind, at.Detail = BreakTorn, "line cut short (no newline)"
				if i == len(segs)-1 && limit < 0 && len(line) <= maxLineBytes {
					rep.Incomplete = at
				} else {
					brk = at
				}
				return errStop
			}
			h, err := checkLine(line)
			at.Seq = h.Seq
			switch {
			case errors.Is(err, errBadHash):
				at.Kind, at.Detail = BreakHash, "hash does not match the record (edited)"
			case err != nil:
				at.Kind, at.Detail = BreakUnparsable, err.Error()
			case h.Seq != expSeq:
				at.Kind = BreakSeq
				at.Detail = fmt.Sprintf("seq %d where %d was expected", h.Seq, expSeq)
				if h.Seq < expSeq {
					at.Detail += " (duplicated or reordered)"
				} else {
					at.Detail += " (records missing or reordered)"
				}
			case h.PrevHash != expPrev:
				at.Kind, at.Detail = BreakPrevHash, "prevHash is not the hash of the record before"
			default:
				expSeq, expPrev = h.Seq+1, h.Hash
				if rep.Records == 0 {
					rep.FirstSeq = h.Seq
				}
				rep.Records++
				rep.LastSeq, rep.LastHash = h.Seq, h.Hash
				if len(h.Recovered) > 0 {
					rep.Recoveries = append(rep.Recoveries, h.Recovered...)
					var when struct {
						Time time.Time `json:"time"`
					}
					_ = json.Unmarshal(line, &when) // the line is a valid record (checkLine)
					for _, r := range h.Recovered {
						rep.Repairs = append(rep.Repairs, RepairedTail{Recovery: r, NoticeSeq: h.Seq, NoticeTime: when.Time, NoticeSegment: s.name})
					}
					rep.RepairedTails = len(rep.Repairs)
				}
				return nil
			}
			brk = at
			return errStop
		})
		if err != nil {
			return nil, err
		}
		if brk != nil {
			return fail(brk)
		}
		if limit >= 0 && read < limit {
			return fail(&Break{Kind: BreakTorn, Segment: s.name, Offset: read,
				Detail: fmt.Sprintf("segment ends at %d, before the end %d its recovery record declares", read, limit)})
		}
		if e := st.exported(s.name); e != nil {
			if _, sum, err := fileHash(s.path); err != nil {
				return nil, err
			} else if sum != e.SHA256 {
				return fail(&Break{Kind: BreakExport, Segment: s.name, Detail: "segment differs from its exported copy (sha256)"})
			}
		}
	}
	// The record a prune anchor names and every exported record must
	// still be there.
	known := uint64(0)
	if st.Pruned != nil {
		known = st.Pruned.NextSeq
	}
	for _, e := range st.Exported {
		known = max(known, e.LastSeq)
	}
	if known > expSeq-1 {
		return fail(&Break{Kind: BreakTail, Segment: segmentName(prevNum),
			Detail: fmt.Sprintf("log ends at seq %d but seq %d was recorded (exported or prune anchor)", expSeq-1, known)})
	}
	rep.OK = true
	return rep, nil
}

// readSegmentLines runs readLines on a segment file (up to limit bytes
// when limit >= 0) and returns how many bytes it read.
func readSegmentLines(path string, limit int64, fn func(off int64, n int, line []byte, complete bool) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("read audit segment: %w", err)
	}
	defer f.Close()
	return readSegmentFile(f, limit, fn)
}

// readSegmentFile is readSegmentLines on an open file, from its current
// offset; line offsets are relative to it.
func readSegmentFile(f *os.File, limit int64, fn func(off int64, n int, line []byte, complete bool) error) (int64, error) {
	cr := &countingReader{r: f}
	var r io.Reader = cr
	if limit >= 0 {
		r = io.LimitReader(cr, limit)
	}
	_, err := readLines(r, fn)
	return cr.n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
