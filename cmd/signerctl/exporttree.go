package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode"
	"unicode/utf8"
)

// Walking and hashing an export tree, shared by `sign export` and
// `verify export`.
//
// The walk does not follow symbolic links: a symlink (or a device, FIFO or
// socket) inside the tree is reported as an entry of its own kind, which
// `sign export` refuses and `verify export` lists as unexpected. The root
// may itself be a symlink to a directory (the operator named it). Empty
// directories are not part of an export: the manifest lists files only,
// and file modes, owners and times are not recorded.

// treeFile is one regular file of the tree.
type treeFile struct {
	rel  string // "/"-separated, relative to the root
	abs  string
	size int64 // at walk time (lstat)
}

// treeOther is an entry that is neither a regular file nor a directory.
type treeOther struct {
	rel  string
	kind string // "symlink", "device", "named pipe", "socket", "irregular file"
}

// tree is the result of walking an export root.
type tree struct {
	root  string // absolute, symlinks resolved
	files []treeFile
	other []treeOther
	bytes int64
}

// exportRoot resolves DIR: it must be a directory.
func exportRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("--dir: %w", err)
	}
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return "", fmt.Errorf("--dir: %w", err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("--dir: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("--dir %s: not a directory", dir)
	}
	return abs, nil
}

// relInRoot returns path relative to root ("/"-separated) when path lies
// inside root, else "". path need not exist; its directory must.
func relInRoot(root, path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ""
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return ""
	}
	rel, err := filepath.Rel(root, filepath.Join(dir, filepath.Base(abs)))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return ""
	}
	return filepath.ToSlash(rel)
}

// walkTree lists the tree under root (from exportRoot) in path order,
// leaving out the relative paths in skip (the command's own input and
// output files).
func walkTree(ctx context.Context, root string, skip map[string]bool) (*tree, error) {
	t := &tree{root: root}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			return nil
		}
		r, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(r)
		if d.IsDir() {
			return nil
		}
		if skip[rel] {
			return nil
		}
		mode := d.Type()
		if !mode.IsRegular() {
			t.other = append(t.other, treeOther{rel: rel, kind: kindOf(mode)})
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		t.files = append(t.files, treeFile{rel: rel, abs: p, size: fi.Size()})
		t.bytes += fi.Size()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	// WalkDir visits in lexical order of each directory's names, which is
	// not the byte order of whole paths ("a-b" < "a/b" but "a" dir first).
	slices.SortFunc(t.files, func(a, b treeFile) int { return strings.Compare(a.rel, b.rel) })
	return t, nil
}

func kindOf(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m&fs.ModeDevice != 0:
		return "device"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	}
	return "irregular file"
}

// hashResult is the SHA-256 and size of one file as read.
type hashResult struct {
	sha256 string
	size   int64
}

// hashBufSize is each worker's read buffer.
const hashBufSize = 1 << 20

// errChanged: a file's size or modification time changed while it was
// read; its digest would describe no version of the file.
var errChanged = errors.New("changed while it was being hashed")

// hashFiles hashes files with jobs workers, streaming each file through
// SHA-256 (never holding a whole file), and returns the results in the
// order of files. The first error stops the other workers; every worker
// has returned when hashFiles does. p, if not nil, is told the bytes read.
func hashFiles(ctx context.Context, files []treeFile, jobs int, p *progress) ([]hashResult, error) {
	out := make([]hashResult, len(files))
	if len(files) == 0 {
		return out, nil
	}
	jobs = max(1, min(jobs, len(files)))
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var wg sync.WaitGroup
	for range jobs {
		wg.Go(func() {
			buf := make([]byte, hashBufSize)
			for i := range next {
				r, err := hashOne(ctx, files[i].abs, buf, p)
				if err != nil {
					cancel(fmt.Errorf("%s: %w", files[i].rel, err))
					continue
				}
				out[i] = r
				p.fileDone()
			}
		})
	}
feed:
	for i := range files {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, fmt.Errorf("hash: %w", err)
	}
	return out, nil
}

// hashOne hashes one regular file. It opens without following a symlink
// (the walk saw a regular file; a swap since is refused) and checks that
// size and modification time did not change during the read.
func hashOne(ctx context.Context, path string, buf []byte, p *progress) (hashResult, error) {
	if err := ctx.Err(); err != nil {
		return hashResult{}, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return hashResult{}, err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return hashResult{}, err
	}
	if !before.Mode().IsRegular() {
		return hashResult{}, errors.New("not a regular file")
	}
	h := sha256.New()
	// Hide os.File's WriterTo so the worker's buffer is used.
	n, err := io.CopyBuffer(h, struct{ io.Reader }{readCounter{ctx: ctx, r: f, p: p}}, buf)
	if err != nil {
		return hashResult{}, err
	}
	after, err := f.Stat()
	if err != nil {
		return hashResult{}, err
	}
	if after.Size() != n || before.Size() != n || !after.ModTime().Equal(before.ModTime()) {
		return hashResult{}, errChanged
	}
	return hashResult{sha256: hex.EncodeToString(h.Sum(nil)), size: n}, nil
}

// readCounter reports bytes read to the progress display and stops a read
// once the context is done.
type readCounter struct {
	ctx context.Context
	r   io.Reader
	p   *progress
}

func (c readCounter) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(b)
	c.p.add(int64(n))
	return n, err
}

// quotePath shows a path from the file system as is when it is printable,
// else Go-quoted, so that no name can rewrite the terminal.
func quotePath(p string) string {
	if !utf8.ValidString(p) {
		return strconv.Quote(p)
	}
	for _, r := range p {
		if !unicode.IsPrint(r) || r == '"' {
			return strconv.Quote(p)
		}
	}
	return p
}
