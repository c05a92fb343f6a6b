package audit

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWriteFailureLeavesNothingPartial(t *testing.T) {
	cases := []struct {
		name              string
		write, sync, trnc error
		want              error
	}{
		{"disk full mid-write", syscall.ENOSPC, nil, nil, syscall.ENOSPC},
		{"fsync fails", nil, syscall.EIO, nil, syscall.EIO},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := &faults{}
			dir := filepath.Join(t.TempDir(), "audit")
			l := openLog(t, LogConfig{Dir: dir, WrapFile: fs.wrap})
			appendN(t, l, 0, 3)
			seg := segPaths(t, dir)[0]
			before := segData(t, seg)

			fs.set(c.write, c.sync, c.trnc)
			for i := 0; i < 3; i++ {
				err := l.Append(context.Background(), rec(i))
				if !errors.Is(err, ErrUnavailable) || !errors.Is(err, c.want) {
					t.Fatalf("append %d under fault: %v", i, err)
				}
				after := segData(t, seg)
				if !bytes.Equal(before, after) {
					t.Fatalf("segment changed by a failed append:\n%q", after[len(before):])
				}
			}
			if s := l.Stats(); !s.Unavailable || s.Failed != 3 {
				t.Fatalf("stats %+v", s)
			}

			fs.set(nil, nil, nil)
			if got := appendN(t, l, 10, 2); got[0] != 4 || got[1] != 5 {
				t.Fatalf("seqs after recovery %v", got)
			}
			if l.Stats().Unavailable {
				t.Fatal("still unavailable")
			}
			l.Close()
			rep := mustVerify(t, dir)
			if rep.Records != 5 || len(rep.Recoveries) != 0 {
				t.Fatalf("%+v", rep)
			}
		})
	}
}

// When the failed write cannot be cut off either, the segment is abandoned
// with the bytes in it, and the log goes on in a new segment whose first
// record declares where the old one ends. The unacknowledged lines left
// behind (here complete records, since only the fsync failed) are not part
// of the chain and Query does not show them.
func TestAbandonSegmentWhenTruncateFails(t *testing.T) {
	cases := []struct {
		name  string
		write error
		sync  error
	}{
		{"partial write", syscall.ENOSPC, nil},
		{"complete but unsynced write", nil, syscall.EIO},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs := &faults{}
			dir := filepath.Join(t.TempDir(), "audit")
			l := openLog(t, LogConfig{Dir: dir, WrapFile: fs.wrap})
			appendN(t, l, 0, 3)
			before := segData(t, segPaths(t, dir)[0])

			fs.set(c.write, c.sync, syscall.EIO)
			lost := rec(50)
			lost.RequestID = "never-acknowledged"
			if err := l.Append(context.Background(), lost); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("append under fault: %v", err)
			}
			after, _ := os.ReadFile(segPaths(t, dir)[0])
			after = bytes.TrimRight(after, "\x00")
			if len(after) <= len(before) {
				t.Fatal("the fault left nothing behind; the test tests nothing")
			}
			// While every write fails, retries do not pile up segments.
			fs.set(c.write, c.sync, syscall.EIO)
			for i := 0; i < 5; i++ {
				if err := l.Append(context.Background(), rec(i)); err == nil {
					t.Fatal("append succeeded under fault")
				}
			}
			if n := len(segPaths(t, dir)); n > 2 {
				t.Fatalf("%d segments after repeated failures", n)
			}

			fs.set(nil, nil, syscall.EIO)
			got := appendN(t, l, 10, 2)
			l.Close()
			if got[0] != 5 { // seq 4 is the notice
				t.Fatalf("seqs %v", got)
			}
			rep := mustVerify(t, dir)
			if len(rep.Recoveries) != 1 || rep.Recoveries[0].Reason != RecoveryAbandoned ||
				rep.Recoveries[0].Segment != segmentName(1) || rep.Recoveries[0].Offset != int64(len(before)) {
				t.Fatalf("recoveries %+v", rep.Recoveries)
			}
			recs := all(t, dir)
			if len(recs) != 6 {
				t.Fatalf("%d records", len(recs))
			}
			for _, r := range recs {
				if r.RequestID == "never-acknowledged" {
					t.Fatal("Query shows an unacknowledged record")
				}
			}
			// Reopening keeps it all consistent.
			l = openLog(t, LogConfig{Dir: dir})
			appendN(t, l, 20, 1)
			l.Close()
			mustVerify(t, dir)
		})
	}
}

// A real full disk: a 64 KiB tmpfs. Needs root (CAP_SYS_ADMIN).
func TestDiskFullTmpfs(t *testing.T) {
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
		t.Logf("!!! SKIPPING the real disk-full test: cannot mount a tmpfs (%v); run as root to cover ENOSPC on a real file system", err)
		t.Skip("no tmpfs")
	}
	t.Cleanup(func() { unix.Unmount(mnt, 0) })
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 40<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(mnt, "audit")
	l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 6 << 10})
	acked := map[uint64]bool{}
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		r := rec(i)
		r.Reason = strings.Repeat("r", i%200)
		if err = l.Append(context.Background(), r); err == nil {
			acked[r.Seq] = true
		}
	}
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("disk full: %v", err)
	}
	t.Logf("full after %d records: %v", len(acked), err)
	for _, p := range segPaths(t, dir) {
		if b := segData(t, p); len(b) > 0 && b[len(b)-1] != '\n' {
			t.Fatalf("%s ends in a partial record", p)
		}
	}
	mustVerify(t, dir)
	if err := l.Append(context.Background(), rec(0)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("append on a full disk: %v", err)
	}

	// Space comes back.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		r := rec(i)
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatalf("append after space came back: %v", err)
		}
		acked[r.Seq] = true
	}
	l.Close()
	mustVerify(t, dir)
	got := seqSet(all(t, dir))
	for seq := range acked {
		if !got[seq] {
			t.Fatalf("acknowledged seq %d missing", seq)
		}
	}
}
