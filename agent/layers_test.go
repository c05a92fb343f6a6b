package agent_test

import (
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// TestFileLayers: inside package agent, calls between files run one way.
// A file "calls" another when it uses a function, method, variable or
// constant declared there (types are vocabulary and do not count, nor do
// struct fields: Agent.reload is how the lower layers reach Reload). The
// resulting file graph must have no cycle: agent.go (New, Run, Reload) at
// the top, then routes, server, handlers, the pipeline, the gates, the
// snapshot and its builders, and respond/codes at the bottom.
func TestFileLayers(t *testing.T) {
	graph := fileGraph(t)
	var cycle []string
	state := map[string]int{} // 0 new, 1 on the stack, 2 done
	var stack []string
	var visit func(f string) bool
	visit = func(f string) bool {
		state[f] = 1
		stack = append(stack, f)
		for _, g := range sortedKeys(graph[f]) {
			switch state[g] {
			case 1:
				i := len(stack) - 1
				for stack[i] != g {
					i--
				}
				cycle = append(append([]string{}, stack[i:]...), g)
				return true
			case 0:
				if visit(g) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[f] = 2
		return false
	}
	for _, f := range sortedKeys(graph) {
		if state[f] == 0 && visit(f) {
			for _, f := range sortedKeys(graph) {
				t.Logf("%s -> %s", f, strings.Join(sortedKeys(graph[f]), ", "))
			}
			t.Fatalf("file-level calls in agent/ form a cycle: %s", strings.Join(cycle, " -> "))
		}
	}
	// agent.go is the top: nothing calls into it.
	for f, to := range graph {
		if to["agent.go"] {
			t.Errorf("%s calls into agent.go; hand it what it needs instead", f)
		}
	}
	if testing.Verbose() {
		for _, f := range sortedKeys(graph) {
			t.Logf("%s -> %s", f, strings.Join(sortedKeys(graph[f]), ", "))
		}
	}
}

// fileGraph type-checks the package's non-test files (imports from the
// export data `go list -export` reports) and returns, per file, the set of
// other files whose package-level functions, methods, variables and
// constants it uses.
func fileGraph(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-export", "-deps", "-f", "{{.ImportPath}}\t{{.Export}}", ".").Output()
	if err != nil {
		t.Fatalf("go list -export: %v", err)
	}
	exports := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if p, f, ok := strings.Cut(line, "\t"); ok && f != "" {
			exports[p] = f
		}
	}
	fset := token.NewFileSet()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		n := e.Name()
		if !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	imp := importer.ForCompiler(fset, "gc", func(path string) (io.ReadCloser, error) {
		f, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(f)
	})
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}, Selections: map[*ast.SelectorExpr]*types.Selection{}}
	conf := types.Config{Importer: imp}
	pkg, err := conf.Check("github.com/stellaops/signer-agent/agent", fset, files, info)
	if err != nil {
		t.Fatalf("type-check: %v", err)
	}
	fileOf := func(obj types.Object) string {
		if obj == nil || obj.Pkg() != pkg || !obj.Pos().IsValid() {
			return ""
		}
		switch o := obj.(type) {
		case *types.Func:
			// package-level functions and methods of the package's types
		case *types.Var:
			if o.IsField() || o.Parent() != pkg.Scope() {
				return ""
			}
		case *types.Const:
			if o.Parent() != pkg.Scope() {
				return ""
			}
		default:
			return ""
		}
		return fset.Position(obj.Pos()).Filename
	}
	graph := map[string]map[string]bool{}
	for _, f := range files {
		name := fset.Position(f.Pos()).Filename
		to := map[string]bool{}
		for id, obj := range info.Uses {
			if fset.Position(id.Pos()).Filename != name {
				continue
			}
			if g := fileOf(obj); g != "" && g != name {
				to[g] = true
			}
		}
		graph[name] = to
	}
	return graph
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
