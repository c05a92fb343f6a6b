//go:build dist

package dist

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// artifacts are the files of one `make dist` run.
type artifacts struct {
	dir, version       string
	debAMD64, debARM64 string
	oci, kit, pub      string
}

// distArtifacts finds the artifacts in $SIGNER_AGENT_DIST or fails.
func distArtifacts(t *testing.T) artifacts {
	t.Helper()
	dir := os.Getenv("SIGNER_AGENT_DIST")
	if dir == "" {
		t.Fatal("SIGNER_AGENT_DIST is not set: run `make dist-test` (it builds dist/ and sets it)")
	}
	kits, _ := filepath.Glob(filepath.Join(dir, "signer-agent-offline-kit_*.tar.gz"))
	if len(kits) != 1 {
		t.Fatalf("want exactly one offline kit in %s, found %v: run `make dist`", dir, kits)
	}
	v := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(kits[0]), "signer-agent-offline-kit_"), ".tar.gz")
	a := artifacts{
		dir: dir, version: v, kit: kits[0],
		debAMD64: filepath.Join(dir, "signer-agent_"+v+"_amd64.deb"),
		debARM64: filepath.Join(dir, "signer-agent_"+v+"_arm64.deb"),
		oci:      filepath.Join(dir, "signer-agent_"+v+"_oci.tar"),
		pub:      filepath.Join(dir, "release.pub"),
	}
	for _, f := range []string{a.debAMD64, a.debARM64, a.oci, a.pub} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("missing artifact: %v (run `make dist`)", err)
		}
	}
	return a
}

// needRoot fails unless the test runs as root (chroot, unshare, install).
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the dist tests need root (chroot, unshare -n, install into a root): run `make dist-test` as root")
	}
}

// needTool fails naming the Debian package when a tool is missing.
func needTool(t *testing.T, tool, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		t.Fatalf("%s not found: apt-get install %s", tool, pkg)
	}
	return p
}

// run runs a command and returns its combined output, failing on error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
