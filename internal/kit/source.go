package kit

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Limits on what a kit may hold, so a hostile tarball cannot exhaust memory.
const (
	// MaxEntries bounds the number of tar entries or directory entries.
	MaxEntries = 10000
	// maxKept bounds each of the files Verify reads into memory (the
	// bundles; SHA256SUMS has its own, smaller bound).
	maxKept = 4 << 20
)

// ErrLayout is wrapped by every failure to read the kit as a tree of
// regular files.
var ErrLayout = errors.New("bad kit layout")

// file is one regular file of a kit.
type file struct {
	sha256 string // lowercase hex
	size   int64
	data   []byte // only for the files Verify reads (see kept)
}

// contents is what a kit holds: its top directory name and its regular
// files by kit-relative path. Directories carry no data and are not kept.
type contents struct {
	top   string
	files map[string]*file
}

// kept names the files whose bytes Verify needs.
func kept(p string) bool {
	return p == SumsFile || p == SumsBundleFile || p == ProvenanceFile
}

// readKit reads a kit directory, or a gzip-compressed tar of one.
func readKit(p string) (*contents, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("kit: %w", err)
	}
	if fi.IsDir() {
		return readDir(p)
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("kit: %w", err)
	}
	defer f.Close()
	return readTarGz(f)
}

// hashFile hashes r, keeping its bytes when keep is set.
func hashFile(r io.Reader, keep bool) (*file, error) {
	h := sha256.New()
	var buf *bytes.Buffer
	w := io.Writer(h)
	if keep {
		buf = &bytes.Buffer{}
		w = io.MultiWriter(h, buf)
		r = io.LimitReader(r, maxKept+1)
	}
	n, err := io.Copy(w, r)
	if err != nil {
		return nil, err
	}
	f := &file{sha256: hex.EncodeToString(h.Sum(nil)), size: n}
	if keep {
		if n > maxKept {
			return nil, fmt.Errorf("larger than %d bytes", maxKept)
		}
		f.data = buf.Bytes()
	}
	return f, nil
}

// readTarGz streams a gzip-compressed tar whose entries all sit below one
// top directory. Only regular files and directories are accepted; a
// name that is not clean, leaves the tree or appears twice is refused.
func readTarGz(r io.Reader) (*contents, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, fmt.Errorf("%w: not a gzip stream: %v", ErrLayout, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	c := &contents{files: map[string]*file{}}
	dirs := map[string]bool{}
	for n := 0; ; n++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: tar: %v", ErrLayout, err)
		}
		if n >= MaxEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrLayout, MaxEntries)
		}
		name := h.Name
		isDir := h.Typeflag == tar.TypeDir
		if isDir {
			name = strings.TrimSuffix(name, "/")
		}
		if err := CheckPath(name); err != nil {
			return nil, fmt.Errorf("%w: tar entry: %v", ErrLayout, err)
		}
		top, rel, _ := strings.Cut(name, "/")
		if c.top == "" {
			c.top = top
		} else if top != c.top {
			return nil, fmt.Errorf("%w: tar entry %q is outside the top directory %q", ErrLayout, h.Name, c.top)
		}
		if dirs[rel] || c.files[rel] != nil {
			return nil, fmt.Errorf("%w: tar entry %q appears twice", ErrLayout, h.Name)
		}
		switch {
		case isDir:
			dirs[rel] = true
		case h.Typeflag == tar.TypeReg:
			if rel == "" {
				return nil, fmt.Errorf("%w: tar entry %q: the top level must be a directory", ErrLayout, h.Name)
			}
			if dirs[rel] {
				return nil, fmt.Errorf("%w: tar entry %q appears twice", ErrLayout, h.Name)
			}
			f, err := hashFile(tr, kept(rel))
			if err != nil {
				return nil, fmt.Errorf("%w: %s: %v", ErrLayout, rel, err)
			}
			c.files[rel] = f
		default:
			return nil, fmt.Errorf("%w: tar entry %q: type %q is not allowed (only regular files and directories)", ErrLayout, h.Name, string(h.Typeflag))
		}
	}
	if c.top == "" {
		return nil, fmt.Errorf("%w: empty tar", ErrLayout)
	}
	// A file must not sit where the tree also has a directory of the same
	// name's parent, e.g. "a" as a file and "a/b".
	for p := range c.files {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if c.files[d] != nil {
				return nil, fmt.Errorf("%w: %q is both a file and a directory", ErrLayout, d)
			}
		}
	}
	return c, nil
}

// readDir reads an unpacked kit. Symbolic links and special files are
// refused, as in a tarball.
func readDir(root string) (*contents, error) {
	c := &contents{top: filepath.Base(filepath.Clean(root)), files: map[string]*file{}}
	n := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n > MaxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrLayout, MaxEntries)
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if err := CheckPath(rel); err != nil {
			return fmt.Errorf("%w: %v", ErrLayout, err)
		}
		switch {
		case d.IsDir():
			return nil
		case d.Type().IsRegular():
			fh, err := os.Open(p)
			if err != nil {
				return err
			}
			defer fh.Close()
			f, err := hashFile(fh, kept(rel))
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrLayout, rel, err)
			}
			c.files[rel] = f
			return nil
		default:
			kind := "a special file"
			if d.Type()&fs.ModeSymlink != 0 {
				kind = "a symbolic link"
			}
			return fmt.Errorf("%w: %s: %s is not allowed (only regular files and directories)", ErrLayout, rel, kind)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("kit: %w", err)
	}
	return c, nil
}
