// Package ortlib finds and initialises the ONNX Runtime shared library once
// per process. Lookup order: an explicit path (a flag), then the
// JARZYN_ORT_LIB environment variable, then the project default
// .deps/onnxruntime/libonnxruntime.so.1, searched upward from the working
// directory and from the executable's directory.
//
// Telemetry: the ONNX Runtime library can collect usage telemetry (on Linux
// through an embedded telemetry client that, as soon as the environment is
// created, writes an empty mat-debug-<pid>.log and a .ses file in $TMPDIR
// and a device id and event database under ~/.cache/Microsoft). jarzyn
// turns it off: Init sets ORT_DISABLE_TELEMETRY=1 for the library before it
// creates the environment, which keeps the client from starting and writing
// any of those files, and then calls the API's DisableTelemetryEvents. Set
// JARZYN_ORT_TELEMETRY=1 to leave the library's telemetry as it is.
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

// TelemetryEnvVar opts in to ONNX Runtime's telemetry when set to 1.
const TelemetryEnvVar = "JARZYN_ORT_TELEMETRY"

// ortDisableTelemetry is the variable the ONNX Runtime library reads when
// it creates its environment.
const ortDisableTelemetry = "ORT_DISABLE_TELEMETRY"

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
	// telemetryOff records that Init disabled the library's telemetry.
	telemetryOff bool
)

// TelemetryDisabled reports whether Init turned ONNX Runtime's telemetry
// off (false before Init and with JARZYN_ORT_TELEMETRY=1).
func TelemetryDisabled() bool {
	mu.Lock()
	defer mu.Unlock()
	return telemetryOff
}

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
	off := os.Getenv(TelemetryEnvVar) != "1"
	if off {
		// read by the library when the environment is created (cgo makes
		// os.Setenv visible to it)
		os.Setenv(ortDisableTelemetry, "1")
	}
	if err := ort.InitializeEnvironment(); err != nil {
		// a wrong file or a too-old library: say which file and what to do
		return p, fmt.Errorf("ortlib: loading ONNX Runtime from %s failed: %v; %s", p, err, InstallHint)
	}
	if off {
		if err := ort.DisableTelemetry(); err != nil {
			ort.DestroyEnvironment()
			return p, fmt.Errorf("ortlib: disabling ONNX Runtime telemetry (library %s) failed: %v", p, err)
		}
	}
	inited, libPath, telemetryOff = true, p, off
	return p, nil
}

// ErrNotInitialised is returned by users that need Init first.
var ErrNotInitialised = errors.New("ortlib: ONNX Runtime is not initialised")
