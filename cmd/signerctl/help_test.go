package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/internal/testtools"
)

// allCommands is every command and group signerctl has. TestCommandTree
// keeps it equal to the tree, so a new command cannot miss the help and
// CLI reference tests.
var allCommands = []string{
	"sign", "sign export",
	"verify", "verify export",
	"trust", "trust export",
	"tlog", "tlog upload",
	"kit", "kit verify",
	"keys", "keys list", "keys create", "keys create pkcs11", "keys create tpm", "keys list-tokens",
	"keys enroll", "keys enroll fido2", "keys unlock", "keys rotate", "keys revoke",
	"health",
	"bench",
	"entitlement", "entitlement bypass",
	"audit", "audit verify", "audit query", "audit tail", "audit export",
	"dev", "dev token",
	"version",
}

func commandPaths() []string {
	var paths []string
	walk(commands(), "", func(path string, _ command) { paths = append(paths, path) })
	return paths
}

func TestCommandTree(t *testing.T) {
	if got := commandPaths(); !slices.Equal(got, allCommands) {
		t.Fatalf("command tree %q\nwant %q", got, allCommands)
	}
}

// TestEveryCommandAnswersHelp: -h, --help and 'signerctl help PATH' print
// the command's usage on stdout and exit 0, for every command and group.
func TestEveryCommandAnswersHelp(t *testing.T) {
	for _, path := range append([]string{""}, allCommands...) {
		args := strings.Fields(path)
		for name, argv := range map[string][]string{
			"-h":     append(slices.Clone(args), "-h"),
			"--help": append(slices.Clone(args), "--help"),
			"help":   append([]string{"help"}, args...),
		} {
			t.Run(strings.TrimSpace(path+" "+name), func(t *testing.T) {
				r := runCtl(t, argv...)
				r.wantCode(t, exitOK)
				want := strings.TrimSpace("Usage: signerctl " + path)
				if !strings.HasPrefix(r.stdout, want) {
					t.Errorf("stdout does not start with %q:\n%s", want, r.stdout)
				}
				if r.stderr != "" {
					t.Errorf("stderr: %q", r.stderr)
				}
			})
		}
	}
}

// TestGroupUsageErrors: a group without a subcommand, or with an unknown
// one, is a usage error naming the group, on one line of stderr.
func TestGroupUsageErrors(t *testing.T) {
	for _, path := range allCommands {
		var c command
		walk(commands(), "", func(p string, cc command) {
			if p == path {
				c = cc
			}
		})
		if c.sub == nil {
			continue
		}
		for name, extra := range map[string][]string{"missing": nil, "unknown": {"frobnicate"}} {
			t.Run(path+" "+name, func(t *testing.T) {
				r := runCtl(t, append(strings.Fields(path), extra...)...)
				r.wantCode(t, exitUsage)
				if r.stdout != "" {
					t.Errorf("stdout: %q", r.stdout)
				}
				prefix := "signerctl " + path + ": "
				if !strings.HasPrefix(r.stderr, prefix) || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, "'signerctl "+path+" -h'") {
					t.Errorf("stderr %q, want one line starting %q that points at the group's help", r.stderr, prefix)
				}
			})
		}
	}
	// A leaf's usage error points at the leaf's help.
	r := runCtl(t, "keys", "create", "tpm", "--handle", "nope", "--blob", "x")
	r.wantCode(t, exitUsage)
	if !strings.HasPrefix(r.stderr, "signerctl keys create tpm: ") || !strings.Contains(r.stderr, "'signerctl keys create tpm -h'") {
		t.Errorf("stderr %q", r.stderr)
	}
}

func TestVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "v9.9.9-test"
	for _, args := range [][]string{{"version"}, {"--version"}, {"--socket", "/x", "--version"}} {
		r := runCtl(t, args...)
		r.wantCode(t, exitOK)
		if r.stdout != "signerctl v9.9.9-test "+runtime.Version()+"\n" {
			t.Errorf("%v: %q", args, r.stdout)
		}
	}
}

// TestVersionStamped: the Makefile stamps main.version into signerctl,
// and a binary built that way reports it.
func TestVersionStamped(t *testing.T) {
	root := testtools.RepoRoot()
	out, err := exec.Command("make", "-s", "-n", "-C", root, "build", "VERSION=v1.2.3-stamp").Output()
	if err != nil {
		t.Fatalf("make -n build: %v", err)
	}
	var ldflags string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "/signerctl ./cmd/signerctl") {
			_, rest, _ := strings.Cut(line, "-ldflags '")
			ldflags, _, _ = strings.Cut(rest, "'")
		}
	}
	if !strings.Contains(ldflags, "-X main.version=v1.2.3-stamp") {
		t.Fatalf("the Makefile does not stamp main.version into signerctl: ldflags %q", ldflags)
	}
	bin := filepath.Join(t.TempDir(), "signerctl")
	build := exec.Command("go", "build", "-ldflags", ldflags, "-o", bin, "./cmd/signerctl")
	build.Dir = root
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	got, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(got), "signerctl v1.2.3-stamp ") {
		t.Fatalf("stamped binary says %q", got)
	}
	_ = os.Remove(bin)
}
