package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/stellaops/signer-agent/internal/aiosync"
	"github.com/stellaops/signer-agent/internal/fsutil"
)

// File is what the Log needs of an open segment. LogConfig.WrapFile lets a
// test put a fault-injecting File around the real one.
type File interface {
	// WriteAt writes p at off (pwrite). A short write returns an error.
	WriteAt(p []byte, off int64) (int, error)
	// Sync makes written data durable (fdatasync).
	Sync() error
	// Truncate cuts the file to size bytes.
	Truncate(size int64) error
	Close() error
}

// osFile is the real File: Sync is fdatasync, which is enough for the
// segments (a size change is data-relevant metadata; timestamps are not
// needed to read the records back). With a Syncer the flush runs through
// Linux AIO and the writer waits on the poller; without one (or when AIO
// fails as a mechanism) it is a blocking fdatasync(2).
type osFile struct {
	*os.File
	aio *aiosync.Syncer
}

func (f osFile) Sync() error { return aiosync.Sync(f.aio, f.File) }

// syncDir fsyncs a directory so that entries created, renamed or removed in
// it survive a crash.
func syncDir(dir string) error { return fsutil.SyncDir(dir) }

// lockDir takes an exclusive, non-blocking flock on DIR/lock so that two
// processes never write the same log. The kernel drops it when the process
// dies.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log lock: %w", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("audit log lock: %w", err)
	}
	return f, nil
}

// writeFileSync replaces path with data durably (fsutil.WriteFileAtomic:
// temporary file, fsync, rename, fsync of the directory).
func writeFileSync(path string, data []byte) error {
	return fsutil.WriteFileAtomic(path, data, 0o600)
}
