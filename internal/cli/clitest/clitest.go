// Package clitest checks the binaries' run functions (the shape of package
// internal/cli) in their tests: exit code, what stderr says, and that a
// usage error prints a hint rather than the whole usage.
package clitest

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// RunFunc is a binary's entry point: run(ctx, args, stdout, stderr) int.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Run calls run with args and reports an error unless it exits with code,
// its stderr contains every string of wants, and (for code 2, a usage
// error) stderr does not hold the whole flag list. It returns stdout and
// stderr. A nil ctx means context.Background().
func Run(t testing.TB, run RunFunc, ctx context.Context, args []string, code int, wants ...string) (stdout, stderr string) {
	t.Helper()
	if ctx == nil {
		ctx = context.Background()
	}
	var out, errb bytes.Buffer
	got := run(ctx, args, &out, &errb)
	if got != code {
		t.Errorf("exit %d, want %d; stderr %q", got, code, errb.String())
	}
	for _, w := range wants {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("stderr %q does not contain %q", errb.String(), w)
		}
	}
	if code == 2 && strings.Contains(errb.String(), "Flags:") {
		t.Errorf("a usage error printed the whole usage: %q", errb.String())
	}
	return out.String(), errb.String()
}
