package audit

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// DefaultMinFreeBytes is the space the audit volume must have for Ready
// when LogConfig.MinFreeBytes is zero: one full write of the log (a commit
// writes at most 1 MiB at a time, and a record is at most 512 KiB), which
// is also the default preallocation step.
const DefaultMinFreeBytes = maxChunkBytes

// ErrLowSpace is wrapped (with ErrUnavailable) by Ready when the audit
// volume has less room than LogConfig.MinFreeBytes.
var ErrLowSpace = errors.New("audit volume nearly full")

// Ready reports whether the log can take a record now: nil, or an error
// wrapping ErrUnavailable while its last commit failed (signing is refused
// until a write succeeds again), or when the volume cannot take one more
// full write (ErrLowSpace; see LogConfig.MinFreeBytes). The space check is
// a statfs(2) of the log directory: the blocks available to the agent's
// user plus the zero-filled space already allocated ahead of the records
// in the active segment (records overwrite it without allocating), and a
// free inode for the next segment where the file system counts inodes. So
// right after a restart on a full disk the log is not ready before any
// write has failed, and it is ready again as soon as space comes back.
func (l *Log) Ready() error {
	if l.Stats().Unavailable {
		return fmt.Errorf("%w: the last commit failed", ErrUnavailable)
	}
	if l.minFree <= 0 {
		return nil
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(l.dir, &fs); err != nil {
		return fmt.Errorf("%w: statfs %s: %w", ErrUnavailable, l.dir, err)
	}
	free := int64(fs.Bavail) * fs.Bsize
	room := l.st.room.Load()
	if free+room < l.minFree {
		return fmt.Errorf("%w: %w: %d bytes free on the audit volume and %d preallocated, below the %d one write needs",
			ErrUnavailable, ErrLowSpace, free, room, l.minFree)
	}
	if fs.Files > 0 && fs.Ffree == 0 {
		return fmt.Errorf("%w: %w: no free inode on the audit volume for the next segment", ErrUnavailable, ErrLowSpace)
	}
	return nil
}

// publishRoom records the zero-filled space ahead of the records in the
// active segment, for Ready. Writer goroutine (or Open before it starts).
func (l *Log) publishRoom() {
	var room int64
	if l.f != nil && !l.broken {
		room = max(l.alloc-l.off, 0)
	}
	l.st.room.Store(room)
}
