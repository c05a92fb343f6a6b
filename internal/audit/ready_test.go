package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stellaops/signer-agent/internal/testtools"
)

// waitRoom waits until the writer has preallocated at least n bytes
// ahead of the records (it does so after acknowledging a commit).
func waitRoom(t *testing.T, l *Log, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.st.room.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("no %d bytes preallocated (room %d)", n, l.st.room.Load())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestReadyChecksFreeSpace: on a real tmpfs, a log reopened on a nearly
// full volume is not ready before any write has failed, is ready again
// once space comes back, and counts the space already preallocated in its
// active segment as room.
func TestReadyChecksFreeSpace(t *testing.T) {
	mnt := testtools.MountTmpfs(t, "8m")
	dir := filepath.Join(mnt, "audit")
	l := openLog(t, LogConfig{Dir: dir})
	appendN(t, l, 0, 3)
	if err := l.Ready(); err != nil {
		t.Fatalf("ready on an empty volume: %v", err)
	}
	l.Close() // trims the preallocated space: the restart below starts with none

	filler := testtools.Fill(t, mnt, 256<<10)
	l = openLog(t, LogConfig{Dir: dir})
	err := l.Ready()
	if !errors.Is(err, ErrLowSpace) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("ready after a restart on a full volume: %v", err)
	}
	if st := l.Stats(); st.Unavailable || st.Failed != 0 {
		t.Fatalf("the check must not need a failed write: %+v", st)
	}
	t.Logf("not ready: %v", err)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := l.Ready(); err != nil {
		t.Fatalf("space came back: %v", err)
	}
	appendN(t, l, 10, 1)
	waitRoom(t, l, DefaultPreallocateBytes/2) // the active segment has its zeros ahead

	// The disk fills up again, but records still overwrite the zeros
	// ahead of them: ready, and the writes succeed.
	testtools.Fill(t, mnt, 0)
	if err := l.Ready(); err != nil {
		t.Fatalf("with 1 MiB preallocated on a full volume: %v", err)
	}
	appendN(t, l, 20, 5)
	l.Close()
	mustVerify(t, dir)
}

// TestReadyThreshold: MinFreeBytes decides (a table of named volumes).
func TestReadyThreshold(t *testing.T) {
	mnt := testtools.MountTmpfs(t, "4m")
	cases := []struct {
		name      string
		min       int64
		leave     int64
		wantReady bool
	}{
		{"default, 2 MiB free", 0, 2 << 20, true},
		{"default, 512 KiB free", 0, 512 << 10, false},
		{"3 MiB wanted, 2 MiB free", 3 << 20, 2 << 20, false},
		{"check off, nothing free", -1, 0, true},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(mnt, "audit", string(rune('a'+i)))
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			l := openLog(t, LogConfig{Dir: dir, MinFreeBytes: c.min, PreallocateBytes: -1})
			filler := testtools.Fill(t, mnt, c.leave)
			defer os.Remove(filler)
			err := l.Ready()
			if (err == nil) != c.wantReady || (err != nil && !errors.Is(err, ErrLowSpace)) {
				t.Fatalf("Ready = %v, want ready %v", err, c.wantReady)
			}
			os.Remove(filler)
			l.Close()
		})
	}
}

// TestReadyAfterFailedCommit: a failed commit still makes the log not
// ready (the space check does not hide it).
func TestReadyAfterFailedCommit(t *testing.T) {
	fs := &faults{}
	l := openLog(t, LogConfig{Dir: filepath.Join(t.TempDir(), "audit"), WrapFile: fs.wrap})
	fs.set(unix.EIO, nil, nil)
	if err := l.Append(context.Background(), rec(1)); err == nil {
		t.Fatal("append under fault")
	}
	if err := l.Ready(); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrLowSpace) {
		t.Fatalf("ready after a failed commit: %v", err)
	}
}
