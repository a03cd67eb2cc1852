package main

import (
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/internal/cli/clitest"
)

// TestExitCodes pins the exit status convention (internal/cli): 0 for
// success and -h, 2 for usage errors with a one-line hint, 1 for failures.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	runA, runB := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for i, d := range []string{runA, runB} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		csv := "iter,mass_0,exact_kl\n0,0.5,\n10,0.4,0.1\n20,0.3" + strings.Repeat("1", i) + ",0.05\n"
		if err := os.WriteFile(filepath.Join(d, "metrics.csv"), []byte(csv), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := filepath.Join(dir, "plots", "mass.png")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr []string // substrings of stderr
	}{
		{"help", []string{"-h"}, 0, []string{"usage: jarzyn-report", "-column"}},
		{"long help", []string{"--help"}, 0, []string{"usage: jarzyn-report"}},
		{"unknown flag", []string{"--bogus", "a=" + runA}, 2, []string{"-bogus", "Run 'jarzyn-report --help' for usage."}},
		{"bad flag value", []string{"--target", "high", "a=" + runA}, 2, []string{"-target", "Run 'jarzyn-report --help'"}},
		{"missing run dirs", []string{"--out", out}, 2, []string{"LABEL=RUNDIR is required", "Run 'jarzyn-report --help'"}},
		{"empty column", []string{"--column", "", "a=" + runA}, 2, []string{"--column"}},
		{"unexpected argument", []string{"--out", out, "a="}, 2, []string{`"a="`, "Run 'jarzyn-report --help'"}},
		{"run dir does not exist", []string{"--out", out, "a=" + filepath.Join(dir, "nope")}, 1, []string{"jarzyn-report: ", "nope"}},
		{"no such column", []string{"--out", out, "--column", "ess", runA}, 1, []string{`no values in column "ess"`}},
		{"plot", []string{"--out", out, "--target", "0.25", "jarzynski=" + runA, runB}, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clitest.Run(t, run, nil, tc.args, tc.code, tc.stderr...)
			if tc.code != 0 || tc.name != "plot" {
				if _, err := os.Stat(out); err == nil {
					t.Errorf("%s written", out)
				}
				return
			}
			f, err := os.Open(out)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := png.Decode(f); err != nil {
				t.Errorf("%s: %v", out, err)
			}
		})
	}
}
