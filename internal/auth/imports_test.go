package auth_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports: auth is a library the agent builds gates from; it must not
// depend on the agent's configuration package or on the agent itself
// (it watches its JWKS file through fswatch).
func TestImports(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal("go command not found:", err)
	}
	const self = "github.com/stellaops/signer-agent/internal/auth"
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}", self).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		switch p {
		case "github.com/stellaops/signer-agent/internal/config", "github.com/stellaops/signer-agent/agent":
			t.Errorf("auth depends on %s", p)
		}
	}
}
