package audit

import (
	"fmt"
	"os"
	"path/filepath"
)

// recover finds the end of the chain and repairs the end of the log after
// a crash. It runs in Open, before the writer starts.
//
// The writer fdatasyncs every chunk before acknowledging it and a chunk is
// at most maxChunkBytes, so after a crash at most that many bytes past the
// last valid record can be unacknowledged: those are truncated
// (RecoveryTruncated). Anything larger is damage to acknowledged records:
// it is left in place, the log goes on in a new segment, and the notice
// says so (RecoveryCorrupt). Earlier segments are not read here: Verify
// does that.
func (l *Log) recover() error {
	st, err := readState(l.dir)
	if err != nil {
		return err
	}
	segs, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	l.seq, l.hash, l.num = 0, GenesisHash, 1
	if a := st.Pruned; a != nil {
		through, ok := parseSegmentName(a.Through)
		if !ok {
			return fmt.Errorf("audit state: bad prune anchor %q", a.Through)
		}
		// Finish a prune that a crash interrupted.
		for len(segs) > 0 && segs[0].num <= through {
			if err := os.Remove(segs[0].path); err != nil {
				return fmt.Errorf("audit retention: %w", err)
			}
			segs = segs[1:]
		}
		l.seq, l.hash, l.num = a.NextSeq-1, a.PrevHash, through+1
	}
	if len(segs) == 0 {
		return l.openSegment()
	}
	last := len(segs) - 1
	appendable := true
	var lastGood int64 // where the last segment's records end
	for i := last; i >= 0; i-- {
		s := segs[i]
		res, err := scanSegment(s.path, -1, nil)
		if err != nil {
			return err
		}
		if i == last {
			lastGood = res.good
		}
		tip := res.last
		// res.size is where the data ends: zero-filled space after it
		// (preallocated, never written) is not a repair.
		if res.good < res.size {
			rec := l.repairTail(s, res, res.size)
			if rec.Reason == RecoveryCorrupt {
				// Go on from the last valid record in the file, so that no
				// seq is used twice.
				if h, ok := lastValid(s.path); ok {
					tip, res.records = h, res.records+1
				}
			}
			if rec.Reason != RecoveryTruncated && i == last {
				appendable = false
			}
			l.pending = append(l.pending, rec)
			l.obs.Event(Event{Kind: EventRecovered, Segment: s.name, Detail: rec.Reason + ": " + rec.Detail})
		}
		if res.records > 0 {
			l.seq, l.hash = tip.Seq, tip.Hash
			l.lastRecNum.Store(int64(s.num))
			break
		}
	}
	l.num = segs[last].num
	if !appendable {
		l.num++
		return l.openSegment()
	}
	f, err := os.OpenFile(segs[last].path, os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("open audit segment: %w", err)
	}
	fi, err := f.Stat()
	if err == nil {
		// The records end at lastGood (a torn write after them was cut off
		// above); zero-filled space after them is used as it is.
		l.off, l.alloc = lastGood, fi.Size()
		if l.alloc < l.off {
			err = fmt.Errorf("segment %s is shorter than its records", segs[last].name)
		}
	}
	if err != nil {
		f.Close()
		return fmt.Errorf("open audit segment: %w", err)
	}
	l.f = l.wrap(f)
	l.activeNum.Store(int64(l.num))
	return nil
}

// repairTail deals with the bytes of s past its valid prefix.
func (l *Log) repairTail(s segment, res scanResult, size int64) Recovery {
	rec := Recovery{Segment: s.name, Offset: res.good}
	tail := size - res.good
	what := fmt.Sprintf("line %d: %v", res.badLine, res.badErr)
	if tail > tornTolerance {
		rec.Reason, rec.AbandonedBytes = RecoveryCorrupt, tail
		rec.Detail = fmt.Sprintf("%s; %d bytes follow, more than one write leaves unacknowledged", what, tail)
		return rec
	}
	err := truncateSync(s.path, res.good)
	if err != nil {
		rec.Reason, rec.AbandonedBytes = RecoveryAbandoned, tail
		rec.Detail = fmt.Sprintf("incomplete write (%s) could not be truncated: %v", what, err)
		return rec
	}
	l.st.fsyncs.Add(1)
	rec.Reason, rec.TruncatedBytes = RecoveryTruncated, tail
	rec.Detail = "incomplete write (" + what + ")"
	return rec
}

// truncateSync cuts path to size and makes that durable.
func truncateSync(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = osFile{File: f}.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	return err
}

// lastValid returns the last complete line of a segment whose own hash
// holds, wherever it is.
func lastValid(path string) (head, bool) {
	f, err := os.Open(path)
	if err != nil {
		return head{}, false
	}
	defer f.Close()
	var (
		last head
		ok   bool
	)
	_, _ = readLines(f, func(_ int64, _ int, line []byte, complete bool) error {
		if complete {
			if h, err := checkLine(line); err == nil {
				last, ok = h, true
			}
		}
		return nil
	})
	return last, ok
}
