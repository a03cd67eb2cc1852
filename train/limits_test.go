package train

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/internal/config"
)

// TestConfigLimits: sizes beyond the limits, non-finite floats, fractions
// and out-of-range numbers for integer keys are refused by LoadConfig with
// a *config.KeyError naming the key and the file, before anything is
// allocated; the shipped configs and sizes at the limits pass.
func TestConfigLimits(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		yaml string
		key  string // "" means accepted
		want string
	}{
		{"walkers.n 1e13", "walkers: {n: 1e13}", "walkers.n", "must be at most 16777216"},
		{"hidden 1e8 wide", "model: {hidden: [1e8, 1e8]}", "model.hidden[0]", "must be at most 65536"},
		{"model.dim 1e9", "model: {family: gmm, dim: 1e9, modes: 2}", "model.dim", "at most"},
		{"data.n 1e12", "data: {n: 1e12}", "data.n", "at most"},
		{"log.grid 1e9", "log: {grid: 1e9}", "log.grid", "at most 4096"},
		{"walkers.monitor 1e12", "walkers: {monitor: 1e12}", "walkers.monitor", "at most"},
		{"walkers.ula_steps 1e9", "walkers: {ula_steps: 1e9}", "walkers.ula_steps", "at most 1048576"},
		{"modes 1e6", "model: {family: gmm, dim: 2, modes: 1000000}", "model.modes", "at most"},
		{"too many layers", "model: {hidden: [" + strings.Repeat("2, ", 64) + "2]}", "model.hidden", "at most 64 entries"},
		{"too many parameters", "model: {dim: 16384, hidden: [65536]}", "model", "parameters, more than the limit"},
		{"memory estimate", "model: {dim: 100000, hidden: [8]}\nwalkers: {n: 10000000}\ndata: {n: 100}", "walkers.n", "more than the limit of 64 GiB"},
		{"log.every times eval_every overflow", "log: {every: 4294967296, eval_every: 4294967296}", "log.every", "at most"},
		{"iterations 1e19", "iterations: 1e19", "iterations", "must be an integer in"},
		{"iterations 2e9", "iterations: 2e9", "iterations", "must be in [0, 1000000000]"},
		{"walkers.n 1.5", "walkers: {n: 1.5}", "walkers.n", "must be an integer, got 1.5"},
		{"hidden width 32.5", "model: {hidden: [32.5]}", "model.hidden[0]", "must be an integer"},
		{"lr inf", "optimizer: {lr: .inf}", "optimizer.lr", "finite"},
		{"beta1 nan", "optimizer: {beta1: .nan}", "optimizer.beta1", "finite"},
		{"threshold nan", "resample: {threshold: .nan}", "resample.threshold", "finite"},
		{"clip_norm nan", "optimizer: {clip_norm: .nan}", "optimizer.clip_norm", "finite"},
		{"teacher mean nan", "data: {teacher: {means: [[0, .nan], [1, 1], [2, 2]]}}", "data.teacher.means[0][1]", "finite"},
		{"group lr -inf", "optimizer: {group_lr: {w0: -.inf}}", "optimizer.group_lr.w0", "finite"},
		{"base_std inf", "model: {base_std: .inf}", "model.base_std", "finite"},
		{"mean override fractional mode", "model: {family: gmm, dim: 2, modes: 2, mean_overrides: [[0.5, 0, 1]]}", "model.mean_overrides[0]", "integer mode"},
		{"mean override mode 1e300", "model: {family: gmm, dim: 2, modes: 2, mean_overrides: [[1e300, 0, 1]]}", "model.mean_overrides[0]", "mode in [0, model.modes)"},
		{"mean override coordinate 2", "model: {family: gmm, dim: 2, modes: 2, mean_overrides: [[1, 2, 1]]}", "model.mean_overrides[0]", "coordinate in [0, model.dim)"},
		{"seed negative", "seed: -1", "seed", "must be an integer in [0, 18446744073709551615]"},
		{"at the limits", "walkers: {n: 16777216, ula_steps: 1048576}\nmodel: {hidden: [64]}\ndata: {n: 100000}\nlog: {grid: 4096}\niterations: 1000000000", "", ""},
		{"integral floats", "walkers: {n: 1e3}\ndata: {n: 2.0e3}", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			if err := os.WriteFile(file, []byte(tc.yaml+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(file, nil)
			if tc.key == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var ke *config.KeyError
			if !errors.As(err, &ke) || ke.Key != tc.key || ke.File != file || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want a KeyError for %q in %s saying %q", err, tc.key, file, tc.want)
			}
		})
	}
	for _, f := range []string{"../configs/gmm2d.yaml", "../configs/gmm50d.yaml"} {
		if _, err := LoadConfig(f, nil); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// Validate on a struct built in code refuses non-finite values too
	for _, tc := range []struct {
		key string
		set func(c *Config, nan float64)
	}{
		{"optimizer.clip_norm", func(c *Config, nan float64) { c.Optimizer.ClipNorm = nan }},
		{"resample.threshold", func(c *Config, nan float64) { c.Resample.Threshold = nan }},
		{"optimizer.beta1", func(c *Config, nan float64) { c.Optimizer.Beta1 = nan }},
		{"data.teacher.stds[2]", func(c *Config, nan float64) { c.Data.Teacher.Stds = []float64{1, 1, nan} }},
	} {
		c := DefaultConfig()
		tc.set(&c, 0*(1/zero()))
		var ke *config.KeyError
		if err := c.Validate(); !errors.As(err, &ke) || ke.Key != tc.key {
			t.Errorf("Validate of a NaN %s: %v", tc.key, err)
		}
	}
}

