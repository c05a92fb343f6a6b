package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
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
//
// Preallocated space: the active segment ends in zero bytes the writer has
// not used yet (see Log.preallocate), and records never hold a NUL byte
// (they are JSON). The first NUL therefore ends the data. Bytes of its line
// before it are passed as an incomplete line (a write cut short); non-zero
// bytes after the zeros (a later write that reached the disk when an
// earlier one did not, or damage) are passed as one more incomplete line,
// at the offset of the first of them. readLines returns the offset just
// past the last non-zero byte it read: the end of the data, zero padding
// left out.
func readLines(r io.Reader, fn func(off int64, n int, line []byte, complete bool) error) (int64, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		off  int64
		n    int
		long []byte
	)
	call := func(off int64, n int, line []byte, complete bool) (stop bool, err error) {
		if ferr := fn(off, n, line, complete); ferr != nil {
			if errors.Is(ferr, errStop) {
				return true, nil
			}
			return true, ferr
		}
		return false, nil
	}
	for {
		chunk, err := br.ReadSlice('\n')
		if z := bytes.IndexByte(chunk, 0); z >= 0 {
			line := append(long, chunk[:z]...)
			return zeroTail(br, off, n, line, chunk[z:], err, call)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long, chunk...)
			if len(long) > maxLineBytes {
				_, ferr := call(off, n+1, long, false)
				return off + int64(len(long)), ferr
			}
			continue
		}
		line := chunk
		if long != nil {
			line = append(long, chunk...)
			long = nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return off, err
		}
		if len(line) > 0 {
			n++
			complete := line[len(line)-1] == '\n'
			body := line
			if complete {
				body = line[:len(line)-1]
			}
			if stop, ferr := call(off, n, body, complete); stop {
				return off + int64(len(line)), ferr
			}
			off += int64(len(line))
		}
		if err != nil {
			return off, nil
		}
	}
}

// zeroTail finishes readLines at the first NUL byte. line (at off, after
// n lines) holds the bytes before it, rest the unread bytes of the
// buffered chunk from the NUL on, and rerr the error that came with that
// chunk.
func zeroTail(br *bufio.Reader, off int64, n int, line, rest []byte, rerr error,
	call func(int64, int, []byte, bool) (bool, error)) (int64, error) {
	end := off + int64(len(line))
	if len(line) > 0 {
		n++
		if stop, err := call(off, n, line, false); stop {
			return end, err
		}
	}
	// Look for data after the zeros: the first non-zero byte (passed on)
	// and the last one (the end of the data).
	pos := end // offset of rest[0]
	var (
		first     int64 = -1
		firstData []byte
	)
	scan := func(b []byte) {
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != 0 {
				end = pos + int64(i) + 1
				break
			}
		}
		if first < 0 {
			if i := slices.IndexFunc(b, func(c byte) bool { return c != 0 }); i >= 0 {
				first = pos + int64(i)
				firstData = append([]byte(nil), b[i:min(len(b), i+256)]...)
			}
		}
		pos += int64(len(b))
	}
	scan(rest)
	if rerr == nil || errors.Is(rerr, bufio.ErrBufferFull) {
		buf := make([]byte, 64<<10)
		for {
			m, err := br.Read(buf)
			scan(buf[:m])
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return end, err
			}
		}
	} else if !errors.Is(rerr, io.EOF) {
		return end, rerr
	}
	if first >= 0 {
		if _, err := call(first, n+1, firstData, false); err != nil {
			return end, err
		}
	}
	return end, nil
}

// errStop ends readLines early.
var errStop = errors.New("stop")

// scanResult summarises one segment: the valid, chained prefix of its lines
// and where it ends.
type scanResult struct {
	size    int64 // end of the data in the file (or read, with a limit), zero padding left out
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
	end, err := readLines(r, func(off int64, n int, line []byte, complete bool) error {
		lineEnd := off + int64(len(line))
		if complete {
			lineEnd++
		}
		if res.badLine != 0 {
			return nil // read on: readLines finds where the data ends
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
		res.good = lineEnd
		return nil
	})
	if err != nil {
		return res, err
	}
	res.size = end
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
	_, err = readLines(f, func(_ int64, _ int, line []byte, complete bool) error {
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
