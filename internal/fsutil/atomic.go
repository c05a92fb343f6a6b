// Package fsutil writes files durably. It is the one way the agent and its
// tools replace a file's content:
//
//  1. create a temporary file in the target's directory (same file system,
//     so the final step is a rename, not a copy), mode perm;
//  2. write the content and fsync the file;
//  3. rename it over the target (WriteFileAtomic, WriteAtomic) or link it
//     to a name that must not exist yet (CreateFileAtomic);
//  4. fsync the directory, so the new directory entry survives a crash.
//
// A reader therefore sees either the whole old file or the whole new one,
// and once a function returns nil the new content survives a power loss.
// On any error before step 3 the target is untouched and the temporary
// file is removed. An error from step 4 is returned (wrapping
// ErrDirNotSynced): the new content is in place but may not survive a
// crash, which a caller recording a security decision (a revocation, say)
// must report rather than ignore.
//
// WriteZeros fills the space the append-only files (the audit log, the
// idempotency journal) preallocate ahead of their writes.
package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrDirNotSynced marks an error from the final directory fsync: the file
// was replaced (or created) but the change may not be durable yet.
var ErrDirNotSynced = errors.New("directory not synced")

// WriteFileAtomic replaces path with data durably, with mode perm. An
// existing file at path is replaced whole; a missing one is created. The
// directory must exist.
//
//	err := fsutil.WriteFileAtomic(cfg.RevocationList, b, 0o600)
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return osOps.write(path, perm, true, writeBytes(data))
}

// CreateFileAtomic writes data to path durably, with mode perm, only if
// path does not exist: it never replaces a file (key generation, enrolment).
// When path exists it fails with an error matching fs.ErrExist and leaves
// the existing file untouched. The content appears whole or not at all,
// unlike a plain O_EXCL create, which can leave a partial file behind.
func CreateFileAtomic(path string, data []byte, perm fs.FileMode) error {
	return osOps.write(path, perm, false, writeBytes(data))
}

// WriteAtomic is WriteFileAtomic for content produced by fill, which writes
// to the temporary file (for streamed copies). If fill fails, path is left
// as it was and fill's error is returned wrapped.
func WriteAtomic(path string, perm fs.FileMode, fill func(w io.Writer) error) error {
	return osOps.write(path, perm, true, fill)
}

func writeBytes(data []byte) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}
}

// file is what write needs of the temporary file.
type file interface {
	io.Writer
	Name() string
	Chmod(fs.FileMode) error
	Sync() error
	Close() error
}

// ops are the file system calls write makes. osOps is the real one; tests
// count and fail calls through their own.
type ops struct {
	createTemp func(dir, pattern string) (file, error)
	rename     func(oldpath, newpath string) error
	link       func(oldname, newname string) error
	remove     func(name string) error
	syncDir    func(dir string) error
}

var osOps = ops{
	createTemp: func(dir, pattern string) (file, error) { return os.CreateTemp(dir, pattern) },
	rename:     os.Rename,
	link:       os.Link,
	remove:     os.Remove,
	syncDir:    SyncDir,
}

// write is the one implementation behind the exported functions. replace
// selects rename (replace) or link (never replace) for the final step.
func (o ops) write(path string, perm fs.FileMode, replace bool, fill func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := o.createTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmpName := tmp.Name()
	closed, placed := false, false
	defer func() {
		if !closed {
			_ = tmp.Close()
		}
		if !placed {
			_ = o.remove(tmpName)
		}
	}()
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := fill(tmp); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	closed = true
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if replace {
		err = o.rename(tmpName, path)
	} else {
		err = o.link(tmpName, path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	placed = true
	if !replace {
		// The link left the temporary name beside the new one; drop it
		// before the directory sync, which then covers both changes.
		_ = o.remove(tmpName)
	}
	if err := o.syncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w: %w", path, ErrDirNotSynced, err)
	}
	return nil
}

// SyncDir fsyncs a directory, so that entries created, renamed or removed
// in it survive a crash.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
