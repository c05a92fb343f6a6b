package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var faultBuild struct {
	once sync.Once
	path string
	err  error
}

// FaultBinary builds cmd/signer-agent with the faultinject build tag
// (once per test process) and returns its path. That binary honours
// SIGNER_AGENT_FAULT (cmd/signer-agent/fault_on.go), for example
// "kill-after-commit" to SIGKILL itself between a signed answer's audit
// commit and its response. Release builds never carry the tag.
func FaultBinary(t testing.TB) string {
	t.Helper()
	faultBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "safault")
		if err != nil {
			faultBuild.err = err
			return
		}
		faultBuild.path = filepath.Join(dir, "signer-agent")
		cmd := exec.Command("go", "build", "-tags", "faultinject", "-o", faultBuild.path, "./cmd/signer-agent")
		cmd.Dir = RepoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			faultBuild.err = fmt.Errorf("go build -tags faultinject ./cmd/signer-agent: %v\n%s", err, out)
		}
	})
	if faultBuild.err != nil {
		t.Fatal(faultBuild.err)
	}
	return faultBuild.path
}
