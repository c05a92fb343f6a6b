package fswatch

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/fsutil"
)

// started runs w until the test ends and returns a channel that receives
// one value per changed call.
func started(t *testing.T, w *Watcher) <-chan struct{} {
	t.Helper()
	changed := make(chan struct{}, 64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, func() { changed <- struct{}{} }, func(err error) { t.Errorf("watch error: %v", err) })
	}()
	t.Cleanup(func() {
		cancel()
		<-done // Run is joined before the test ends
		_ = w.Close()
	})
	return changed
}

func newWatcher(t *testing.T, files ...string) *Watcher {
	t.Helper()
	w, err := New()
	if err != nil {
		t.Fatal(err)
	}
	w.Debounce = 10 * time.Millisecond
	if err := w.SetFiles(files); err != nil {
		_ = w.Close()
		t.Fatal(err)
	}
	return w
}

// waitChange fails the test when no change is reported. The bound only
// keeps a broken watcher from hanging the run; it is not a timing check.
func waitChange(t *testing.T, changed <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatalf("no change reported after %s", what)
	}
}

func TestReportsAtomicReplace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte("a"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed := started(t, newWatcher(t, path))
	if err := fsutil.WriteFileAtomic(path, []byte("b"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changed, "a rename over the file")
	if err := os.WriteFile(path, []byte("c"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changed, "an in-place write")
}

func TestReportsFileCreatedLater(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "revoked-keys.yaml")
	changed := started(t, newWatcher(t, path))
	if err := os.WriteFile(path, []byte("revoked: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changed, "the file appeared")
}

func TestWatchedSet(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "sub", "..", "b")
	w := newWatcher(t, a, b)
	defer w.Close()
	cases := []struct {
		name string
		want bool
	}{
		{a, true},
		{filepath.Join(dir, "b"), true}, // paths are cleaned
		{filepath.Join(dir, ".a.tmp-123"), false},
		{filepath.Join(dir, "c"), false},
		{dir, false},
	}
	for _, c := range cases {
		if got := w.watched(c.name); got != c.want {
			t.Errorf("watched(%s) = %v, want %v", c.name, got, c.want)
		}
	}
	if err := w.SetFiles([]string{filepath.Join(dir, "c")}); err != nil {
		t.Fatal(err)
	}
	if w.watched(a) || !w.watched(filepath.Join(dir, "c")) {
		t.Error("SetFiles did not replace the set")
	}
}

func TestSetFilesMissingDirectory(t *testing.T) {
	dir := t.TempDir()
	w := newWatcher(t)
	err := w.SetFiles([]string{filepath.Join(dir, "missing", "f"), filepath.Join(dir, "f")})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a not-exist error naming the directory", err)
	}
	if !w.watched(filepath.Join(dir, "f")) {
		t.Fatal("the files of the other directories must still be watched")
	}
	// Once the directory exists, the next SetFiles watches it.
	if err := os.Mkdir(filepath.Join(dir, "missing"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := w.SetFiles([]string{filepath.Join(dir, "missing", "f"), filepath.Join(dir, "f")}); err != nil {
		t.Fatalf("retry: %v", err)
	}
	changed := started(t, w)
	if err := os.WriteFile(filepath.Join(dir, "missing", "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitChange(t, changed, "a file appeared in the directory created later")
}

func TestRunReturnsOnClose(t *testing.T) {
	w := newWatcher(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(context.Background(), func() {}, nil)
	}()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
}
