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

type testEmbedded struct {
	Widths []int `mapstructure:"widths"`
}

// typesConfig has a field of every kind that checkValues treats.
type typesConfig struct {
	testEmbedded `mapstructure:",squash"`
	Seed         uint64             `mapstructure:"seed"`
	Small        int32              `mapstructure:"small"`
	Iters        int                `mapstructure:"iters"`
	LR           float64            `mapstructure:"lr"`
	Means        [][]float64        `mapstructure:"means"`
	Rates        map[string]float64 `mapstructure:"rates"`
	Inner        testInner          `mapstructure:"inner"`
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
	if !errors.As(err, &ke) || ke.Key != "walkers.n" || !strings.Contains(err.Error(), "type.yaml") {
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

// TestStrictValues: integer keys take only integral numbers in their type's
// range, every float anywhere must be finite, from the file, the
// environment and --set alike; each refusal is a *KeyError naming the key
// and the file.
func TestStrictValues(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "c.yaml")
	for _, tc := range []struct {
		name string
		yaml string
		sets []string
		env  [2]string
		key  string // "" means accepted
		want string
	}{
		{"fraction for an int", "iters: 1.5\n", nil, [2]string{}, "iters", "must be an integer, got 1.5"},
		{"1e19 for an int", "iters: 1e19\n", nil, [2]string{}, "iters", "must be an integer in [-9223372036854775808, 9223372036854775807], got 1e+19"},
		{"2^64 literal for an int", "iters: 18446744073709551616\n", nil, [2]string{}, "iters", "must be an integer in"},
		{"uint64 max for an int", "iters: 18446744073709551615\n", nil, [2]string{}, "iters", "got 18446744073709551615"},
		{"negative seed", "seed: -1\n", nil, [2]string{}, "seed", "must be an integer in [0, 18446744073709551615], got -1"},
		{"int32 overflow", "small: 3000000000\n", nil, [2]string{}, "small", "[-2147483648, 2147483647]"},
		{"bool for an int", "iters: true\n", nil, [2]string{}, "iters", "must be an integer, got true"},
		{"NaN for an int", "iters: .nan\n", nil, [2]string{}, "iters", "must be an integer"},
		{"fraction in a nested int", "inner: {n: 2.5}\n", nil, [2]string{}, "inner.n", "got 2.5"},
		{"fraction in an int list", "widths: [4, 4.5]\n", nil, [2]string{}, "widths[1]", "got 4.5"},
		{"inf float", "lr: .inf\n", nil, [2]string{}, "lr", "must be a finite number, got +Inf"},
		{"nan float", "lr: .nan\n", nil, [2]string{}, "lr", "must be a finite number, got NaN"},
		{"nan in a matrix", "means: [[0, 1], [2, .nan]]\n", nil, [2]string{}, "means[1][1]", "finite"},
		{"nan in a map", "rates: {a: 1, b: -.inf}\n", nil, [2]string{}, "rates.b", "finite"},
		{"nan by --set", "", []string{"lr=.nan"}, [2]string{}, "lr", "finite"},
		{"fraction by --set", "", []string{"inner.n=0.5"}, [2]string{}, "inner.n", "integer"},
		{"nan by the environment", "", nil, [2]string{"JARZYN_LR", "NaN"}, "lr", `got "NaN"`},
		{"fraction by the environment", "", nil, [2]string{"JARZYN_ITERS", "2.5"}, "iters", `got "2.5"`},
		{"word by the environment", "", nil, [2]string{"JARZYN_ITERS", "many"}, "iters", `got "many"`},
		{"integral float is an int", "iters: 1e3\nsmall: 2.0\n", nil, [2]string{}, "", ""},
		{"int from the environment", "", nil, [2]string{"JARZYN_ITERS", "42"}, "", ""},
		{"int64 max", "iters: 9223372036854775807\n", nil, [2]string{}, "", ""},
		{"large finite float", "lr: 1e308\nmeans: [[1, -1e300]]\n", nil, [2]string{}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(file, []byte(tc.yaml), 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.env[0] != "" {
				t.Setenv(tc.env[0], tc.env[1])
			}
			c := typesConfig{Iters: 7, LR: 0.5}
			err := Load(file, tc.sets, &c)
			if tc.key == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ke *KeyError
			if !errors.As(err, &ke) || ke.Key != tc.key || ke.File != file || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want a KeyError for %q in %s saying %q", err, tc.key, file, tc.want)
			}
		})
	}
	c := typesConfig{}
	if err := Load(file, []string{"iters=1e3", "small=-2", "seed=18446744073709551615"}, &c); err != nil || c.Iters != 1000 || c.Small != -2 || c.Seed != 1<<64-1 {
		t.Errorf("accepted values decoded wrongly: %v %+v", err, c)
	}
}

func TestCheckFinite(t *testing.T) {
	inf := 1.0
	for range 2000 {
		inf *= 10
	}
	for _, tc := range []struct {
		c   typesConfig
		key string
	}{
		{typesConfig{LR: 1}, ""},
		{typesConfig{LR: inf}, "lr"},
		{typesConfig{Means: [][]float64{{1}, {2, -inf}}}, "means[1][1]"},
		{typesConfig{Rates: map[string]float64{"x": 1, "y": inf - inf}}, "rates.y"},
	} {
		err := CheckFinite(&tc.c)
		var ke *KeyError
		if tc.key == "" {
			if err != nil {
				t.Errorf("%+v refused: %v", tc.c, err)
			}
		} else if !errors.As(err, &ke) || ke.Key != tc.key {
			t.Errorf("%+v: %v, want a KeyError for %q", tc.c, err, tc.key)
		}
	}
}
