package train

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/datasets"
	"github.com/jarzyn/jarzyn/internal/config"
	"github.com/jarzyn/jarzyn/models"
)

// mnistDir is the MNIST folder `make setup` fills, seen from the package
// directory; tests that need it skip when it is missing.
func mnistDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("..", DefaultMNISTDir)
	if _, err := os.Stat(filepath.Join(dir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("MNIST files not in %s (make setup puts them there): %v", dir, err)
	}
	return dir
}

// mnistConfig is the MNIST preset on data.kind mnist.
func mnistConfig() Config {
	c := DefaultConfig()
	c.Model.Preset = "mnist"
	c.Model.BaseStd = 1
	c.Data.Kind = DataMNIST
	return c
}

// data.kind mnist and cifar10: the class subset defaults, data.n derived
// from the counts, and every bad key named.
func TestFileDataConfig(t *testing.T) {
	c := mnistConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Data.N != 9800 || len(c.Data.Classes) != 3 || c.Data.Classes[2] != 6 || c.Data.Counts[0] != 5600 {
		t.Errorf("mnist defaults: n %d, classes %v, counts %v; want 9800, [2 3 6], [5600 2800 1400]", c.Data.N, c.Data.Classes, c.Data.Counts)
	}
	cf := DefaultConfig()
	cf.Model.Preset = "cifar"
	cf.Data.Kind = DataCIFAR10
	if err := cf.Validate(); err != nil {
		t.Fatal(err)
	}
	if cf.Data.N != 50000 || len(cf.Data.Classes) != 10 {
		t.Errorf("cifar10 defaults: n %d, classes %v", cf.Data.N, cf.Data.Classes)
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		key  string
	}{
		{"gmm family", func(c *Config) {
			c.Model.Preset = ""
			c.Model.Spec = models.Spec{Family: models.GMM, Dim: 784, Modes: 2}
		}, "model.family"},
		{"mlp of the wrong size", func(c *Config) { c.Model.Preset = ""; c.Model.Spec = DefaultConfig().Model.Spec }, "model.dim"},
		{"cifar net on mnist", func(c *Config) { c.Model.Preset = "cifar" }, "model.dim"},
		{"counts per class", func(c *Config) { c.Data.Counts = []int{10, 20} }, "data.counts"},
		{"class 10", func(c *Config) { c.Data.Classes = []int{2, 10}; c.Data.Counts = []int{5, 5} }, "data.classes[1]"},
		{"class twice", func(c *Config) { c.Data.Classes = []int{2, 2}; c.Data.Counts = []int{5, 5} }, "data.classes[1]"},
		{"count 0", func(c *Config) { c.Data.Classes = []int{2}; c.Data.Counts = []int{0} }, "data.counts[0]"},
		{"count beyond the split", func(c *Config) { c.Data.Classes = []int{2}; c.Data.Counts = []int{7000} }, "data.counts[0]"},
		{"noise", func(c *Config) { c.Data.Noise = -1 }, "data.noise"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mnistConfig()
			tc.edit(&c)
			err := c.Validate()
			var ke *config.KeyError
			if !errors.As(err, &ke) || ke.Key != tc.key {
				t.Fatalf("Validate = %v, want a KeyError for %s", err, tc.key)
			}
		})
	}
}

// A short run on real MNIST digits: the data are the asked subset in
// [−1, 1] with their digits as labels, and the summary has no teacher (no
// entropy, no mode masses) instead of made-up values. A missing folder is
// an error naming data.path.
func TestTrainMNISTShort(t *testing.T) {
	dir := mnistDir(t)
	c := DefaultConfig()
	c.Name, c.Dtype, c.Iterations = "mnist-short", "float32", 3
	c.Model.Spec = models.Spec{Family: models.Conv, Dim: 784, InputShape: []int{1, 28, 28},
		Conv:   []models.ConvLayer{{Out: 4, Kernel: 5, Stride: 4, Pad: 0, Activation: models.SiLU}},
		Hidden: []int{8}, Activation: models.SiLU, BaseStd: 1}
	c.Data = DataConfig{Kind: DataMNIST, Path: dir, Classes: []int{3, 2}, Counts: []int{40, 24}, Batch: 16}
	c.Walkers.N, c.Walkers.StepSize = 32, 0.01
	c.Log.Every, c.Log.Plots = 1, false
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer[float32](c)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.data) != 64*784 || len(tr.labels) != 64 || tr.labels[0] != 3 || tr.labels[40] != 2 {
		t.Fatalf("data %d values, labels %d (first %d, 41st %d); want 64 images, 40 threes then 24 twos", len(tr.data), len(tr.labels), tr.labels[0], tr.labels[40])
	}
	// the first image is the split's first 3, the 41st its first 2
	all, err := datasets.LoadMNIST(dir, "train")
	if err != nil {
		t.Fatal(err)
	}
	first := map[int]int{}
	for i := all.N - 1; i >= 0; i-- {
		first[all.Labels[i]] = i
	}
	for _, tc := range []struct{ at, digit int }{{0, 3}, {40, 2}} {
		if !slices.Equal(tr.data[tc.at*784:(tc.at+1)*784], all.Image(first[tc.digit])) {
			t.Errorf("data point %d is not the split's first %d", tc.at, tc.digit)
		}
	}
	lo, hi := dataRange(tr.data)
	if lo != -1 || hi != 1 {
		t.Errorf("pixels in [%g, %g], want [−1, 1]", lo, hi)
	}
	out := t.TempDir()
	if _, err := Run(context.Background(), Options{Config: c, OutDir: out, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, SummaryFile))
	if err != nil {
		t.Fatal(err)
	}
	var sum map[string]any
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum["teacher_entropy"] != nil || sum["teacher"] != nil || sum["mode_masses"] != nil || sum["ce_estimate"] == nil {
		t.Errorf("summary: teacher_entropy %v, teacher %v, mode_masses %v, ce_estimate %v; want no teacher values and a CE estimate",
			sum["teacher_entropy"], sum["teacher"], sum["mode_masses"], sum["ce_estimate"])
	}

	c.Data.Path = filepath.Join(t.TempDir(), "nowhere")
	if _, err := newTrainer[float32](c); err == nil || !strings.Contains(err.Error(), "data.path") || !strings.Contains(err.Error(), "nowhere") {
		t.Errorf("missing folder: %v, want an error naming data.path and the folder", err)
	}
}

// configs/cifar10-paper.yaml validates as shipped and fails clearly, naming
// data.path and the files it needs, when the batches are not there.
func TestCIFAR10PaperConfigNeedsData(t *testing.T) {
	for _, tc := range []struct{ path, want string }{
		{"", "set data.path"},
		{t.TempDir(), "data_batch_1.bin"},
	} {
		cfg, err := LoadConfig("../configs/cifar10-paper.yaml", []string{"data.path=" + tc.path})
		if err != nil {
			t.Fatal(err)
		}
		if !cfg.Walkers.Heuristic || cfg.Data.N != 50000 || cfg.Model.Dim != 3072 {
			t.Errorf("config: heuristic %v, n %d, dim %d", cfg.Walkers.Heuristic, cfg.Data.N, cfg.Model.Dim)
		}
		_, err = newTrainer[float32](cfg)
		if err == nil || !strings.Contains(err.Error(), "data.path") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("data.path %q: %v, want an error naming data.path and %q", tc.path, err, tc.want)
		}
	}
}
