package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestExitCodes pins the exit status convention (internal/cli) at the
// binary's entry point; serve's TestMainErrors covers every subcommand error
// and TestBinarySignals the real process (1 for a missing ONNX Runtime, 130
// after SIGINT).
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "s.csv")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string // substring of stderr
	}{
		{"help", []string{"--help"}, 0, "Usage:"},
		{"sample help", []string{"sample", "--help"}, 0, "Usage: jarzyn-serve sample"},
		{"sample bare -h", []string{"sample", "--n", "5", "-h"}, 0, "Usage: jarzyn-serve sample"},
		{"unknown command", []string{"bogus"}, 2, "Run 'jarzyn-serve --help' for usage."},
		{"unknown flag", []string{"sample", "--bogus"}, 2, "Run 'jarzyn-serve sample --help' for usage."},
		{"missing required flag", []string{"sample", "--out", out}, 2, "--model and --out are required"},
		{"unexpected argument", []string{"sample", "--model", "m.onnx", "--out", out, "extra"}, 2, `unexpected arguments ["extra"]`},
		{"http missing required flag", []string{"http"}, 2, "exactly one of --model FILE and --models DIR"},
		{"model does not exist", []string{"sample", "--model", filepath.Join(dir, "none.onnx"), "--out", out}, 1, "none.onnx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("exit %d, stderr %q; want %d containing %q", code, stderr.String(), tc.code, tc.stderr)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q", stdout.String())
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s written", out)
			}
		})
	}
}
