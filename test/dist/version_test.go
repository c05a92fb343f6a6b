package dist

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stellaops/signer-agent/test/harness"
)

// TestVersionScript runs packaging/dist/version.sh in a scratch git
// repository through the cases its header promises: every result is a
// valid native Debian version (no '-'), and a clean commit always maps to
// the same string.
func TestVersionScript(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git not found: apt-get install git")
	}
	repo := t.TempDir()
	script, err := os.ReadFile(filepath.Join(harness.RepoRoot(), "packaging", "dist", "version.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(repo, "packaging", "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(repo, "packaging", "dist", "version.sh"), script, 0o755); err != nil {
		t.Fatal(err)
	}
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	version := func() string {
		t.Helper()
		out, err := exec.Command("bash", filepath.Join(repo, "packaging", "dist", "version.sh")).CombinedOutput()
		if err != nil {
			t.Fatalf("version.sh: %v\n%s", err, out)
		}
		return strings.TrimSpace(string(out))
	}
	debian := regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*$`)
	check := func(name, want string) {
		t.Helper()
		got := version()
		if !debian.MatchString(got) {
			t.Fatalf("%s: %q is not a native Debian version", name, got)
		}
		if got != want {
			t.Fatalf("%s: version %q, want %q", name, got, want)
		}
		if again := version(); again != got {
			t.Fatalf("%s: not stable: %q then %q", name, got, again)
		}
	}
	git("init", "-q")
	git("add", ".")
	git("commit", "-q", "-m", "one")
	check("no tag", "0.0.0+git1.g"+git("rev-parse", "--short=12", "HEAD"))
	git("tag", "v1.2.3")
	check("on a tag", "1.2.3")
	if err := os.WriteFile(filepath.Join(repo, "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", "file")
	git("commit", "-q", "-m", "two")
	check("after a tag", "1.2.3+git1.g"+git("rev-parse", "--short=12", "HEAD"))
	git("tag", "v2.0.0-rc1")
	check("release candidate", "2.0.0~rc1")
	if err := os.WriteFile(filepath.Join(repo, "file"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	check("dirty tree", "2.0.0~rc1+dirty")
}
