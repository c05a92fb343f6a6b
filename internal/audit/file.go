package audit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

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
// needed to read the records back). With an
// asyncSyncer the flush runs through Linux AIO and the writer waits on the
// poller; without one (or when AIO fails as a mechanism) it is a blocking
// fdatasync(2).
type osFile struct {
	*os.File
	aio *asyncSyncer
}

func (f osFile) Sync() error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if f.aio != nil {
			if serr = f.aio.fdatasync(fd); !errors.Is(serr, errAIOUnusable) {
				return
			}
		}
		serr = fdatasync(fd)
	}); err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}

// fdatasync is a blocking fdatasync(2), retried on EINTR.
func fdatasync(fd uintptr) error {
	for {
		err := unix.Fdatasync(int(fd))
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

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
