package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name    string
		hFlag   bool // the command has a flag -h with a value
		args    []string
		code    int
		ok      bool
		stderr  string // substring; "" means empty stderr
		noUsage bool   // the usage must not be printed
	}{
		{"ok", false, []string{"--n", "3"}, ExitOK, true, "", true},
		{"-h", false, []string{"-h"}, ExitOK, false, "usage: cmd\n\nFlags:\n  -n", false},
		{"--help", false, []string{"--n", "3", "--help"}, ExitOK, false, "usage: cmd", false},
		{"-h is a flag", true, []string{"-h", "0.5"}, ExitOK, true, "", true},
		{"bare -h where -h is a flag", true, []string{"--n", "3", "-h"}, ExitOK, false, "usage: cmd", false},
		{"--help where -h is a flag", true, []string{"--help"}, ExitOK, false, "usage: cmd", false},
		{"unknown flag", false, []string{"--bogus"}, ExitUsage, false, "cmd: flag provided but not defined: -bogus\nRun 'cmd --help' for usage.\n", true},
		{"bad value", false, []string{"--n", "x"}, ExitUsage, false, "cmd: invalid value \"x\" for flag -n", true},
		{"missing value", false, []string{"--n"}, ExitUsage, false, "flag needs an argument: -n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			fs := NewFlagSet("cmd", "usage: cmd", &stderr)
			fs.Int("n", 0, "a number")
			if tc.hFlag {
				fs.Float64("h", 0, "a step")
			}
			code, ok := Parse(fs, tc.args)
			if code != tc.code || ok != tc.ok {
				t.Errorf("Parse = %d, %v; want %d, %v", code, ok, tc.code, tc.ok)
			}
			got := stderr.String()
			if (tc.stderr == "" && got != "") || !strings.Contains(got, tc.stderr) {
				t.Errorf("stderr %q; want it to contain %q", got, tc.stderr)
			}
			if tc.noUsage && strings.Contains(got, "Flags:") {
				t.Errorf("usage printed: %q", got)
			}
			// the flag set prints to stderr again afterwards
			if fs.Output() != &stderr {
				t.Errorf("output not restored")
			}
		})
	}
}

func TestNoArgs(t *testing.T) {
	var stderr bytes.Buffer
	fs := NewFlagSet("cmd sub", "usage: cmd sub", &stderr)
	if code, ok := Parse(fs, []string{"a", "b"}); code != ExitOK || !ok {
		t.Fatalf("Parse = %d, %v", code, ok)
	}
	code, ok := NoArgs(fs)
	if code != ExitUsage || ok || stderr.String() != "cmd sub: unexpected arguments [\"a\" \"b\"]\nRun 'cmd sub --help' for usage.\n" {
		t.Errorf("NoArgs = %d, %v, stderr %q", code, ok, stderr.String())
	}
}
