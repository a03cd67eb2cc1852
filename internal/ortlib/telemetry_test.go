package ortlib

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain runs the child of TestTelemetryOff when asked: Init in a fresh
// process, then report what it says about telemetry.
func TestMain(m *testing.M) {
	if os.Getenv("ORTLIB_TELEMETRY_CHILD") == "1" {
		if _, err := Init(""); err != nil {
			fmt.Println("init failed:", err)
			os.Exit(3)
		}
		fmt.Printf("disabled=%v %s=%s\n", TelemetryDisabled(), ortDisableTelemetry, os.Getenv(ortDisableTelemetry))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestTelemetryOff: a process that initialises ONNX Runtime with a fresh
// TMPDIR and HOME reports telemetry disabled and leaves no trace of the
// library's telemetry client in them (mat-debug-<pid>.log, .ses,
// ~/.cache/Microsoft), unless it opted in.
func TestTelemetryOff(t *testing.T) {
	if _, err := Find(""); err != nil {
		t.Skipf("no ONNX Runtime library: %v", err)
	}
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"default", nil},
		{"opt-in unset by another value", []string{TelemetryEnvVar + "=0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmp, home := t.TempDir(), t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "ORTLIB_TELEMETRY_CHILD=1", "TMPDIR="+tmp, "HOME="+home, ortDisableTelemetry+"=")
			cmd.Env = append(cmd.Env, tc.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "disabled=true "+ortDisableTelemetry+"=1") {
				t.Errorf("child reports %q, want telemetry disabled", out)
			}
			var left []string
			for _, d := range []string{tmp, home} {
				filepath.Walk(d, func(p string, _ os.FileInfo, err error) error {
					if err == nil && p != d {
						left = append(left, p)
					}
					return nil
				})
			}
			if len(left) > 0 {
				t.Errorf("ONNX Runtime left telemetry files: %v", left)
			}
		})
	}
}
