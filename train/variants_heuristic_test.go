package train

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// The heuristic step against the same step written out with the noise
// drawn again from its streams (key, chunk): x' = x − clamp(h·g) + σ·ξ per
// coordinate, a coordinate that leaves [lo, hi] put back, one that was
// already outside moving freely; the state before the move saved as
// smc.Population.Move saves it. With σ = √(2h), no clamp and no reverting
// it is Move's ULA step bit for bit.
func TestHeuristicMove(t *testing.T) {
	const n, d, h, key = 70, 3, 0.1, 42 // two noise chunks
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, n*d)
	for i := range x {
		x[i] = 1.1 * rng.NormFloat64() // about a third start outside [−1, 1]
	}
	pop := smc.NewPopulation(slices.Clone(x), d, 0, 0)
	for i := range pop.G {
		pop.G[i] = 2 * rng.NormFloat64()
	}
	for i := range pop.U {
		pop.U[i] = rng.NormFloat64()
	}
	g0, u0 := slices.Clone(pop.G), slices.Clone(pop.U)
	k := &heuristicKernel{noiseStd: 0.3, clamp: 0.05, revert: true, lo: -1, hi: 1, noise: smc.NewNoise(100)}
	heuristicMove(k, pop, h, key)
	z := smc.NewNoise(n)
	var clamped, reverted, outsideMoved int
	for c := 0; c < smc.Chunks(n); c++ {
		lo, hi := smc.ChunkWalkerRange(c, n)
		r := z.Chunk(key, c)
		for j := lo * d; j < hi*d; j++ {
			drift := h * g0[j]
			if math.Abs(drift) > 0.05 {
				drift = math.Copysign(0.05, drift)
				clamped++
			}
			want := x[j] - drift + 0.3*r.NormFloat64()
			inside := func(v float64) bool { return v >= -1 && v <= 1 }
			switch {
			case inside(x[j]) && !inside(want):
				want = x[j]
				reverted++
			case !inside(x[j]):
				outsideMoved++
			}
			if pop.X[j] != want {
				t.Fatalf("walker %d coordinate %d: %v, written out %v", j/d, j%d, pop.X[j], want)
			}
		}
	}
	if clamped == 0 || reverted == 0 || outsideMoved == 0 {
		t.Fatalf("clamped %d, reverted %d, moved outside %d: the test needs each", clamped, reverted, outsideMoved)
	}
	if !slices.Equal(pop.XPrev, x) || !slices.Equal(pop.UPrev, u0) || !slices.Equal(pop.GPrev, g0) {
		t.Fatal("the state before the move was not saved")
	}
	// the exact settings: Move's ULA step
	a, b := smc.NewPopulation(slices.Clone(x), d, 0, 0), smc.NewPopulation(slices.Clone(x), d, 0, 0)
	copy(a.G, g0)
	copy(b.G, g0)
	heuristicMove(&heuristicKernel{noise: smc.NewNoise(n)}, a, h, key)
	b.Move(h, key)
	if !slices.Equal(a.X, b.X) {
		t.Fatal("with σ = √(2h), no clamp and no reverting the step differs from ULA")
	}
}

