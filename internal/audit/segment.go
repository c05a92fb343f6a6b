package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Segment files are DIR/segment-NNNNNN.jsonl, numbered from 1 without gaps
// (retention removes them from the oldest end only).
const (
	segPrefix = "segment-"
	segSuffix = ".jsonl"
)

// segmentName returns the file name of segment num.
func segmentName(num int) string { return fmt.Sprintf("%s%06d%s", segPrefix, num, segSuffix) }

// parseSegmentName returns the number in a segment file name.
func parseSegmentName(name string) (int, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	digits := name[len(segPrefix) : len(name)-len(segSuffix)]
	if len(digits) < 6 {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n <= 0 || segmentName(n) != name {
		return 0, false
	}
	return n, true
}

// segment is one segment file of a log directory.
type segment struct {
	num  int
	name string
	path string
}

// listSegments returns the segments in dir in order.
func listSegments(dir string) ([]segment, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list audit segments: %w", err)
	}
	var segs []segment
	for _, e := range ents {
		if n, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			segs = append(segs, segment{num: n, name: e.Name(), path: filepath.Join(dir, e.Name())})
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].num < segs[j].num })
	return segs, nil
}

// maxLineBytes bounds one line when reading; the writer refuses records
// that would pass it.
const maxLineBytes = maxRecordBytes + 1024

// errLineTooLong is reported for a line longer than any the log writes.
var errLineTooLong = errors.New("line too long")

// readLines calls fn for each line of r, in order, with its byte offset,
// its 1-based number and its bytes without the '\n' (valid only during the
// call). A final line without '\n' is passed with complete false. A line
// longer than maxLineBytes ends the read: it is passed, cut short, as an
// incomplete line. fn returning errStop ends the read without error.
func readLines(r io.Reader, fn func(off int64, n int, line []byte, complete bool) error) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		off  int64
		n    int
		long []byte
	)
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			if len(long) > maxLineBytes {
				if ferr := fn(off, n+1, long, false); ferr != nil && !errors.Is(ferr, errStop) {
					return ferr
				}
				return nil
			}
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		if len(line) > 0 {
			n++
			complete := line[len(line)-1] == '\n'
			body := line
			if complete {
				body = line[:len(line)-1]
			}
			if ferr := fn(off, n, body, complete); ferr != nil {
				if errors.Is(ferr, errStop) {
					return nil
				}
				return ferr
			}
			off += int64(len(line))
		}
		if err != nil {
			return nil
		}
	}
}

// errStop ends readLines early.
var errStop = errors.New("stop")

// scanResult summarises one segment: the valid, chained prefix of its lines
// and where it ends.
type scanResult struct {
	size    int64 // bytes in the file (or read, with a limit)
	good    int64 // end of the valid prefix
	records int   // records in the valid prefix
	first   head  // first record, when records > 0
	last    head  // last record, when records > 0
	// bad describes the first line past the valid prefix, when good < size.
	badLine int
	badErr  error
	partial bool // the bad line is a final line without '\n'
}

// scanSegment reads a segment (up to limit bytes, when limit >= 0) and
// returns its valid prefix: complete lines whose own hash holds and that
// chain to each other. It does not check the link to earlier segments.
// onRecord, when set, sees each record of the prefix as it is read.
func scanSegment(path string, limit int64, onRecord func(off int64, n int, line []byte, h head) error) (scanResult, error) {
	var res scanResult
	f, err := os.Open(path)
	if err != nil {
		return res, fmt.Errorf("read audit segment: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, limit)
	}
	err = readLines(r, func(off int64, n int, line []byte, complete bool) error {
		res.size = off + int64(len(line))
		if complete {
			res.size++
		}
		if res.badLine != 0 {
			return nil // keep counting bytes
		}
		bad := func(e error) error {
			res.badLine, res.badErr, res.partial = n, e, !complete
			return nil
		}
		if !complete {
			if len(line) > maxLineBytes {
				return bad(errLineTooLong)
			}
			return bad(errTorn)
		}
		h, err := checkLine(line)
		if err != nil {
			return bad(err)
		}
		if res.records > 0 && (h.Seq != res.last.Seq+1 || h.PrevHash != res.last.Hash) {
			return bad(errNoChain)
		}
		if onRecord != nil {
			if err := onRecord(off, n, line, h); err != nil {
				return err
			}
		}
		if res.records == 0 {
			res.first = h
		}
		res.last = h
		res.records++
		res.good = res.size
		return nil
	})
	if err != nil {
		return res, err
	}
	return res, nil
}

var (
	errTorn    = errors.New("incomplete line (no newline)")
	errNoChain = errors.New("does not chain to the line before")
)

// readFirst returns the first record of a segment, ok false when the
// segment is empty.
func readFirst(path string) (h head, ok bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return h, false, fmt.Errorf("read audit segment: %w", err)
	}
	defer f.Close()
	var lerr error
	err = readLines(f, func(_ int64, _ int, line []byte, complete bool) error {
		ok = true
		if !complete {
			lerr = errTorn
		} else {
			h, lerr = checkLine(line)
		}
		return errStop
	})
	if err == nil {
		err = lerr
	}
	return h, ok, err
}

// declaredCut returns the recovery declared for segs[i] by the first
// record of the next non-empty segment, if any: the log left the bytes of
// segs[i] past Offset in place and they are not part of the chain.
// Empty segments and segments whose first line is not a record (one
// abandoned in turn before its first record) are looked past.
func declaredCut(segs []segment, i int) *Recovery {
	for j := i + 1; j < len(segs); j++ {
		h, ok, err := readFirst(segs[j].path)
		if err != nil || !ok {
			continue
		}
		for k := range h.Recovered {
			if h.Recovered[k].Segment == segs[i].name && h.Recovered[k].Reason == RecoveryAbandoned {
				return &h.Recovered[k]
			}
		}
		return nil
	}
	return nil
}

// countLines counts the '\n' in a file.
func countLines(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	n := 0
	for {
		m, err := f.Read(buf)
		n += bytes.Count(buf[:m], []byte{'\n'})
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
