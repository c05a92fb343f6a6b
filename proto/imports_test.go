package proto_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the dependency rule honest (STYLE.md): proto is the wire
// contract every scanner depends on, so it imports only the standard library
// (and its own subpackages, which import only the standard library too).
func TestImports(t *testing.T) {
	const self = "github.com/stellaops/signer-agent/proto"
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found:", err)
	}
	out, err := exec.Command(goBin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", self).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		if p != self && !strings.HasPrefix(p, self+"/") {
			t.Errorf("proto depends on %s; only the standard library is allowed", p)
		}
	}
}
