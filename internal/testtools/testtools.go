// Package testtools finds the pinned tools the tests run (cosign, built by
// `make tools` from tools/go.mod) and makes the small real file systems
// the disk-full tests fill (MountTmpfs, Fill). It imports nothing of the module, so any
// package's tests can use it, internal ones included (test/harness imports
// the agent, which would make an import cycle for them).
package testtools

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// EnvCosign names the cosign binary to use; the Makefile exports it as
// <repo>/bin/cosign for `make test`.
const EnvCosign = "SIGNER_AGENT_COSIGN"

// RepoRoot is the top directory of the repository (or worktree) these
// sources are in.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("testtools: no caller information")
	}
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// Cosign returns the path of the pinned cosign binary: $SIGNER_AGENT_COSIGN
// when set, else <repo>/bin/cosign. A missing binary fails the test (it
// never skips): build it with `make tools`.
func Cosign(t testing.TB) string {
	t.Helper()
	return cosign(t, os.Getenv(EnvCosign), RepoRoot())
}

func cosign(t testing.TB, env, root string) string {
	t.Helper()
	p, from := env, "$"+EnvCosign
	if p == "" {
		p, from = filepath.Join(root, "bin", "cosign"), "the repository's bin/"
	}
	fi, err := os.Stat(p)
	if err == nil && (fi.IsDir() || fi.Mode().Perm()&0o111 == 0) {
		t.Fatalf("cosign at %s (from %s) is not an executable file; run `make tools`", p, from)
	}
	if err != nil {
		t.Fatalf("cosign not found at %s (from %s): run `make tools` to build the pinned cosign: %v", p, from, err)
	}
	return p
}
