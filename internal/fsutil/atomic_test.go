package fsutil

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// recorder runs the real file system calls, records each one in order and
// fails the one named in fail with errInjected.
type recorder struct {
	calls []string
	fail  string
}

var errInjected = errors.New("injected fault")

func (r *recorder) do(name string, real func() error) error {
	r.calls = append(r.calls, name)
	if r.fail == name {
		return errInjected
	}
	return real()
}

func (r *recorder) ops() ops {
	return ops{
		createTemp: func(dir, pattern string) (file, error) {
			var f *os.File
			err := r.do("createTemp", func() (err error) { f, err = os.CreateTemp(dir, pattern); return err })
			if err != nil {
				return nil, err
			}
			return &recFile{File: f, r: r}, nil
		},
		rename:  func(a, b string) error { return r.do("rename", func() error { return os.Rename(a, b) }) },
		link:    func(a, b string) error { return r.do("link", func() error { return os.Link(a, b) }) },
		remove:  func(n string) error { return r.do("remove", func() error { return os.Remove(n) }) },
		syncDir: func(d string) error { return r.do("syncDir", func() error { return SyncDir(d) }) },
	}
}

type recFile struct {
	*os.File
	r *recorder
}

func (f *recFile) Write(p []byte) (int, error) {
	n := 0
	err := f.r.do("write", func() (err error) { n, err = f.File.Write(p); return err })
	return n, err
}
func (f *recFile) Chmod(m fs.FileMode) error {
	return f.r.do("chmod", func() error { return f.File.Chmod(m) })
}
func (f *recFile) Sync() error  { return f.r.do("sync", f.File.Sync) }
func (f *recFile) Close() error { return f.r.do("close", f.File.Close) }

// entries lists dir's names, to find stray temporary files.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWriteFileAtomicReplacesAndCreates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.yaml")
	if err := WriteFileAtomic(path, []byte("one\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(path, []byte("two\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, path); got != "two\n" {
		t.Fatalf("content %q", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600 (the last write's perm, whatever the umask)", fi.Mode().Perm())
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"state.yaml"}) {
		t.Fatalf("directory holds %v", got)
	}
}

func TestWriteAtomicStreams(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "copy")
	if err := WriteAtomic(path, 0o600, func(w io.Writer) error {
		_, err := io.Copy(w, strings.NewReader("streamed"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, path); got != "streamed" {
		t.Fatalf("content %q", got)
	}
}

func TestCreateFileAtomicNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	if err := CreateFileAtomic(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := CreateFileAtomic(path, []byte("second"), 0o600)
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second create: %v, want fs.ErrExist", err)
	}
	if got := readString(t, path); got != "first" {
		t.Fatalf("existing file changed to %q", got)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"key.pem"}) {
		t.Fatalf("directory holds %v", got)
	}
}

// TestDurabilitySteps checks the order of the calls that make a write
// durable: the file is synced before it is put in place, and the directory
// after.
func TestDurabilitySteps(t *testing.T) {
	cases := []struct {
		name    string
		replace bool
		want    []string
	}{
		{"replace", true, []string{"createTemp", "chmod", "write", "sync", "close", "rename", "syncDir"}},
		{"create", false, []string{"createTemp", "chmod", "write", "sync", "close", "link", "remove", "syncDir"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			r := &recorder{}
			if err := r.ops().write(path, 0o600, c.replace, writeBytes([]byte("data"))); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.calls, c.want) {
				t.Fatalf("calls %v\nwant  %v", r.calls, c.want)
			}
			if got := readString(t, path); got != "data" {
				t.Fatalf("content %q", got)
			}
			if got := entries(t, dir); !slices.Equal(got, []string{"f"}) {
				t.Fatalf("directory holds %v", got)
			}
		})
	}
}

// TestFaultsLeaveOldFile fails each step in turn: before the rename the old
// file stays whole and no temporary file is left; a failed directory sync
// is reported with ErrDirNotSynced after the new content is in place.
func TestFaultsLeaveOldFile(t *testing.T) {
	cases := []struct {
		fail    string
		replace bool
		// placed: the new content is in place despite the error.
		placed bool
	}{
		{"createTemp", true, false},
		{"chmod", true, false},
		{"write", true, false},
		{"sync", true, false},
		{"close", true, false},
		{"rename", true, false},
		{"syncDir", true, true},
		{"write", false, false},
		{"sync", false, false},
		{"link", false, false},
		{"syncDir", false, true},
	}
	for _, c := range cases {
		name := c.fail
		if !c.replace {
			name = "create/" + name
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			old := "old"
			if c.replace {
				if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			r := &recorder{fail: c.fail}
			err := r.ops().write(path, 0o600, c.replace, writeBytes([]byte("new")))
			if !errors.Is(err, errInjected) {
				t.Fatalf("error %v does not wrap the fault", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q does not name %s", err, path)
			}
			if got := errors.Is(err, ErrDirNotSynced); got != (c.fail == "syncDir") {
				t.Fatalf("errors.Is(ErrDirNotSynced) = %v for %v", got, err)
			}
			want := []string{}
			switch {
			case c.placed:
				want = []string{"f"}
				if got := readString(t, path); got != "new" {
					t.Fatalf("content %q, want the new content", got)
				}
			case c.replace:
				want = []string{"f"}
				if got := readString(t, path); got != old {
					t.Fatalf("old file changed to %q", got)
				}
			}
			if got := entries(t, dir); !slices.Equal(got, want) {
				t.Fatalf("directory holds %v, want %v", got, want)
			}
		})
	}
}

func TestFillErrorIsWrapped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("source changed")
	err := WriteAtomic(path, 0o600, func(w io.Writer) error {
		_, _ = w.Write([]byte("partial"))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("got %v", err)
	}
	if got := readString(t, path); got != "old" {
		t.Fatalf("old file changed to %q", got)
	}
	if got := entries(t, dir); !slices.Equal(got, []string{"f"}) {
		t.Fatalf("directory holds %v", got)
	}
}

func TestMissingDirectory(t *testing.T) {
	err := WriteFileAtomic(filepath.Join(t.TempDir(), "no", "f"), []byte("x"), 0o600)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}
