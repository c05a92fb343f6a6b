//go:build linux && (amd64 || arm64)

package aiosync

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

func newSyncer(t *testing.T) *Syncer {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatalf("New: %v (Linux AIO is needed: check fs.aio-max-nr and the seccomp filter)", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAsyncSyncerFlushes(t *testing.T) {
	s := newSyncer(t)
	f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fd := f.Fd()
	// Many rounds: each must reap exactly its own completion and leave the
	// eventfd counter at zero for the next. The page cache shows that the
	// flush happened: the written page is dirty before and clean after.
	for i := range 200 {
		if _, err := f.Write([]byte("record\n")); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			if d := dirtyPages(t, fd); d == 0 {
				t.Fatalf("round %d: no dirty page after a write (the test needs a disk-backed temp dir, not tmpfs)", i)
			}
		}
		if err := s.Fdatasync(fd); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
		if i%50 == 0 {
			if d := dirtyPages(t, fd); d != 0 {
				t.Fatalf("round %d: %d dirty pages after the flush", i, d)
			}
		}
	}
	if s.seq != 200 {
		t.Fatalf("seq = %d, want 200", s.seq)
	}
	if why := s.Failure(); why != "" {
		t.Fatalf("Failure() = %q after good flushes", why)
	}
}

// dirtyPages counts the file's dirty or in-writeback pages (cachestat(2),
// Linux 6.5).
func dirtyPages(t *testing.T, fd uintptr) uint64 {
	t.Helper()
	var st unix.Cachestat_t
	if err := unix.Cachestat(uint(fd), &unix.CachestatRange{}, &st, 0); err != nil {
		t.Fatalf("cachestat: %v (Linux 6.5 or later is needed to observe the flush)", err)
	}
	return st.Dirty + st.Writeback
}

func TestAsyncSyncerConcurrentCallers(t *testing.T) {
	s := newSyncer(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := os.Create(filepath.Join(dir, "seg"+string(rune('a'+g))))
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			for range 25 {
				if _, err := f.Write([]byte("x\n")); err != nil {
					errs <- err
					return
				}
				if err := s.Fdatasync(f.Fd()); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// The flush's own errors come back as fdatasync(2) gives them, and are not
// mistaken for AIO being unusable (which would retry with a blocking call).
func TestAsyncSyncerFileErrors(t *testing.T) {
	s := newSyncer(t)
	t.Run("bad descriptor", func(t *testing.T) {
		err := s.Fdatasync(1 << 20)
		if !errors.Is(err, unix.EBADF) || errors.Is(err, ErrUnusable) {
			t.Fatalf("err = %v, want EBADF", err)
		}
	})
	t.Run("pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		defer w.Close()
		// A pipe has no fsync: io_submit refuses (EINVAL) and the blocking
		// fallback says the same, so Sync reports EINVAL.
		err = Sync(s, w)
		if !errors.Is(err, unix.EINVAL) {
			t.Fatalf("Sync on a pipe: %v, want EINVAL", err)
		}
		if err := unix.Fdatasync(int(w.Fd())); !errors.Is(err, unix.EINVAL) {
			t.Fatalf("fdatasync(2) on a pipe: %v (the test's premise changed)", err)
		}
	})
	if why := s.Failure(); why != "" {
		t.Fatalf("Failure() = %q: file errors must not disable the syncer", why)
	}
}

func TestAsyncSyncerClosedFallsBack(t *testing.T) {
	s := newSyncer(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "seg"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := s.Fdatasync(f.Fd()); !errors.Is(err, ErrUnusable) {
		t.Fatalf("fdatasync after Close: %v, want ErrUnusable", err)
	}
	if err := Sync(s, f); err != nil {
		t.Fatalf("Sync with a closed syncer must fall back to fdatasync(2): %v", err)
	}
}
