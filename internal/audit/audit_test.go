package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

func TestJSONLinesConcurrentAppendAndClose(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJSONLines(dir)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	ids := make(chan string, 400)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				r := &Record{Decision: Allow, Route: "/x"}
				if err := j.Append(context.Background(), r); err != nil {
					t.Error(err)
					return
				}
				ids <- r.AuditID
			}
		}()
	}
	wg.Wait()
	close(ids)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal("second close:", err)
	}
	if err := j.Append(context.Background(), &Record{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	f, _ := os.Open(filepath.Join(dir, "audit.jsonl"))
	defer f.Close()
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		seen[r.AuditID] = true
	}
	for id := range ids {
		if !seen[id] {
			t.Fatalf("acknowledged record %s not in the file", id)
		}
	}
	if len(seen) != 400 {
		t.Fatalf("%d records, want 400", len(seen))
	}
}

func TestJSONLinesWriteError(t *testing.T) {
	j, err := OpenJSONLines(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	j.f.Close() // the next write fails, as on a dead disk
	if err := j.Append(context.Background(), &Record{}); err == nil {
		t.Fatal("append succeeded on a closed file")
	}
	j.Close()
}
