package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/internal/cli/clitest"
)

// TestExitCodes pins the exit status convention (internal/cli): 0 for
// success and -h, 2 for usage errors with a one-line hint, 1 for failures,
// 130 for an interrupted run that left a checkpoint.
func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "tiny.yaml")
	tiny := "name: tiny\niterations: 3\nmodel:\n  family: gmm\n  dim: 2\n  modes: 2\ndata:\n  n: 64\n  teacher:\n    means: [[-2, 0], [2, 0]]\n    masses: [0.5, 0.5]\n" +
		"walkers:\n  n: 64\nlog:\n  every: 1\n  plots: false\n  grid: 10\n"
	if err := os.WriteFile(cfgFile, []byte(tiny), 0o644); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(dir, "file")
	if err := os.WriteFile(notDir, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		args   []string
		code   int
		stderr []string // substrings of stderr
		stdout string   // substring of stdout
	}{
		{"help", nil, []string{"-h"}, 0, []string{"usage: jarzyn-train --config FILE", "-resume"}, ""},
		{"long help", nil, []string{"--help"}, 0, []string{"usage: jarzyn-train"}, ""},
		{"unknown flag", nil, []string{"--bogus"}, 2, []string{"-bogus", "Run 'jarzyn-train --help' for usage."}, ""},
		{"bad flag value", nil, []string{"--config", cfgFile, "--print-config=maybe"}, 2, []string{"print-config", "Run 'jarzyn-train --help'"}, ""},
		{"missing config", nil, nil, 2, []string{"--config FILE is required", "Run 'jarzyn-train --help'"}, ""},
		{"unexpected argument", nil, []string{"--config", cfgFile, "extra"}, 2, []string{`unexpected arguments ["extra"]`}, ""},
		{"resume with config", nil, []string{"--resume", dir, "--config", cfgFile}, 2, []string{"drop --config"}, ""},
		{"unknown key", nil, []string{"--config", cfgFile, "--set", "walkers.m=3"}, 2, []string{`"walkers.m"`, "tiny.yaml", "Run 'jarzyn-train --help'"}, ""},
		{"bad value", nil, []string{"--config", cfgFile, "--set", "walkers.n=-1"}, 2, []string{"walkers.n", "tiny.yaml"}, ""},
		{"config file does not exist", nil, []string{"--config", filepath.Join(dir, "nope.yaml")}, 1, []string{"nope.yaml"}, ""},
		{"resume dir does not exist", nil, []string{"--resume", filepath.Join(dir, "nope")}, 1, []string{"nope"}, ""},
		{"print config", nil, []string{"--config", cfgFile, "--print-config"}, 0, nil, "name: tiny"},
		{"run fails", nil, []string{"--config", cfgFile, "--out", filepath.Join(notDir, "run")}, 1, []string{"jarzyn-train: "}, ""},
		{"run", nil, []string{"--config", cfgFile, "--out", filepath.Join(dir, "run")}, 0, nil, "3 iterations"},
		{"interrupted", cancelled, []string{"--config", cfgFile, "--out", filepath.Join(dir, "stopped")}, 130, []string{"resume with: jarzyn-train --resume"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _ := clitest.Run(t, run, tc.ctx, tc.args, tc.code, tc.stderr...)
			if !strings.Contains(stdout, tc.stdout) || (tc.stdout == "" && stdout != "") {
				t.Errorf("stdout %q, want %q", stdout, tc.stdout)
			}
		})
	}
}
