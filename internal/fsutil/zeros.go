package fsutil

import "io"

// zeroBlock is the source of WriteZeros: read-only, shared, so filling a
// file's preallocated space allocates nothing.
var zeroBlock [256 << 10]byte

// WriteZeros writes n zero bytes to w at offset off, in blocks of at most
// 256 KiB from one shared zero buffer. It is how the audit log and the
// idempotency journal preallocate: written zeros, not fallocate, so a
// later overwrite followed by fdatasync commits no block allocation to
// the file system's journal.
func WriteZeros(w io.WriterAt, off, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeroBlock)))
		if _, err := w.WriteAt(zeroBlock[:k], off); err != nil {
			return err
		}
		off, n = off+k, n-k
	}
	return nil
}
