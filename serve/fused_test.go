package serve

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/models"
)

// loadParams exports p (no latent file) and loads it with opt.
func loadParams(t testing.TB, p *models.Params, opt LoadOptions) *Model {
	t.Helper()
	needORT(t)
	b, err := export.Build(p, models.TrainingInfo{Method: "test", StepSize: 0.01, LogZEstimate: math.NaN(), DataMin: -3, DataMax: 3})
	if err != nil {
		t.Fatal(err)
	}
	opt.Logger = quietLog
	m, err := LoadModel(writeFile(t, t.TempDir(), "model.onnx", b), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// TestLoadFused: CPU sessions of SiLU MLPs run the fused graph unless
// NoFused; other activations and families keep the file's graph.
func TestLoadFused(t *testing.T) {
	softplus := mlpParams(t, 3, 8, 1)
	softplus.Spec.Activation = models.Softplus
	cases := []struct {
		name string
		m    func(t *testing.T) *Model
		want bool
	}{
		{"silu mlp", func(t *testing.T) *Model { return loadParams(t, mlpParams(t, 3, 16, 1), LoadOptions{}) }, true},
		{"silu mlp, NoFused", func(t *testing.T) *Model { return loadParams(t, mlpParams(t, 3, 16, 1), LoadOptions{NoFused: true}) }, false},
		{"softplus mlp", func(t *testing.T) *Model { return loadParams(t, softplus, LoadOptions{}) }, false},
		{"gaussian", func(t *testing.T) *Model { return loadGaussian(t, testGaussian) }, false},
		{"latent model of a silu mlp", func(t *testing.T) *Model {
			m := loadLatentMLP(t, narrowMLP(t, 1), 0.01, LoadOptions{})
			if m.latent == nil {
				t.Fatal("no latent model loaded")
			}
			return m.latent.m
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.m(t).Fused; got != c.want {
				t.Errorf("Fused = %v, want %v", got, c.want)
			}
		})
	}
}

// TestFusedSampleMatchesFileGraph runs the same plain and weighted walks on
// the fused graph and on the file's: float32 rounding apart, the samples,
// weights and log Ẑ are the same.
func TestFusedSampleMatchesFileGraph(t *testing.T) {
	p := mlpParams(t, 2, 32, 4)
	fused := loadParams(t, p, LoadOptions{})
	plain := loadParams(t, p, LoadOptions{NoFused: true})
	if !fused.Fused || plain.Fused {
		t.Fatalf("Fused: %v and %v", fused.Fused, plain.Fused)
	}
	for _, weighted := range []bool{false, true} {
		cfg := SampleConfig{N: 300, Steps: 25, StepSize: 0.01, Seed: 9, Weighted: weighted}
		a, err := Sample(context.Background(), fused, cfg)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Sample(context.Background(), plain, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range a.Samples {
			if d := math.Abs(float64(v - b.Samples[i])); d > 1e-4*math.Max(1, math.Abs(float64(v))) {
				t.Fatalf("weighted=%v: sample value %d: fused %v, file's graph %v", weighted, i, v, b.Samples[i])
			}
		}
		if weighted {
			if d := math.Abs(a.LogZ - b.LogZ); !(d < 1e-4) {
				t.Errorf("log Ẑ: fused %v, file's graph %v", a.LogZ, b.LogZ)
			}
			for i, w := range a.LogWeights {
				if d := math.Abs(w - b.LogWeights[i]); !(d < 1e-3) {
					t.Fatalf("log-weight %d: fused %v, file's graph %v", i, w, b.LogWeights[i])
				}
			}
		}
	}
}

// TestAgreeRejectsOtherModel: the load-time check that guards the fused
// graph fails, naming the difference, when the two sessions compute
// different energies.
func TestAgreeRejectsOtherModel(t *testing.T) {
	a := loadParams(t, mlpParams(t, 2, 8, 1), LoadOptions{NoFused: true})
	b := loadParams(t, mlpParams(t, 2, 8, 2), LoadOptions{NoFused: true})
	x := a.probePoints()
	if err := agree(a.sess, a.sess, x, 2, true); err != nil {
		t.Fatalf("a session disagrees with itself: %v", err)
	}
	err := agree(a.sess, b.sess, x, 2, true)
	if err == nil || !strings.Contains(err.Error(), "disagrees") {
		t.Fatalf("agree on two different models: %v", err)
	}
	// the gradient-only session: right for its own model, wrong for another
	c := loadParams(t, mlpParams(t, 2, 8, 1), LoadOptions{})
	if c.gradSess == nil {
		t.Fatal("no gradient-only session")
	}
	if err := agree(a.sess, c.gradSess, x, 2, false); err != nil {
		t.Errorf("gradient-only session of the same model: %v", err)
	}
	if err := agree(b.sess, c.gradSess, x, 2, false); err == nil || !strings.Contains(err.Error(), "grad") {
		t.Errorf("gradient-only session of another model: %v", err)
	}
}

// TestProbePoints covers the base Gaussian and the data range.
func TestProbePoints(t *testing.T) {
	m := loadGaussian(t, testGaussian)
	x := m.probePoints()
	if len(x) != fusedProbe*2 {
		t.Fatalf("%d values", len(x))
	}
	var inRange, nearBase int
	for i := 0; i < fusedProbe; i++ {
		v := x[2*i]
		if i%2 == 1 && v >= -4 && v <= 4 {
			inRange++
		}
		if i%2 == 0 && math.Abs(float64(v)+1) < 3*1.5 {
			nearBase++
		}
	}
	if inRange != fusedProbe/2 || nearBase < fusedProbe/2*9/10 {
		t.Errorf("probe points: %d of %d in the data range, %d of %d near the base mean", inRange, fusedProbe/2, nearBase, fusedProbe/2)
	}
}

// TestMainSampleFused: the CLI summary says whether the fused operators ran,
// --no-fused turns them off, and both give the same samples up to rounding.
func TestMainSampleFused(t *testing.T) {
	needORT(t)
	b, err := export.Build(mlpParams(t, 2, 16, 3), models.TrainingInfo{Method: "test", StepSize: 0.01, LogZEstimate: math.NaN(), DataMin: -3, DataMax: 3})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	model := writeFile(t, dir, "model.onnx", b)
	args := []string{"--model", model, "--n", "64", "--steps", "20", "--seed", "3", "--format", "csv"}
	on, a := runSample(t, dir+"/fused.csv", args...)
	off, c := runSample(t, dir+"/plain.csv", append(args, "--no-fused")...)
	if !on.Fused || off.Fused {
		t.Fatalf("summary fused: %v by default, %v with --no-fused", on.Fused, off.Fused)
	}
	ra, rc := strings.Split(strings.TrimSpace(string(a)), "\n"), strings.Split(strings.TrimSpace(string(c)), "\n")
	if len(ra) != len(rc) || len(ra) != 65 {
		t.Fatalf("%d and %d CSV lines", len(ra), len(rc))
	}
	for i := 1; i < len(ra); i++ {
		fa, fc := strings.Split(ra[i], ","), strings.Split(rc[i], ",")
		for k := range fa {
			x, _ := strconv.ParseFloat(fa[k], 64)
			y, _ := strconv.ParseFloat(fc[k], 64)
			if math.Abs(x-y) > 1e-4*math.Max(1, math.Abs(x)) {
				t.Fatalf("row %d: %s against %s", i, ra[i], rc[i])
			}
		}
	}
}