func zero() float64 { return 0 }

// FuzzConfigLimits: any YAML config file is accepted or refused, never a
// panic, a huge allocation or a hang; a refusal names the file, and a
// refused value names its key; an accepted config is within the limits and
// finite, and Validate agrees. Seeds: testdata/fuzz/FuzzConfigLimits.
func FuzzConfigLimits(f *testing.F) {
	for _, p := range []string{"../configs/gmm2d.yaml", "../configs/gmm50d.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	for _, s := range []string{
		"walkers: {n: 1e13}", "model: {hidden: [1e8, 1e8]}", "model: {family: gmm, dim: 1e9, modes: 2}",
		"data: {n: 1e12}", "log: {grid: 1e9}", "walkers: {monitor: 1e12, ula_steps: 1e9}", "iterations: 1e19",
		"walkers: {n: 1.5}", "optimizer: {lr: .inf, beta1: .nan, clip_norm: .nan}", "resample: {threshold: .nan}",
		"data: {teacher: {means: [[.nan, 0]]}}", "model: {family: conv, input_shape: [1, 28, 28], conv: [{out: 8, kernel: 3, stride: 1, activation: silu}]}",
		"log: {every: 4294967296, eval_every: 4294967296}", "seed: -1", "model: {mean_overrides: [[1e300, 0, 1]]}",
	} {
		f.Add([]byte(s + "\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(p, nil)
		if err != nil {
			var ke *config.KeyError
			if errors.As(err, &ke) && (ke.Key == "" || ke.File != p) {
				t.Fatalf("KeyError without its key or file: %+v", *ke)
			}
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("LoadConfig accepted a config that Validate refuses: %v", err)
		}
		if err := config.CheckFinite(&c); err != nil {
			t.Fatalf("accepted a non-finite value: %v", err)
		}
		if c.Walkers.N > MaxWalkers || c.Data.N > MaxDataN || c.Model.Dim > MaxDim || c.Walkers.ULASteps > MaxULASteps ||
			c.Log.Grid > MaxGrid || c.Iterations > MaxIterations || c.Model.NumParams() > MaxParams || c.memoryEstimate(c.Model.NumParams()) > MaxMemoryBytes {
			t.Fatalf("accepted a config beyond the limits: %+v", c)
		}
	})
}
