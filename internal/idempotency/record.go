package idempotency

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/stellaops/signer-agent/proto"
)

// The journal file format. A journal file is a sequence of frames, each
//
//	length  uint32, little endian: the payload's size in bytes
//	crc     uint32, little endian: CRC-32C (Castagnoli) of the payload
//	payload length bytes:
//	  metaLen uint32, little endian
//	  meta    metaLen bytes: one JSON object (wireEntry: everything but the body)
//	  body    the rest: the answer's bytes as sent
//
// The body is stored raw, not in the JSON: an answer is tens of KiB of
// JSON itself, and encoding it again (base64 inside a JSON string) would
// cost a measurable share of a batch.
//
// A frame that is short, whose length is zero or over maxFrameBytes, whose
// CRC does not match or whose payload is not a valid entry ends the file's
// data: it is an incomplete write (the agent crashed mid-append) and
// nothing after it is read. Files are only ever appended to, and rewritten
// whole (compacted) at start.

const (
	frameHeader = 8
	// maxFrameBytes bounds one entry: a frame claiming more is damage.
	maxFrameBytes = 256 << 20
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// wireEntry is an Entry as stored in the journal, but for its body.
type wireEntry struct {
	Tenant   string   `json:"tenant"`
	Key      string   `json:"key"`
	Hash     string   `json:"hash"`    // lowercase hex SHA-256
	Status   int      `json:"status"`  // HTTP status of the stored answer
	Created  int64    `json:"created"` // Unix nanoseconds
	AuditIDs []string `json:"auditIds"`
}

// appendFrame appends e's frame to dst.
func appendFrame(dst []byte, e *Entry) ([]byte, error) {
	w := wireEntry{
		Tenant: e.Tenant, Key: e.Key, Hash: hex.EncodeToString(e.Hash[:]), Status: e.Status,
		Created: e.Created.UnixNano(), AuditIDs: e.AuditIDs,
	}
	meta, err := json.Marshal(&w)
	if err != nil {
		return dst, fmt.Errorf("idempotency journal: encode entry: %w", err)
	}
	size := 4 + len(meta) + len(e.Body)
	if size > maxFrameBytes {
		return dst, fmt.Errorf("idempotency journal: entry of %d bytes over the %d-byte frame limit", size, maxFrameBytes)
	}
	dst = binary.LittleEndian.AppendUint32(dst, uint32(size))
	crcAt := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, 0)
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(meta)))
	dst = append(append(dst, meta...), e.Body...)
	binary.LittleEndian.PutUint32(dst[crcAt:], crc32.Checksum(dst[start:], crcTable))
	return dst, nil
}

// errFrame ends a file's data: what follows is not read.
var errFrame = errors.New("idempotency journal: incomplete or damaged frame")

// parseFrames reads the frames of one journal file in order. It returns
// the entries of every good frame up to the first bad one and how many
// bytes they span; a file that ends exactly after a frame has n ==
// len(b). It never fails: damage only ends the data early.
func parseFrames(b []byte) (entries []Entry, n int) {
	for n < len(b) {
		e, size, err := parseFrame(b[n:])
		if err != nil {
			return entries, n
		}
		entries = append(entries, e)
		n += size
	}
	return entries, n
}

// parseFrame reads the frame at the start of b.
func parseFrame(b []byte) (Entry, int, error) {
	if len(b) < frameHeader {
		return Entry{}, 0, errFrame
	}
	size := binary.LittleEndian.Uint32(b)
	sum := binary.LittleEndian.Uint32(b[4:])
	if size == 0 || size > maxFrameBytes || uint64(len(b)-frameHeader) < uint64(size) {
		return Entry{}, 0, errFrame
	}
	p := b[frameHeader : frameHeader+int(size)]
	if crc32.Checksum(p, crcTable) != sum {
		return Entry{}, 0, errFrame
	}
	e, err := decodeEntry(p)
	if err != nil {
		return Entry{}, 0, err
	}
	return e, frameHeader + int(size), nil
}

// decodeEntry decodes and checks one payload.
func decodeEntry(p []byte) (Entry, error) {
	if len(p) < 4 {
		return Entry{}, fmt.Errorf("%w: short payload", errFrame)
	}
	n := binary.LittleEndian.Uint32(p)
	if uint64(n) > uint64(len(p)-4) {
		return Entry{}, fmt.Errorf("%w: bad metadata length", errFrame)
	}
	var w wireEntry
	if err := json.Unmarshal(p[4:4+n], &w); err != nil {
		return Entry{}, fmt.Errorf("%w: %v", errFrame, err)
	}
	body := p[4+n:]
	e := Entry{Tenant: w.Tenant, Key: w.Key, Status: w.Status, AuditIDs: w.AuditIDs, Body: body}
	h, err := hex.DecodeString(w.Hash)
	switch {
	case err != nil || len(h) != len(e.Hash) || hex.EncodeToString(h) != w.Hash:
		return Entry{}, fmt.Errorf("%w: bad request hash", errFrame)
	case w.Tenant == "":
		return Entry{}, fmt.Errorf("%w: no tenant", errFrame)
	case proto.ValidateIdempotencyKey(w.Key) != nil:
		return Entry{}, fmt.Errorf("%w: bad key", errFrame)
	case w.Status < 100 || w.Status > 599:
		return Entry{}, fmt.Errorf("%w: bad status", errFrame)
	case w.Created <= 0:
		return Entry{}, fmt.Errorf("%w: bad time", errFrame)
	case len(body) == 0:
		return Entry{}, fmt.Errorf("%w: no body", errFrame)
	case len(w.AuditIDs) == 0:
		return Entry{}, fmt.Errorf("%w: no audit id", errFrame)
	}
	for _, id := range w.AuditIDs {
		if id == "" {
			return Entry{}, fmt.Errorf("%w: empty audit id", errFrame)
		}
	}
	copy(e.Hash[:], h)
	e.Created = time.Unix(0, w.Created).UTC()
	return e, nil
}
