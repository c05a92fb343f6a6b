package aiosync

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Sync is fdatasync(2) of f: through s (Linux AIO, the caller parked on
// the poller) when s is non-nil and usable, else a blocking fdatasync,
// retried on EINTR. fdatasync is enough for append-style files: a size
// change is data-relevant metadata; timestamps are not needed to read the
// data back.
func Sync(s *Syncer, f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		if s != nil {
			if serr = s.Fdatasync(fd); !errors.Is(serr, ErrUnusable) {
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
