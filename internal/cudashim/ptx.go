package cudashim

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

var ptxEntryRE = regexp.MustCompile(`\.entry\s+([A-Za-z_$][\w$]*)|\.globl\s+([A-Za-z_$][\w$]*)`)

// PTXFunctions lists the kernel entry points of a PTX module in the order they
// appear, each once (gorgonia's cudagen reads the same .globl directives).
func PTXFunctions(ptx string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range ptxEntryRE.FindAllStringSubmatch(ptx, -1) {
		name := m[1] + m[2]
		if name != "" && !seen[name] {
			seen[name] = true
			out = append(out, name)
		}
	}
	return out
}

// AddPTXDir hands every *.ptx file in dir to add, under its base name with
// its kernel entry points (the arguments of gorgonia.AddToStdLib), in name
// order, and returns the module names. It fails when dir is empty, when a file
// holds no kernel, or when a module in required is missing.
func AddPTXDir(dir string, required []string, add func(name, data string, funcs []string)) ([]string, error) {
	if dir == "" {
		return nil, fmt.Errorf("cudashim: no folder for the CUDA kernels (PTX) given")
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.ptx"))
	if err != nil {
		return nil, fmt.Errorf("cudashim: %w", err)
	}
	sort.Strings(files)
	var names []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return names, fmt.Errorf("cudashim: reading CUDA kernels: %w", err)
		}
		fns := PTXFunctions(string(b))
		if len(fns) == 0 {
			return names, fmt.Errorf("cudashim: %s holds no PTX kernel entry", f)
		}
		name := strings.TrimSuffix(filepath.Base(f), ".ptx")
		add(name, string(b), fns)
		names = append(names, name)
	}
	for _, m := range required {
		found := false
		for _, n := range names {
			found = found || n == m
		}
		if !found {
			return names, fmt.Errorf("cudashim: CUDA kernel module %q not found in %s (run scripts/gpu/build-ptx.sh or make build-cuda)", m, dir)
		}
	}
	return names, nil
}
