package client_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImports keeps the dependency rule honest (STYLE.md): scanners depend
// on client, so it may import only the standard library, proto and go-jose
// (for DPoP), and must not use cgo.
func TestImports(t *testing.T) {
	const self = "github.com/stellaops/signer-agent/client"
	allowed := func(p string) bool {
		switch {
		case p == self, p == "github.com/stellaops/signer-agent/proto",
			strings.HasPrefix(p, "github.com/stellaops/signer-agent/proto/"):
			return true
		case p == "github.com/go-jose/go-jose/v4", strings.HasPrefix(p, "github.com/go-jose/go-jose/v4/"):
			return true
		}
		return false
	}
	for _, p := range goList(t, "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", self) {
		if !allowed(p) {
			t.Errorf("client depends on %s; only the standard library, proto and go-jose are allowed", p)
		}
	}
	if cgo := goList(t, "-f", "{{join .CgoFiles \" \"}}", self); len(cgo) > 0 {
		t.Errorf("client uses cgo: %v", cgo)
	}
}

// goList runs `go list` with args and returns its non-empty output lines.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found:", err)
	}
	out, err := exec.Command(goBin, append([]string{"list"}, args...)...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, ee.Stderr)
		}
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}
