package testtools

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// fatalRecorder records a Fatalf instead of ending the test.
type fatalRecorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.msg == "" {
		f.msg = fmt.Sprintf(format, args...)
	}
}

func TestCosignRule(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "cosign")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	repoWithBin := t.TempDir()
	if err := os.MkdirAll(filepath.Join(repoWithBin, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repoWithBin, "bin", "cosign"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, env, root string
		want            string // path returned; empty: the test must fail
		fatal           string // in the failure message
	}{
		{"env wins", exe, repoWithBin, exe, ""},
		{"repo bin", "", repoWithBin, filepath.Join(repoWithBin, "bin", "cosign"), ""},
		{"env missing", filepath.Join(dir, "nope"), repoWithBin, "", "make tools"},
		{"env not executable", plain, repoWithBin, "", "make tools"},
		{"env is a directory", dir, repoWithBin, "", "not an executable"},
		{"no bin", "", t.TempDir(), "", "make tools"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := &fatalRecorder{TB: t}
			got := cosign(rec, c.env, c.root)
			if c.want != "" {
				if rec.msg != "" || got != c.want {
					t.Fatalf("got %q (failure %q), want %q", got, rec.msg, c.want)
				}
				return
			}
			if !strings.Contains(rec.msg, c.fatal) {
				t.Fatalf("failure %q does not say %q", rec.msg, c.fatal)
			}
		})
	}
}

// TestRepoRoot: the root holds this module's go.mod (in a worktree too).
func TestRepoRoot(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "module github.com/stellaops/signer-agent\n") {
		t.Fatalf("%s/go.mod is not the module's", RepoRoot())
	}
}
