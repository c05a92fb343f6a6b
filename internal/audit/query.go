package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Filter selects records for Query. Zero fields match everything.
type Filter struct {
	// Since (inclusive) and Until (exclusive) bound Record.Time.
	Since, Until time.Time
	Tenant       string
	Decision     string
	Code         string
	// AfterSeq skips records up to and including this seq (paging).
	AfterSeq uint64
	// Limit stops after this many matches; 0 means no limit.
	Limit int
}

func (f *Filter) match(r *Record) bool {
	return r.Seq > f.AfterSeq &&
		(f.Since.IsZero() || !r.Time.Before(f.Since)) &&
		(f.Until.IsZero() || r.Time.Before(f.Until)) &&
		(f.Tenant == "" || r.Tenant == f.Tenant) &&
		(f.Decision == "" || r.Decision == f.Decision) &&
		(f.Code == "" || r.Code == f.Code)
}

// Query streams the records of the log in dir that match f to fn, in seq
// order across segments, stopping at f.Limit matches or at the first error
// fn returns (which Query returns). It reads without checking hashes (that
// is Verify's job): lines that do not decode are skipped, and so are the
// bytes a recovery declared abandoned. On a live log it may show a record
// whose commit is still in flight.
func Query(dir string, f Filter, fn func(Record) error) error {
	segs, err := liveSegments(dir)
	if err != nil {
		return err
	}
	n := 0
	var last uint64
	for i, s := range segs {
		if f.AfterSeq > 0 {
			if h, ok := firstAfter(segs, i); ok && h.Seq <= f.AfterSeq+1 {
				continue // every record of s is at or before AfterSeq
			}
		}
		_, err := readRecords(s.path, 0, cutOf(segs, i), func(_ int64, r *Record) error {
			if r.Seq <= last || !f.match(r) {
				return nil
			}
			last = r.Seq
			if err := fn(*r); err != nil {
				return err
			}
			if n++; f.Limit > 0 && n >= f.Limit {
				return errStop
			}
			return nil
		})
		if errors.Is(err, fs.ErrNotExist) {
			continue // pruned meanwhile
		}
		if err != nil || (f.Limit > 0 && n >= f.Limit) {
			return err
		}
	}
	return nil
}

// Tail calls fn with the last n records of the log in dir, oldest first,
// then, when follow is set, with each record appended after them until ctx
// ends (polling every 200ms; it follows rotation). In follow mode a record
// may be shown whose commit then fails and is cut off again; its request
// was never answered.
func Tail(ctx context.Context, dir string, n int, follow bool, fn func(Record) error) error {
	segs, err := liveSegments(dir)
	if err != nil {
		return err
	}
	start, count := len(segs), 0
	for start > 0 && count < n {
		start--
		c, err := countLines(segs[start].path)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("read audit segment: %w", err)
		}
		count += c
	}
	ring := make([]Record, 0, max(n, 0))
	var (
		cur int   // segment being followed
		off int64 // end of the last complete line read in it
	)
	for i := start; i < len(segs); i++ {
		end, err := readRecords(segs[i].path, 0, cutOf(segs, i), func(_ int64, r *Record) error {
			if n <= 0 {
				return nil
			}
			if len(ring) == n {
				copy(ring, ring[1:])
				ring = ring[:n-1]
			}
			ring = append(ring, *r)
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		cur, off = segs[i].num, end
	}
	for _, r := range ring {
		if err := fn(r); err != nil {
			return err
		}
	}
	if !follow {
		return nil
	}
	if len(segs) > 0 && start == len(segs) {
		// n was 0: start at the end of the newest segment.
		last := segs[len(segs)-1]
		cur = last.num
		off, err = readRecords(last.path, 0, -1, func(int64, *Record) error { return nil })
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	emit := func(_ int64, r *Record) error { return fn(*r) }
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		segs, err := liveSegments(dir)
		if err != nil {
			return err
		}
		for i, s := range segs {
			if s.num < cur {
				continue
			}
			if s.num > cur {
				cur, off = s.num, 0
			}
			limit := int64(-1)
			if i < len(segs)-1 {
				limit = cutOf(segs, i)
			}
			if fi, err := os.Stat(s.path); err == nil && fi.Size() < off {
				off = fi.Size() // a failed write was cut off
			}
			end, err := readRecords(s.path, off, limit, emit)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			off = end
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// liveSegments lists the segments, leaving out those retention has
// already given up.
func liveSegments(dir string) ([]segment, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	st, err := readState(dir)
	if err != nil {
		return nil, err
	}
	if a := st.Pruned; a != nil {
		through, _ := parseSegmentName(a.Through)
		for len(segs) > 0 && segs[0].num <= through {
			segs = segs[1:]
		}
	}
	return segs, nil
}

// cutOf is the declared end of segs[i], -1 when it has none.
func cutOf(segs []segment, i int) int64 {
	if cut := declaredCut(segs, i); cut != nil {
		return cut.Offset
	}
	return -1
}

// firstAfter returns the first record after segs[i].
func firstAfter(segs []segment, i int) (head, bool) {
	for j := i + 1; j < len(segs); j++ {
		h, ok, err := readFirst(segs[j].path)
		if err != nil {
			return h, false
		}
		if ok {
			return h, true
		}
	}
	return head{}, false
}

// readRecords decodes the complete lines of a segment from offset from (a
// line start) up to limit (-1: the end), calls fn for each record, and
// returns the offset after the last complete line. Lines that do not
// decode are skipped.
func readRecords(path string, from, limit int64, fn func(end int64, r *Record) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return from, err
	}
	defer f.Close()
	if from > 0 {
		if _, err := f.Seek(from, 0); err != nil {
			return from, fmt.Errorf("read audit segment: %w", err)
		}
	}
	if limit >= 0 {
		limit -= from
		if limit <= 0 {
			return from, nil
		}
	}
	end := from
	_, err = readSegmentFile(f, limit, func(off int64, _ int, line []byte, complete bool) error {
		if !complete {
			return errStop
		}
		end = from + off + int64(len(line)) + 1
		var r Record
		if json.Unmarshal(line, &r) != nil || r.Seq == 0 {
			return nil
		}
		return fn(end, &r)
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return end, err
}

// Query streams the log's records that match f to fn (see the package
// function Query).
func (l *Log) Query(f Filter, fn func(Record) error) error { return Query(l.dir, f, fn) }
