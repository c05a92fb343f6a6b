package idempotency

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stellaops/signer-agent/internal/clocktest"
)

func hashOf(s string) Hash { return RequestHash("/sign", []byte(s)) }

func openStore(t *testing.T, cfg Config) *Store {
	t.Helper()
	s, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// serve runs one request through the store: a claim is persisted and
// published with body; a replay returns the stored body.
func serve(t *testing.T, s *Store, tenant, key, req, body string) (got string, replayed bool) {
	t.Helper()
	c, e, err := s.Begin(context.Background(), tenant, key, hashOf(req))
	if err != nil {
		t.Fatalf("Begin(%s, %s): %v", tenant, key, err)
	}
	if e != nil {
		return string(e.Body), true
	}
	if ok, err := c.Persist(context.Background(), 200, []byte(body), []string{"audit-" + key}); err != nil || !ok {
		t.Fatalf("Persist: %v %v", ok, err)
	}
	c.Publish()
	return body, false
}

func TestBeginOutcomes(t *testing.T) {
	s := openStore(t, Config{})
	ctx := context.Background()
	if got, rep := serve(t, s, "acme", "k1", "req-a", "answer-a"); rep || got != "answer-a" {
		t.Fatalf("first: %q %v", got, rep)
	}
	cases := []struct {
		name, tenant, key, req string
		wantBody               string
		wantErr                error
		wantClaim              bool
	}{
		{"same key, same request: replay", "acme", "k1", "req-a", "answer-a", nil, false},
		{"same key, other request: reused", "acme", "k1", "req-b", "", ErrKeyReused, false},
		{"other key: a claim", "acme", "k2", "req-a", "", nil, true},
		{"same key, other tenant: a claim", "globex", "k1", "req-b", "", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl, e, err := s.Begin(ctx, c.tenant, c.key, hashOf(c.req))
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			if (cl != nil) != c.wantClaim {
				t.Fatalf("claim %v, want %v", cl != nil, c.wantClaim)
			}
			if cl != nil {
				cl.Abort()
			}
			if c.wantBody != "" && (e == nil || string(e.Body) != c.wantBody || e.Status != 200 || e.AuditIDs[0] != "audit-k1") {
				t.Fatalf("entry %+v", e)
			}
		})
	}
	// An aborted claim stores nothing: the next request is a claim again.
	cl, _, _ := s.Begin(ctx, "acme", "k3", hashOf("x"))
	if ok, err := cl.Persist(ctx, 200, []byte("never published"), []string{"a"}); !ok || err != nil {
		t.Fatal(ok, err)
	}
	cl.Abort()
	cl.Publish() // after Abort: nothing
	if cl2, e, err := s.Begin(ctx, "acme", "k3", hashOf("x")); err != nil || e != nil || cl2 == nil {
		t.Fatalf("after abort: %v %v %v", cl2, e, err)
	} else {
		cl2.Abort()
	}
	if st := s.Stats(); st.Entries != 1 || st.Claims != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A duplicate of a request in flight waits for it: it replays the
// published answer, or becomes the claim when the first one failed; a
// different request under the same key is refused at once.
func TestConcurrentDuplicates(t *testing.T) {
	ctx := context.Background()
	for _, publish := range []bool{true, false} {
		t.Run(fmt.Sprintf("first publishes=%v", publish), func(t *testing.T) {
			s := openStore(t, Config{})
			first, _, err := s.Begin(ctx, "acme", "k", hashOf("r"))
			if err != nil || first == nil {
				t.Fatal(err)
			}
			if _, _, err := s.Begin(ctx, "acme", "k", hashOf("other")); !errors.Is(err, ErrKeyReused) {
				t.Fatalf("other request while in flight: %v", err)
			}
			type result struct {
				c   *Claim
				e   *Entry
				err error
			}
			got := make(chan result, 1)
			go func() {
				c, e, err := s.Begin(ctx, "acme", "k", hashOf("r"))
				got <- result{c, e, err}
			}()
			select {
			case r := <-got:
				t.Fatalf("the duplicate did not wait: %+v", r)
			case <-time.After(50 * time.Millisecond):
			}
			if publish {
				if _, err := first.Persist(ctx, 200, []byte("A"), []string{"id"}); err != nil {
					t.Fatal(err)
				}
				first.Publish()
			} else {
				first.Abort()
			}
			r := <-got
			switch {
			case r.err != nil:
				t.Fatal(r.err)
			case publish && (r.e == nil || string(r.e.Body) != "A"):
				t.Fatalf("want the first answer, got %+v", r)
			case !publish && r.c == nil:
				t.Fatalf("want a claim, got %+v", r)
			}
			if r.c != nil {
				r.c.Abort()
			}
		})
	}
	t.Run("waiting ends with ctx", func(t *testing.T) {
		s := openStore(t, Config{})
		first, _, _ := s.Begin(ctx, "acme", "k", hashOf("r"))
		defer first.Abort()
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, _, err := s.Begin(cctx, "acme", "k", hashOf("r")); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("many duplicates, one claim", func(t *testing.T) {
		s := openStore(t, Config{})
		var wg sync.WaitGroup
		var mu sync.Mutex
		claims, replays := 0, 0
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, e, err := s.Begin(ctx, "acme", "k", hashOf("r"))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if e != nil {
					replays++
					return
				}
				claims++
				if _, err := c.Persist(ctx, 200, []byte("A"), []string{"id"}); err != nil {
					t.Error(err)
				}
				c.Publish()
			}()
		}
		wg.Wait()
		if claims != 1 || replays != 31 {
			t.Fatalf("%d claims, %d replays", claims, replays)
		}
	})
}

// Bounds: per tenant, by entries and by bytes, oldest first; the window
// expires answers; an answer over the byte bound is not kept.
func TestBounds(t *testing.T) {
	ctx := context.Background()
	t.Run("entries", func(t *testing.T) {
		s := openStore(t, Config{MaxEntries: 3})
		for i := range 5 {
			serve(t, s, "acme", fmt.Sprint("k", i), "r", "A")
		}
		serve(t, s, "globex", "k0", "r", "G")
		for i, want := range []bool{false, false, true, true, true} {
			c, e, _ := s.Begin(ctx, "acme", fmt.Sprint("k", i), hashOf("r"))
			if (e != nil) != want {
				t.Fatalf("k%d kept %v, want %v", i, e != nil, want)
			}
			if c != nil {
				c.Abort()
			}
		}
		if _, e, _ := s.Begin(ctx, "globex", "k0", hashOf("r")); e == nil {
			t.Fatal("another tenant's answer was evicted")
		}
	})
	t.Run("bytes", func(t *testing.T) {
		s := openStore(t, Config{MaxBytes: 3 * (entryOverhead + 1000)})
		big := string(make([]byte, 900))
		for i := range 4 {
			serve(t, s, "acme", fmt.Sprint("k", i), "r", big)
		}
		if st := s.Stats(); st.Entries != 3 || st.Bytes > 3*(entryOverhead+1000) {
			t.Fatalf("stats %+v", st)
		}
		c, _, _ := s.Begin(ctx, "acme", "huge", hashOf("r"))
		if ok, err := c.Persist(ctx, 200, make([]byte, 4000), []string{"id"}); ok || err != nil {
			t.Fatalf("an answer over the bound: %v %v", ok, err)
		}
		c.Publish()
		if _, e, _ := s.Begin(ctx, "acme", "huge", hashOf("r")); e != nil {
			t.Fatal("an answer over the bound was kept")
		}
	})
	t.Run("window", func(t *testing.T) {
		clk := clocktest.New(clocktest.Epoch)
		s := openStore(t, Config{Window: time.Minute, Now: clk.Now})
		serve(t, s, "acme", "k", "r", "A")
		clk.Advance(59 * time.Second)
		if _, rep := serve(t, s, "acme", "k", "r", "B"); !rep {
			t.Fatal("expired inside the window")
		}
		clk.Advance(time.Second)
		if got, rep := serve(t, s, "acme", "k", "other request", "B"); rep || got != "B" {
			t.Fatal("kept past the window")
		}
	})
	t.Run("no audit id", func(t *testing.T) {
		s := openStore(t, Config{})
		c, _, _ := s.Begin(ctx, "acme", "k", hashOf("r"))
		defer c.Abort()
		if _, err := c.Persist(ctx, 200, []byte("A"), nil); err == nil {
			t.Fatal("an answer resting on no audit record was persisted")
		}
	})
}

// journalFiles lists dir's journal files.
func journalFiles(t *testing.T, dir string) []string {
	t.Helper()
	nums, err := listJournal(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range nums {
		out = append(out, filepath.Join(dir, journalName(n)))
	}
	return out
}

// confirmAll confirms the ids in set (nil: every id).
func confirm(set map[string]bool) func(map[string]bool) error {
	return func(ids map[string]bool) error {
		for id := range ids {
			ids[id] = set == nil || set[id]
		}
		return nil
	}
}

// The journal brings answers back after a restart, but only those whose
// audit records are durable and that are inside the window; a torn last
// frame is cut; the files are compacted into one.
func TestJournalRestart(t *testing.T) {
	ctx := context.Background()
	clk := clocktest.New(clocktest.Epoch)
	dir := filepath.Join(t.TempDir(), "idem")
	s, err := Open(Config{Dir: dir, Now: clk.Now, Window: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, s, "acme", "old", "r", "OLD")
	clk.Advance(6 * time.Minute)
	serve(t, s, "acme", "confirmed", "r", "C")
	serve(t, s, "acme", "unconfirmed", "r", "U")
	serve(t, s, "globex", "confirmed", "r", "G")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A crash mid-append leaves half a frame at the end.
	files := journalFiles(t, dir)
	f, err := os.OpenFile(files[len(files)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	half, _ := appendFrame(nil, &Entry{Tenant: "acme", Key: "torn", Status: 200, Body: []byte("T"), AuditIDs: []string{"audit-torn"}, Created: clk.Now()})
	f.Write(half[:len(half)/2])
	f.Close()

	clk.Advance(5 * time.Minute) // "old" is now 11 minutes old
	var asked map[string]bool
	s2, err := Open(Config{Dir: dir, Now: clk.Now, Window: 10 * time.Minute, Confirm: func(ids map[string]bool) error {
		asked = map[string]bool{}
		for id := range ids {
			asked[id] = true
		}
		return confirm(map[string]bool{"audit-confirmed": true, "audit-old": true, "audit-torn": true})(ids)
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if asked["audit-old"] || asked["audit-torn"] || !asked["audit-unconfirmed"] {
		t.Fatalf("Confirm was asked about %v", asked)
	}
	for _, c := range []struct {
		tenant, key string
		want        string
	}{{"acme", "confirmed", "C"}, {"globex", "confirmed", "G"}, {"acme", "unconfirmed", ""}, {"acme", "old", ""}, {"acme", "torn", ""}} {
		cl, e, err := s2.Begin(ctx, c.tenant, c.key, hashOf("r"))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case c.want == "" && e != nil:
			t.Errorf("%s/%s came back: %q", c.tenant, c.key, e.Body)
		case c.want != "" && (e == nil || string(e.Body) != c.want):
			t.Errorf("%s/%s: %+v, want %q", c.tenant, c.key, e, c.want)
		}
		if cl != nil {
			cl.Abort()
		}
	}
	if st := s2.Stats(); st.Loaded != 2 || st.Dropped != 2 {
		t.Fatalf("stats %+v", st)
	}
	if files := journalFiles(t, dir); len(files) != 1 {
		t.Fatalf("%d journal files after compaction", len(files))
	}
	// A second agent on the same directory is refused.
	if _, err := Open(Config{Dir: dir}); err == nil {
		t.Fatal("two stores on one journal")
	}
}

// Files rotate after a window and are deleted once everything in them is a
// window old.
func TestJournalRotation(t *testing.T) {
	clk := clocktest.New(clocktest.Epoch)
	dir := filepath.Join(t.TempDir(), "idem")
	s := openStore(t, Config{Dir: dir, Now: clk.Now, Window: time.Minute})
	names := func() []string {
		var out []string
		for _, f := range journalFiles(t, dir) {
			out = append(out, filepath.Base(f))
		}
		return out
	}
	serve(t, s, "acme", "a", "r", "A") // T0, file 0
	clk.Advance(30 * time.Second)
	serve(t, s, "acme", "b", "r", "B") // T0+30, file 0
	clk.Advance(31 * time.Second)
	serve(t, s, "acme", "c", "r", "C") // T0+61: file 1; file 0's last answer is 31 s old
	if got := names(); len(got) != 2 || got[0] != journalName(0) || got[1] != journalName(1) {
		t.Fatalf("after the first rotation: %v", got)
	}
	clk.Advance(30 * time.Second)
	serve(t, s, "acme", "d", "r", "D") // T0+91, file 1
	clk.Advance(31 * time.Second)
	serve(t, s, "acme", "e", "r", "E") // T0+122: file 2; file 0 (last T0+30) goes
	if got := names(); len(got) != 2 || got[0] != journalName(1) || got[1] != journalName(2) {
		t.Fatalf("after the second rotation: %v", got)
	}
	s.Close()
	s2 := openStore(t, Config{Dir: dir, Now: clk.Now, Window: time.Minute, Confirm: confirm(nil)})
	if st := s2.Stats(); st.Loaded != 2 || st.Dropped != 1 { // d and e; c expired
		t.Fatalf("stats %+v", st)
	}
	if got := names(); len(got) != 1 || got[0] != journalName(3) {
		t.Fatalf("after compaction: %v", got)
	}
}

// The active file keeps zero-filled space ahead of its frames, so commits
// do not change its size; a copy taken while it is open (what a crash
// leaves) reads back every acknowledged answer; Close cuts the zeros off.
func TestJournalPreallocated(t *testing.T) {
	clk := clocktest.New(clocktest.Epoch)
	dir := filepath.Join(t.TempDir(), "idem")
	s, err := Open(Config{Dir: dir, Now: clk.Now, Window: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		t.Helper()
		files := journalFiles(t, dir)
		fi, err := os.Stat(files[len(files)-1])
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	serve(t, s, "acme", "a", "r", "A")
	before := size()
	if before < preallocBytes {
		t.Fatalf("active file is %d bytes, want at least %d preallocated", before, preallocBytes)
	}
	for _, k := range []string{"b", "c", "d"} {
		serve(t, s, "acme", k, "r", k)
	}
	if after := size(); after != before {
		t.Fatalf("commits changed the file's size: %d -> %d", before, after)
	}

	// The crash image: the open file, zeros and all.
	crash := filepath.Join(t.TempDir(), "idem")
	if err := os.MkdirAll(crash, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range journalFiles(t, dir) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crash, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s2 := openStore(t, Config{Dir: crash, Now: clk.Now, Window: time.Hour, Confirm: confirm(nil)})
	if st := s2.Stats(); st.Loaded != 4 || st.Dropped != 0 {
		t.Fatalf("from the crash image: stats %+v, want 4 loaded", st)
	}
	for _, k := range []string{"a", "b", "c", "d"} {
		_, e, err := s2.Begin(context.Background(), "acme", k, hashOf("r"))
		if err != nil || e == nil {
			t.Fatalf("%s not replayed from the crash image: %v %v", k, e, err)
		}
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := journalFiles(t, dir)
	b, err := os.ReadFile(files[len(files)-1])
	if err != nil {
		t.Fatal(err)
	}
	if es, n := parseFrames(b); len(es) != 4 || n != len(b) {
		t.Fatalf("after Close: %d frames ending at %d of %d bytes; want 4 and no zeros", len(es), n, len(b))
	}
}
