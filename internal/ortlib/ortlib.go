// Package ortlib finds and initialises the ONNX Runtime shared library once
// per process. Lookup order: an explicit path (a flag), then the
// JARZYN_ORT_LIB environment variable, then the project default
// .deps/onnxruntime/libonnxruntime.so.1, searched upward from the working
// directory and from the executable's directory.
package ortlib

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// EnvVar names the environment variable that points at the library.
const EnvVar = "JARZYN_ORT_LIB"

// DefaultRel is the project-local install location written by scripts/install-ort.sh.
const DefaultRel = ".deps/onnxruntime/libonnxruntime.so.1"

// InstallHint tells a user how to get the library.
const InstallHint = "install it with `make setup` (or scripts/install-ort.sh), or point --ort-lib / " + EnvVar + " at a libonnxruntime.so ≥ 1.29"

// Find returns the library path to use, or an error naming every place it looked.
func Find(explicit string) (string, error) {
	var looked []string
	try := func(p, why string) (string, bool) {
		looked = append(looked, fmt.Sprintf("%s (%s)", p, why))
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, true
		}
		return "", false
	}
	if explicit != "" {
		if p, ok := try(explicit, "flag"); ok {
			return p, nil
		}
		return "", fmt.Errorf("ortlib: ONNX Runtime library not found at %s (from the flag); %s", explicit, InstallHint)
	}
	if env := os.Getenv(EnvVar); env != "" {
		if p, ok := try(env, EnvVar); ok {
			return p, nil
		}
		return "", fmt.Errorf("ortlib: ONNX Runtime library not found at %s (from %s); %s", env, EnvVar, InstallHint)
	}
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	seen := map[string]bool{}
	for _, s := range starts {
		for dir := s; ; dir = filepath.Dir(dir) {
			cand := filepath.Join(dir, DefaultRel)
			if !seen[cand] {
				seen[cand] = true
				if p, ok := try(cand, "project default"); ok {
					return p, nil
				}
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	return "", fmt.Errorf("ortlib: ONNX Runtime library not found; looked at: %s; %s", strings.Join(looked, ", "), InstallHint)
}

var (
	mu      sync.Mutex
	initErr error
	inited  bool
	libPath string
)

// Init loads the library (found as in Find) and initialises the ONNX Runtime
// environment. It is safe to call many times; only the first call's path is
// used, and a later call with a different explicit path is an error.
func Init(explicit string) (string, error) {
	mu.Lock()
	defer mu.Unlock()
	if inited {
		if explicit != "" && explicit != libPath {
			return libPath, fmt.Errorf("ortlib: ONNX Runtime already initialised from %s, cannot switch to %s", libPath, explicit)
		}
		return libPath, initErr
	}
	p, err := Find(explicit)
	if err != nil {
		return "", err
	}
	ort.SetSharedLibraryPath(p)
	if err := ort.InitializeEnvironment(); err != nil {
		// a wrong file or a too-old library: say which file and what to do
		return p, fmt.Errorf("ortlib: loading ONNX Runtime from %s failed: %v; %s", p, err, InstallHint)
	}
	inited, libPath = true, p
	return p, nil
}

// ErrNotInitialised is returned by users that need Init first.
var ErrNotInitialised = errors.New("ortlib: ONNX Runtime is not initialised")
