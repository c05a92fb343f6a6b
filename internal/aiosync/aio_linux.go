//go:build linux && (amd64 || arm64)

package aiosync

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Syncer runs fdatasync through Linux native AIO (IOCB_CMD_FDSYNC,
// Linux 4.18 and later) and waits for the completion on an eventfd through
// the Go runtime's poller.
//
// Why: a blocking fdatasync keeps the calling goroutine's P (the runtime's
// licence to run Go code) for the whole flush unless sysmon happens to
// notice and hand it off, which it rarely does for syscalls of a few
// hundred microseconds. On a 2-core node every commit then takes half of
// the agent's capacity away for as long as the disk flushes, and the
// handlers the commit just acknowledged sit on that P's run queue. Parked
// on the poller, the writer frees its P while the kernel flushes in a
// worker thread (docs/perf.md §7 has the measurements).
//
// The flush is the kernel's vfs_fsync_range(datasync): the same guarantee
// as fdatasync(2). One operation is in flight at a time; the Log's writer
// is the only caller.
type Syncer struct {
	mu     sync.Mutex
	ctx    uintptr  // aio_context_t
	evfd   int      // eventfd the kernel signals completions on
	ev     *os.File // evfd, non-blocking, registered with the poller
	seq    uint64   // aio_data of the last submission
	closed bool
	broken atomic.Pointer[string] // why the syncer gave up, for Stats
}

// iocb is struct iocb of linux/aio_abi.h for 64-bit little-endian ABIs
// (aio_key precedes aio_rw_flags there).
type iocb struct {
	data      uint64
	key       uint32
	rwFlags   uint32
	opcode    uint16
	reqPrio   int16
	fildes    uint32
	buf       uint64
	nbytes    uint64
	offset    int64
	reserved2 uint64
	flags     uint32
	resfd     uint32
}

// ioEvent is struct io_event.
type ioEvent struct {
	data uint64
	obj  uint64
	res  int64
	res2 int64
}

const (
	iocbCmdFdsync = 3      // IOCB_CMD_FDSYNC
	iocbFlagResfd = 1 << 0 // IOCB_FLAG_RESFD: signal aio_resfd on completion
)

// Compile-time checks of the ABI sizes.
var (
	_ [64 - unsafe.Sizeof(iocb{})]struct{}
	_ [unsafe.Sizeof(iocb{}) - 64]struct{}
	_ [32 - unsafe.Sizeof(ioEvent{})]struct{}
	_ [unsafe.Sizeof(ioEvent{}) - 32]struct{}
)

// ErrUnusable marks a failure of the AIO machinery itself (as opposed
// to the flush failing): the caller falls back to a blocking fdatasync.
var ErrUnusable = errors.New("linux aio unusable")

// New sets up an AIO context and its eventfd. It fails where
// AIO is not available (a seccomp filter without @aio, fs.aio-max-nr
// exhausted, a kernel without AIO).
func New() (*Syncer, error) {
	var ctx uintptr
	if _, _, e := unix.Syscall(unix.SYS_IO_SETUP, 1, uintptr(unsafe.Pointer(&ctx)), 0); e != 0 {
		return nil, fmt.Errorf("io_setup: %w", e)
	}
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		_, _, _ = unix.Syscall(unix.SYS_IO_DESTROY, ctx, 0, 0)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	// os.NewFile sees the non-blocking fd and registers it with the
	// poller, so Read parks the goroutine instead of blocking a thread.
	// (Calling Fd on it would switch it back to blocking mode: the fd
	// number is kept separately.)
	return &Syncer{ctx: ctx, evfd: fd, ev: os.NewFile(uintptr(fd), "aiosync-eventfd")}, nil
}

// fdatasync flushes fd's data (and the metadata needed to read it back) and
// returns the flush's own error (EIO, ENOSPC, …) as fdatasync would. An
// error wrapping ErrUnusable means the flush was not attempted.
func (s *Syncer) Fdatasync(fd uintptr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%w: closed", ErrUnusable)
	}
	s.seq++
	cb := &iocb{data: s.seq, opcode: iocbCmdFdsync, fildes: uint32(fd), flags: iocbFlagResfd, resfd: uint32(s.evfd)}
	cbs := [1]*iocb{cb}
	if err := s.submit(&cbs[0]); err != nil {
		return err
	}
	// From here on the kernel owns cb until the completion is reaped: a
	// failure to wait is not a reason to submit again.
	// An eventfd read returns once the counter is non-zero (and resets
	// it): the completion is there to reap.
	var buf [8]byte
	if _, err := s.ev.Read(buf[:]); err != nil {
		return s.poison(fmt.Errorf("%w: wait for the flush: %w", ErrUnusable, err))
	}
	var ev ioEvent
	for {
		n, _, e := unix.Syscall6(unix.SYS_IO_GETEVENTS, s.ctx, 1, 1, uintptr(unsafe.Pointer(&ev)), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 || n != 1 || ev.data != s.seq {
			return s.poison(fmt.Errorf("%w: io_getevents: n=%d errno=%v data=%d want %d", ErrUnusable, n, e, ev.data, s.seq))
		}
		break
	}
	runtime.KeepAlive(cb)
	if ev.res < 0 {
		return syscall.Errno(-ev.res)
	}
	return nil
}

// submit queues one iocb.
func (s *Syncer) submit(cbs **iocb) error {
	for {
		n, _, e := unix.Syscall(unix.SYS_IO_SUBMIT, s.ctx, 1, uintptr(unsafe.Pointer(cbs)))
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EBADF:
			return e // the file's own problem, as fdatasync would say
		case e != 0:
			return fmt.Errorf("%w: io_submit: %w", ErrUnusable, e)
		case n != 1:
			return fmt.Errorf("%w: io_submit queued %d of 1", ErrUnusable, n)
		}
		return nil
	}
}

// poison closes the syncer after a state it cannot account for (a
// completion it cannot reap; io_destroy waits for what is in flight) and
// returns err. Later flushes fall back to blocking fdatasync.
func (s *Syncer) poison(err error) error {
	msg := err.Error()
	s.broken.Store(&msg)
	s.closed = true
	s.destroy()
	return err
}

// failure says why the syncer stopped working, "" while it works.
func (s *Syncer) Failure() string {
	if p := s.broken.Load(); p != nil {
		return *p
	}
	return ""
}

// Close releases the AIO context and the eventfd, waiting for a flush in
// flight. It is idempotent.
func (s *Syncer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.closed = true
		s.destroy()
	}
	return nil
}

func (s *Syncer) destroy() {
	if s.ctx != 0 {
		_, _, _ = unix.Syscall(unix.SYS_IO_DESTROY, s.ctx, 0, 0)
		s.ctx = 0
	}
	if s.ev != nil {
		_ = s.ev.Close()
		s.ev = nil
	}
}
