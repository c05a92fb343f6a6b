package audit

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

var base = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// queryLog holds 30 records, one a minute, over several segments: tenants
// cycle acme, globex, initech; decisions alternate allow, deny (code
// forbidden).
func queryLog(t *testing.T) (*Log, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "audit")
	l := openLog(t, LogConfig{Dir: dir, SegmentBytes: 1024})
	for i := 0; i < 30; i++ {
		r := rec(i)
		r.Time = base.Add(time.Duration(i) * time.Minute)
		if err := l.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if len(segPaths(t, dir)) < 3 {
		t.Fatal("no rotation")
	}
	return l, dir
}

func TestQuery(t *testing.T) {
	_, dir := queryLog(t)
	cases := []struct {
		name string
		f    Filter
		seqs []uint64 // nil: check only the count
		n    int
	}{
		{name: "all", f: Filter{}, n: 30},
		{name: "tenant", f: Filter{Tenant: "acme"}, seqs: []uint64{1, 4, 7, 10, 13, 16, 19, 22, 25, 28}},
		{name: "decision", f: Filter{Decision: Deny}, n: 15},
		{name: "code", f: Filter{Code: "forbidden"}, n: 15},
		{name: "time window", f: Filter{Since: base.Add(10 * time.Minute), Until: base.Add(20 * time.Minute)}, seqs: []uint64{11, 12, 13, 14, 15, 16, 17, 18, 19, 20}},
		{name: "tenant and decision", f: Filter{Tenant: "acme", Decision: Deny}, seqs: []uint64{4, 10, 16, 22, 28}},
		{name: "limit", f: Filter{Limit: 4}, seqs: []uint64{1, 2, 3, 4}},
		{name: "limit with filter", f: Filter{Tenant: "globex", Limit: 2}, seqs: []uint64{2, 5}},
		{name: "after seq", f: Filter{AfterSeq: 25}, seqs: []uint64{26, 27, 28, 29, 30}},
		{name: "after seq and limit", f: Filter{AfterSeq: 10, Limit: 2}, seqs: []uint64{11, 12}},
		{name: "no match", f: Filter{Tenant: "nobody"}, n: 0},
		{name: "since after the end", f: Filter{Since: base.Add(time.Hour)}, n: 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []uint64
			err := Query(dir, c.f, func(r Record) error {
				got = append(got, r.Seq)
				if !c.f.match(&r) {
					t.Errorf("seq %d does not match", r.Seq)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("out of order: %v", got)
				}
			}
			if c.seqs != nil {
				if len(got) != len(c.seqs) {
					t.Fatalf("got %v, want %v", got, c.seqs)
				}
				for i := range got {
					if got[i] != c.seqs[i] {
						t.Fatalf("got %v, want %v", got, c.seqs)
					}
				}
			} else if len(got) != c.n {
				t.Fatalf("%d records, want %d", len(got), c.n)
			}
		})
	}
	stop := errors.New("enough")
	n := 0
	if err := Query(dir, Filter{}, func(Record) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("callback error: %v after %d", err, n)
	}
}

func TestTail(t *testing.T) {
	l, dir := queryLog(t)
	collect := func(n int) []uint64 {
		var got []uint64
		if err := Tail(context.Background(), dir, n, false, func(r Record) error { got = append(got, r.Seq); return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := collect(5); len(got) != 5 || got[0] != 26 || got[4] != 30 {
		t.Fatalf("tail 5: %v", got)
	}
	if got := collect(100); len(got) != 30 || got[0] != 1 {
		t.Fatalf("tail 100: %v", got)
	}
	if got := collect(0); len(got) != 0 {
		t.Fatalf("tail 0: %v", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen := make(chan uint64, 100)
	done := make(chan error, 1)
	go func() {
		done <- Tail(ctx, dir, 2, true, func(r Record) error { seen <- r.Seq; return nil })
	}()
	next := func() uint64 {
		select {
		case s := <-seen:
			return s
		case <-time.After(30 * time.Second): // a hang guard, not a timing assertion
			t.Fatal("tail -f stalled")
			return 0
		}
	}
	if a, b := next(), next(); a != 29 || b != 30 {
		t.Fatalf("tail -f starts with %d %d", a, b)
	}
	appendN(t, l, 100, 8) // rotates at least once
	for want := uint64(31); want <= 38; want++ {
		if got := next(); got != want {
			t.Fatalf("tail -f: %d, want %d", got, want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
