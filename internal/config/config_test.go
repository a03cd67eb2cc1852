package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type testInner struct {
	N     int                `mapstructure:"n"`
	Rates map[string]float64 `mapstructure:"rates"`
}

type testConfig struct {
	Name    string    `mapstructure:"name"`
	Walkers testInner `mapstructure:"walkers"`
}

// TestKeyErrors checks that an unknown key, in the file or in an override,
// is a *KeyError naming the key and the file, and that other failures wrap
// their cause.
func TestKeyErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "name: x\nwalkers:\n  n: 3\n  rates:\n    any: 1\n")
	for _, tc := range []struct {
		name, file string
		sets       []string
		key, src   string // the KeyError's Key and File
		text       string // in the message
	}{
		{"unknown nested key", write("nested.yaml", "walkers:\n  nn: 5\n"), nil, "walkers.nn", filepath.Join(dir, "nested.yaml"), `"walkers.nn" is unknown`},
		{"unknown top key", write("top.yaml", "nme: x\n"), nil, "nme", filepath.Join(dir, "top.yaml"), "top.yaml"},
		{"unknown set key", good, []string{"walkers.m=3"}, "walkers.m", good, "known keys: name, walkers.n, walkers.rates"},
		{"unknown set key, defaults", "", []string{"Walkers.M=3"}, "walkers.m", "defaults", "config defaults:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig{}
			err := Load(tc.file, tc.sets, &c)
			var ke *KeyError
			if !errors.As(err, &ke) {
				t.Fatalf("error %v is not a *KeyError", err)
			}
			if ke.Key != tc.key || ke.File != tc.src || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("KeyError %+v (%q); want key %q, file %q, text %q", *ke, err, tc.key, tc.src, tc.text)
			}
		})
	}
	c := testConfig{}
	if err := Load(good, []string{"walkers.rates.other=2"}, &c); err != nil || c.Walkers.N != 3 || c.Walkers.Rates["other"] != 2 {
		t.Errorf("open map keys: %v %+v", err, c)
	}
	var ke *KeyError
	err := Load(filepath.Join(dir, "nope.yaml"), nil, &c)
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, &ke) {
		t.Errorf("missing file: %v", err)
	}
	err = Load(write("type.yaml", "walkers:\n  n: lots\n"), nil, &c)
	if err == nil || errors.As(err, &ke) || !strings.Contains(err.Error(), "walkers.n") || !strings.Contains(err.Error(), "type.yaml") {
		t.Errorf("bad type: %v", err)
	}
	if err := Load(good, []string{"walkers.n"}, &c); err == nil || !strings.Contains(err.Error(), "key=value") {
		t.Errorf("malformed override: %v", err)
	}
}

func TestInFile(t *testing.T) {
	err := Errorf("walkers.n", "must be > 0, got %d", -3)
	if got := err.Error(); got != `config: key "walkers.n" must be > 0, got -3` {
		t.Errorf("no file: %q", got)
	}
	InFile(err, "a.yaml")
	if got := err.Error(); got != `config a.yaml: key "walkers.n" must be > 0, got -3` {
		t.Errorf("with file: %q", got)
	}
	InFile(err, "b.yaml") // a file already set is kept
	var ke *KeyError
	if !errors.As(err, &ke) || ke.File != "a.yaml" {
		t.Errorf("file overwritten: %v", err)
	}
	plain := errors.New("x")
	if InFile(plain, "a.yaml") != plain {
		t.Errorf("InFile changed an error that is not a KeyError")
	}
}
