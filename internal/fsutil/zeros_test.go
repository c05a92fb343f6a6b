package fsutil

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteZeros: the range is zeroed exactly (across block boundaries),
// bytes before and after it are kept, and a write error is returned.
func TestWriteZeros(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	const size = int64(3*len(zeroBlock) + 1000)
	if err := os.WriteFile(path, bytes.Repeat([]byte{0xff}, int(size)), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	off, n := int64(7), int64(2*len(zeroBlock)+513)
	if err := WriteZeros(f, off, n); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range got {
		want := byte(0xff)
		if int64(i) >= off && int64(i) < off+n {
			want = 0
		}
		if c != want {
			t.Fatalf("byte %d = %#x, want %#x", i, c, want)
		}
	}
	if int64(len(got)) != size {
		t.Fatalf("size %d, want %d", len(got), size)
	}
	// Past the end: the file grows, as preallocation needs.
	if err := WriteZeros(f, size, 10); err != nil {
		t.Fatal(err)
	}
	if st, _ := f.Stat(); st.Size() != size+10 {
		t.Fatalf("size %d after writing past the end", st.Size())
	}
	f.Close()
	if err := WriteZeros(f, 0, 1); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("write to a closed file: %v", err)
	}
}
