// Package deps holds the test that keeps the serving side and the shared
// model code free of the training engine (docs/ARCHITECTURE.md: jarzyn-serve and
// jarzyn-report link no gorgonia; models links neither gorgonia nor ONNX
// Runtime). export/deps_test.go keeps export free of gorgonia the same way.
package deps

import (
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/jarzyn/jarzyn/"

// forbidden lists, per package, the import path prefixes it must not link.
var forbidden = []struct {
	pkg      string
	prefixes []string
}{
	{"cmd/jarzyn-report", []string{"gorgonia.org/", module + "train"}},
	{"cmd/jarzyn-serve", []string{"gorgonia.org/", module + "train"}},
	{"serve", []string{"gorgonia.org/", module + "train"}},
	{"models", []string{"gorgonia.org/", "github.com/yalue/onnxruntime_go", module + "train"}},
}

// TestNoForbiddenDeps runs `go list -deps` on each package for the build
// tags the repository uses and fails naming the import chain that pulls a
// forbidden package in.
func TestNoForbiddenDeps(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	for _, tags := range []string{"", "openblas", "cuda"} {
		for _, f := range forbidden {
			pkg := module + f.pkg
			graph := imports(t, pkg, tags)
			if len(graph) == 0 {
				t.Fatalf("go list -deps %s (tags %q) listed nothing", pkg, tags)
			}
			var bad []string
			for dep := range graph {
				if isForbidden(dep, f.prefixes) {
					bad = append(bad, dep)
				}
			}
			if len(bad) > 0 {
				sort.Strings(bad)
				t.Errorf("%s links %d forbidden packages (tags %q): %s; nearest: %s", f.pkg, len(bad), tags,
					strings.Join(bad, ", "), strings.Join(nearest(graph, pkg, f.prefixes), " → "))
			}
		}
	}
}

// isForbidden reports whether dep is one of prefixes or inside one.
func isForbidden(dep string, prefixes []string) bool {
	for _, p := range prefixes {
		if dep == strings.TrimSuffix(p, "/") || strings.HasPrefix(dep, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

// imports returns the import graph of pkg and all its dependencies.
func imports(t *testing.T, pkg, tags string) map[string][]string {
	t.Helper()
	args := []string{"list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	out, err := exec.Command("go", append(args, pkg)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	graph := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) > 0 {
			graph[f[0]] = f[1:]
		}
	}
	return graph
}

// nearest is a shortest import chain from root to a forbidden package.
func nearest(graph map[string][]string, root string, prefixes []string) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if isForbidden(p, prefixes) {
			var c []string
			for ; p != ""; p = prev[p] {
				c = append([]string{p}, c...)
			}
			return c
		}
		for _, q := range graph[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return nil
}