// Each heuristic key is refused without walkers.heuristic: true, naming
// the key, and accepted with it; walkers.heuristic is refused with MALA
// and with a preconditioner; the other variant keys are range-checked.
func TestVariantConfigErrors(t *testing.T) {
	for _, set := range []string{"walkers.noise_std=1e-4", "walkers.drift_clamp=0.3", "walkers.revert_outside=true", "walkers.warmup_steps=10"} {
		key := strings.SplitN(set, "=", 2)[0]
		_, err := LoadConfig("", []string{set})
		if err == nil || !strings.Contains(err.Error(), `"`+key+`"`) || !strings.Contains(err.Error(), "walkers.heuristic: true") {
			t.Errorf("%s without walkers.heuristic: error %v, want one naming %s and walkers.heuristic", set, err, key)
		}
		if _, err := LoadConfig("", []string{set, "walkers.heuristic=true"}); err != nil {
			t.Errorf("%s with walkers.heuristic: %v", set, err)
		}
	}
	for _, tc := range []struct {
		sets []string
		key  string
	}{
		{[]string{"walkers.heuristic=true", "walkers.kernel=mala"}, "walkers.heuristic"},
		{[]string{"walkers.heuristic=true", "walkers.preconditioner=base"}, "walkers.heuristic"},
		{[]string{"walkers.heuristic=true", "walkers.noise_std=-1"}, "walkers.noise_std"},
		{[]string{"walkers.move=1001"}, "walkers.move"},
		{[]string{"walkers.move=10", "walkers.kernel=mala"}, "walkers.move"},
		{[]string{"loss.walkers=2000"}, "loss.walkers"},
		{[]string{"loss.energy_reg=-0.1"}, "loss.energy_reg"},
		{[]string{"resample.criterion=kl"}, "resample.criterion"},
		{[]string{"resample.threshold=1.5"}, "resample.threshold"},
		{[]string{"resample.criterion=loss_ess", "loss.walkers=100", "resample.threshold=101"}, "resample.threshold"},
	} {
		if _, err := LoadConfig("", tc.sets); err == nil || !strings.Contains(err.Error(), `"`+tc.key+`"`) {
			t.Errorf("%v: error %v, want one naming %s", tc.sets, err, tc.key)
		}
	}
	for _, sets := range [][]string{
		{"resample.criterion=std", "resample.threshold=1.5"},
		{"resample.criterion=loss_ess", "loss.walkers=100", "resample.threshold=64"},
		{"walkers.move=256", "loss.walkers=256", "loss.energy_reg=0.01"},
	} {
		if _, err := LoadConfig("", sets); err != nil {
			t.Errorf("%v: %v", sets, err)
		}
	}
}

// heuristicTestConfig is variantTestConfig with every heuristic setting on.
func heuristicTestConfig() Config {
	c := variantTestConfig()
	c.Walkers.Heuristic = true
	c.Walkers.NoiseStd, c.Walkers.DriftClamp, c.Walkers.RevertOutside, c.Walkers.WarmupSteps = 0.4, 0.2, true, 4
	return c
}

