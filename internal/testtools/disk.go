package testtools

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// MountTmpfs mounts a tmpfs of size ("8m") on a new temporary directory,
// unmounted when the test ends: a small real file system for the tests
// that fill one. It needs root (CAP_SYS_ADMIN), which `make test` has; it
// fails, naming what is missing, rather than skip.
func MountTmpfs(t testing.TB, size string) string {
	t.Helper()
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size="+size+",mode=0700"); err != nil {
		t.Fatalf("cannot mount a %s tmpfs on %s (%v): this test needs root (CAP_SYS_ADMIN) to fill a real file system; run it as root, as make test does", size, mnt, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	return mnt
}

// Fill writes a file that leaves about leave bytes free on the file
// system of dir (with leave 0: until the file system is full) and returns
// its path.
func Fill(t testing.TB, dir string, leave int64) string {
	t.Helper()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	n := int64(fs.Bavail)*fs.Bsize - leave
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for n > 0 {
		m, err := f.Write(chunk[:min(int64(len(chunk)), n)])
		n -= int64(m)
		if errors.Is(err, unix.ENOSPC) && leave == 0 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return path
}
