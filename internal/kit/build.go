package kit

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/stellaops/signer-agent/internal/fsutil"
)

// WriteSums writes dir/SHA256SUMS listing every regular file below dir
// except SHA256SUMS and its bundle, sorted by path. Anything but regular
// files and directories is refused, as Verify refuses it.
func WriteSums(dir string) error {
	c, err := readDir(dir)
	if err != nil {
		return err
	}
	var sums []Sum
	for p, f := range c.files {
		if p == SumsFile || p == SumsBundleFile {
			continue
		}
		sums = append(sums, Sum{Path: p, SHA256: f.sha256})
	}
	return fsutil.WriteFileAtomic(filepath.Join(dir, SumsFile), FormatSums(sums), 0o644)
}

// WriteTarGz writes dir as a gzip-compressed tar whose entries sit below
// one top directory named top. The archive depends only on the files'
// names, contents and executable bits: entries are sorted by name, every
// timestamp is mtime, owners are 0:0 without names, directories are 0755,
// files 0755 when executable by their owner and 0644 otherwise, and the
// gzip header carries no name or time.
func WriteTarGz(w io.Writer, dir, top string, mtime time.Time) error {
	if err := CheckPath(top); err != nil {
		return fmt.Errorf("top directory: %w", err)
	}
	type entry struct {
		rel  string
		full string
		dir  bool
		exec bool
		size int64
	}
	var ents []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." {
			if err := CheckPath(rel); err != nil {
				return err
			}
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			ents = append(ents, entry{rel: rel, full: p, dir: true})
		case d.Type().IsRegular():
			ents = append(ents, entry{rel: rel, full: p, exec: info.Mode().Perm()&0o100 != 0, size: info.Size()})
		default:
			return fmt.Errorf("%s: %v is not allowed in a kit", rel, d.Type())
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("kit tar: %w", err)
	}
	sort.Slice(ents, func(i, j int) bool { return ents[i].rel < ents[j].rel })
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	mtime = mtime.UTC().Truncate(time.Second)
	for _, e := range ents {
		name := top
		if e.rel != "." {
			name = top + "/" + e.rel
		}
		h := &tar.Header{Name: name, ModTime: mtime, Format: tar.FormatUSTAR}
		switch {
		case e.dir:
			h.Typeflag, h.Name, h.Mode = tar.TypeDir, name+"/", 0o755
		case e.exec:
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o755, e.size
		default:
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o644, e.size
		}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("kit tar: %s: %w", name, err)
		}
		if e.dir {
			continue
		}
		if err := copyFile(tw, e.full, e.size); err != nil {
			return fmt.Errorf("kit tar: %s: %w", name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// copyFile copies exactly size bytes of path to w (a file that changed
// size since it was listed is an error).
func copyFile(w io.Writer, path string, size int64) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size+1))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("changed size while being archived")
	}
	return nil
}