// walkers.heuristic labels the run: summary.json has "heuristic_weights":
// true (and an exact run has no such key), the log says "heuristic
// weights", and the label reaches every plot (each PNG differs from the
// same plot drawn without it).
func TestHeuristicRunLabelled(t *testing.T) {
	cfg := heuristicTestConfig()
	cfg.Log.Plots = true
	dir := t.TempDir()
	var logs bytes.Buffer
	sum, err := Run(context.Background(), Options{Config: cfg, OutDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := os.ReadFile(filepath.Join(dir, SummaryFile))
	if !sum.HeuristicWeights || !strings.Contains(string(js), `"heuristic_weights": true`) {
		t.Errorf("summary.json of a heuristic run:\n%s", js)
	}
	if !strings.Contains(logs.String(), "heuristic weights") {
		t.Errorf("the log does not say heuristic weights:\n%s", logs.String())
	}
	exact := variantTestConfig()
	exactDir := t.TempDir()
	if _, err := Run(context.Background(), Options{Config: exact, OutDir: exactDir, Logger: quiet}); err != nil {
		t.Fatal(err)
	}
	if js, _ := os.ReadFile(filepath.Join(exactDir, SummaryFile)); strings.Contains(string(js), "heuristic") {
		t.Errorf("summary.json of an exact run mentions heuristic weights:\n%s", js)
	}
	// the same plots without the label
	plain := t.TempDir()
	m, _ := os.ReadFile(filepath.Join(dir, MetricsFile))
	if err := os.WriteFile(filepath.Join(plain, MetricsFile), m, 0o644); err != nil {
		t.Fatal(err)
	}
	p, _, err := models.ReadParams(filepath.Join(dir, models.WeightsFile))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer[float64](cfg)
	if err != nil {
		t.Fatal(err)
	}
	walkers := make([]float64, 2*cfg.Walkers.N)
	if err := writeRunPlots(plain, p, tr.teacher, tr.data, walkers, cfg.Log.Grid, ""); err != nil {
		t.Fatal(err)
	}
	if err := writeRunPlots(dir, p, tr.teacher, tr.data, walkers, cfg.Log.Grid, cfg.weightLabel()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"masses.png", "kl.png", "ess.png", "energy.png"} {
		a, errA := os.ReadFile(filepath.Join(dir, PlotsDir, f))
		b, errB := os.ReadFile(filepath.Join(plain, PlotsDir, f))
		if errA != nil || errB != nil || bytes.Equal(a, b) {
			t.Errorf("%s: the heuristic run's plot is the unlabelled one (%v, %v)", f, errA, errB)
		}
	}
}

// walkers.warmup_steps: before iteration 0 the walkers have taken the
// warm-up steps (they differ from the initial draw of the same seed), and
// their log-weights are still 0.
func TestHeuristicWarmUp(t *testing.T) {
	var x0 []float64
	cold := heuristicTestConfig()
	cold.Walkers.WarmupSteps, cold.Iterations = 0, 1
	runTrainer(t, cold, func(tr *trainer[float64], k int) { x0 = slices.Clone(tr.pop.X) })
	cfg := heuristicTestConfig()
	cfg.Iterations = 1
	runTrainer(t, cfg, func(tr *trainer[float64], k int) {
		if tr.vs.warmupDone != cfg.Walkers.WarmupSteps {
			t.Fatalf("%d warm-up steps taken, want %d", tr.vs.warmupDone, cfg.Walkers.WarmupSteps)
		}
		if slices.Equal(tr.pop.X, x0) {
			t.Fatal("the warm-up did not move the walkers")
		}
		for i, a := range slices.Concat(tr.pop.A, tr.mon.A) {
			if a != 0 {
				t.Fatalf("log-weight %d is %v after the warm-up, want 0", i, a)
			}
		}
	})
}

// A run with every variant on (subset moves with two steps, loss subset,
// regulariser, the std criterion, monitor walkers, the heuristic kernel and
// a warm-up), cancelled during the warm-up, stopped, cancelled between two
// steps of an iteration and resumed each time, ends bit for bit where an
// uninterrupted run ends, for both dtypes.
func TestVariantsResumeBitForBit(t *testing.T) {
	for _, dtype := range []string{"float64", "float32"} {
		t.Run(dtype, func(t *testing.T) {
			cfg := heuristicTestConfig()
			cfg.Dtype = dtype
			cfg.Walkers.Move, cfg.Walkers.ULASteps = 24, 2
			cfg.Loss.Walkers, cfg.Loss.EnergyReg = 20, 0.05
			cfg.Resample.Criterion, cfg.Resample.Threshold = "std", 0.3
			cfg.Data.Batch = 100
			cfg.Iterations = 12
			cfg.Log.Every = 3
			dirA, dirB := t.TempDir(), t.TempDir()
			sumA, err := Run(context.Background(), Options{Config: cfg, OutDir: dirA, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if sumA.Resamplings == 0 {
				t.Fatal("no resampling: the test should cover one")
			}
			// the second check of the warm-up cancels: one step taken
			if _, err := Run(&cancelAt{Context: context.Background(), n: 2}, Options{Config: cfg, OutDir: dirB, Logger: quiet}); !errors.Is(err, ErrInterrupted) {
				t.Fatalf("cancelled warm-up returned %v, want ErrInterrupted", err)
			}
			half := cfg
			half.Iterations = 5
			if _, err := Run(context.Background(), Options{Config: half, OutDir: dirB, Resume: true, Logger: quiet}); err != nil {
				t.Fatal(err)
			}
			// checks: iteration 5 start, its step 1, iteration 6 start, its step 1 ← cancelled
			if _, err := Run(&cancelAt{Context: context.Background(), n: 4}, Options{Config: cfg, OutDir: dirB, Resume: true, Logger: quiet}); !errors.Is(err, ErrInterrupted) {
				t.Fatalf("cancelled iteration returned %v, want ErrInterrupted", err)
			}
			if it := ckptIteration(t, dirB); it != "6" {
				t.Fatalf("checkpoint at iteration %s, want 6", it)
			}
			sumB, err := Run(context.Background(), Options{Config: cfg, OutDir: dirB, Resume: true, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if sumB.Resamplings != sumA.Resamplings {
				t.Errorf("%d resamplings resumed, %d uninterrupted", sumB.Resamplings, sumA.Resamplings)
			}
			names := []string{"walkers", "energies", "grads", "log_weights", "param/w0", "param/w2", "monitor/walkers", "monitor/log_weights", "opt/m/0", "opt/v/2", "rng"}
			a, _ := models.ReadContainer(filepath.Join(dirA, CheckpointDir, LatestCkpt))
			b, _ := models.ReadContainer(filepath.Join(dirB, CheckpointDir, LatestCkpt))
			for _, n := range names {
				x, _ := a.Bytes(n)
				y, _ := b.Bytes(n)
				if len(x) == 0 || !bytes.Equal(x, y) {
					t.Errorf("section %s differs between the uninterrupted and the resumed run", n)
				}
			}
		})
	}
}
