package train

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// docs/METHOD.md §7.3: the gorgonia gradient of L = mean U(data) − Σ w_i U(X_i) with
// respect to every parameter, against central differences of the float64
// reference energy.
func TestParamGradFiniteDifference(t *testing.T) {
	for _, tc := range testSpecs {
		t.Run(tc.name, func(t *testing.T) {
			p := testParams(t, tc.spec, 5)
			const n, b = 9, 6
			d := tc.spec.Dim
			ps := newParamSet[float64](p)
			pg, err := newParamGrad[float64](ps, b)
			if err != nil {
				t.Fatal(err)
			}
			we, err := newWalkerEval[float64](ps, n, true)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(2, 2))
			for i := range we.X {
				we.X[i] = 1.5 * rng.NormFloat64()
			}
			for i := range pg.Data {
				pg.Data[i] = 1.5 * rng.NormFloat64()
			}
			weights := make([]float64, n)
			for i := range weights {
				weights[i] = rng.Float64() / n
			}
			// the training path: the data-term graph, plus the walker term
			// from the walker graph's caches
			grads := make([][]float64, len(ps.data))
			for k := range grads {
				grads[k] = make([]float64, len(ps.data[k]))
			}
			meanU, err := pg.run(grads)
			if err != nil {
				t.Fatal(err)
			}
			if err := we.run(make([]float64, n), make([]float64, n*d)); err != nil {
				t.Fatal(err)
			}
			c := make([]float64, n)
			for i := range c {
				c[i] = -weights[i]
			}
			we.weightedParamGrad(c, grads)
			loss := func(q *models.Params) (l, mu float64) {
				for i := 0; i < b; i++ {
					mu += q.Energy(pg.Data[i*d:(i+1)*d], nil) / b
				}
				l = mu
				for i := 0; i < n; i++ {
					l -= weights[i] * q.Energy(we.X[i*d:(i+1)*d], nil)
				}
				return l, mu
			}
			if _, mu := loss(p); math.Abs(mu-meanU) > 1e-10*math.Max(1, math.Abs(mu)) {
				t.Fatalf("mean data energy %v, reference %v", meanU, mu)
			}
			for k, tensor := range p.Tensors {
				for i := range tensor.Data {
					const eps = 1e-6
					old := tensor.Data[i]
					tensor.Data[i] = old + eps
					up, _ := loss(p)
					tensor.Data[i] = old - eps
					dn, _ := loss(p)
					tensor.Data[i] = old
					fd := (up - dn) / (2 * eps)
					if math.Abs(fd-grads[k][i]) > 1e-6*math.Max(1, math.Abs(fd)) {
						t.Fatalf("∂L/∂%s[%d] = %v, finite difference %v", tensor.Name, i, grads[k][i], fd)
					}
				}
			}
		})
	}
}

// In-place writes to the walker buffer are seen by the next evaluation.
func TestWalkerEvalReusesBuffers(t *testing.T) {
	p := testParams(t, testSpecs[2].spec, 1)
	ps := newParamSet[float64](p)
	e, err := newWalkerEval[float64](ps, 4, false)
	if err != nil {
		t.Fatal(err)
	}
	d := p.Spec.Dim
	u, g := make([]float64, 4), make([]float64, 4*d)
	ref := make([]float64, d)
	for round := 0; round < 3; round++ {
		for i := range e.X {
			e.X[i] = float64(round) + 0.1*float64(i)
		}
		ps.data[0][0] += 0.3 // a parameter change in place is seen too
		if err := e.run(u, g); err != nil {
			t.Fatal(err)
		}
		q := ps.params()
		for i := 0; i < 4; i++ {
			if want := q.Energy(e.X[i*d:(i+1)*d], ref); math.Abs(u[i]-want) > 1e-12 {
				t.Fatalf("round %d walker %d: U = %v, want %v", round, i, u[i], want)
			}
		}
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func gmmTestConfig() Config {
	c := DefaultConfig()
	c.Model.Spec = models.Spec{Family: models.GMM, Dim: 2, Modes: 2, BaseStd: 1}
	c.Model.MeanScale = 0.01
	c.Model.MeanOverrides = [][]float64{{0, 0, -0.1}, {1, 0, 0.1}}
	c.Data.Teacher.Means = [][]float64{{-3}, {3}}
	c.Data.Teacher.Masses = []float64{0.25, 0.75}
	c.Data.N = 2000
	c.Walkers.N = 2000
	c.Walkers.StepSize = 0.1
	c.Optimizer.Kind = "sgd"
	c.Optimizer.LR = 0.01
	c.Optimizer.GroupLR = map[string]float64{"log_mass": 0.05}
	c.Optimizer.Frozen = []string{"log_mass[0]"}
	c.Log.Plots = false
	return c
}

// docs/METHOD.md §7.4: resampling degenerate weights keeps
// log Ẑ, moves it into LogZRef and zeroes the log-weights, and every
// per-walker array travels with its walker: positions, cached energies and
// gradients, and the walker graph's per-layer caches (which the next
// parameter gradient reads). Each case is a fresh population with its own
// non-uniform weights and random parameters (an MLP's initial last layer is
// zero, which would leave its layer caches zero).
func TestResampleBookkeeping(t *testing.T) {
	mlp := models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{6, 5}, Activation: models.SiLU, BaseStd: 3}
	gmm := gmmTestConfig().Model.Spec
	for _, tc := range []struct {
		scheme string
		spec   models.Spec
	}{
		{"systematic", gmm}, {"multinomial", gmm}, {"systematic", mlp}, {"multinomial", mlp},
	} {
		t.Run(tc.scheme+"/"+string(tc.spec.Family), func(t *testing.T) {
			cfg := gmmTestConfig()
			cfg.Walkers.N = 300
			cfg.Model.Spec, cfg.Model.MeanOverrides, cfg.Optimizer.Frozen = tc.spec, nil, nil
			tr, err := newTrainer[float64](cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.initFresh(); err != nil {
				t.Fatal(err)
			}
			tr.ps.set(testParams(t, tc.spec, 3))
			pop := tr.pop
			if err := pop.evaluate(); err != nil {
				t.Fatal(err)
			}
			n, d := pop.N(), pop.Dim()
			rng := rand.New(rand.NewPCG(4, 4))
			for i := range pop.A {
				pop.A[i] = 2 * rng.NormFloat64()
			}
			if ess := pop.ESS(); ess > 0.5 {
				t.Fatalf("ESS fraction %v: the weights should be degenerate", ess)
			}
			p := append([]float64(nil), pop.Weights()...)
			x0, u0, g0 := append([]float64(nil), pop.X...), append([]float64(nil), pop.U...), append([]float64(nil), pop.G...)
			row := map[[2]float64]int{}
			for i := 0; i < n; i++ {
				row[[2]float64{x0[i*d], x0[i*d+1]}] = i
			}
			before := pop.LogZ()

			pop.Resample(smc.Scheme(tc.scheme), rng)

			if after := pop.LogZ(); math.Abs(after-before) > 1e-12*math.Max(1, math.Abs(before)) || pop.LogZRef != before {
				t.Fatalf("log Ẑ %v before, %v after (LogZRef %v)", before, after, pop.LogZRef)
			}
			for i, a := range pop.A {
				if a != 0 {
					t.Fatalf("log-weight %d is %v after resampling", i, a)
				}
			}
			if pop.Resamplings != 1 {
				t.Fatalf("%d resamplings counted, want 1", pop.Resamplings)
			}
			// each walker is a copy of an ancestor, with the ancestor's caches
			copies := make([]int, n)
			for i := 0; i < n; i++ {
				a, ok := row[[2]float64{pop.X[i*d], pop.X[i*d+1]}]
				if !ok {
					t.Fatalf("walker %d at %v is no walker of before the resampling", i, pop.X[i*d:i*d+d])
				}
				copies[a]++
				if pop.U[i] != u0[a] {
					t.Fatalf("walker %d (ancestor %d): cached energy %v, the ancestor's %v", i, a, pop.U[i], u0[a])
				}
				for k := 0; k < d; k++ {
					if pop.G[i*d+k] != g0[a*d+k] {
						t.Fatalf("walker %d (ancestor %d): cached gradient %v, the ancestor's %v", i, a, pop.G[i*d:i*d+d], g0[a*d:a*d+d])
					}
				}
			}
			distinct := 0
			for j, c := range copies {
				if c > 0 {
					distinct++
				}
				// systematic resampling gives walker j ⌊N·p_j⌋ or ⌈N·p_j⌉ copies
				if np := float64(n) * p[j]; tc.scheme == "systematic" && (float64(c) < math.Floor(np-1e-9) || float64(c) > math.Ceil(np+1e-9)) {
					t.Fatalf("walker %d with N·p = %v has %d copies", j, np, c)
				}
			}
			if distinct > n/2 {
				t.Fatalf("%d distinct ancestors of %d walkers: the degenerate weights were not resampled", distinct, n)
			}
			// the layer caches moved too: the walker part of the parameter
			// gradient from them equals one from a fresh evaluation at the
			// resampled positions, as do the energies and gradients
			c := make([]float64, n)
			for i := range c {
				c[i] = rng.NormFloat64()
			}
			zeros := func() [][]float64 {
				z := make([][]float64, len(tr.ps.data))
				for k := range z {
					z[k] = make([]float64, len(tr.ps.data[k]))
				}
				return z
			}
			cached, fresh := zeros(), zeros()
			pop.eval.weightedParamGrad(c, cached)
			u, g := append([]float64(nil), pop.U...), append([]float64(nil), pop.G...)
			if err := pop.evaluate(); err != nil {
				t.Fatal(err)
			}
			pop.eval.weightedParamGrad(c, fresh)
			for k := range fresh {
				for i := range fresh[k] {
					if math.Abs(cached[k][i]-fresh[k][i]) > 1e-10*math.Max(1, math.Abs(fresh[k][i])) {
						t.Fatalf("parameter gradient %s[%d] from the resampled caches %v, from a fresh evaluation %v",
							tr.ps.shapes[k].Name, i, cached[k][i], fresh[k][i])
					}
				}
			}
			for i := range u {
				if math.Abs(u[i]-pop.U[i]) > 1e-12*math.Max(1, math.Abs(u[i])) {
					t.Fatalf("cached energy of walker %d is %v, its position has %v", i, u[i], pop.U[i])
				}
			}
			for i := range g {
				if math.Abs(g[i]-pop.G[i]) > 1e-12*math.Max(1, math.Abs(g[i])) {
					t.Fatalf("cached gradient entry %d is %v, its position has %v", i, g[i], pop.G[i])
				}
			}
		})
	}
}

func readFloats(t *testing.T, path string, names ...string) map[string][]float64 {
	t.Helper()
	c, err := models.ReadContainer(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for _, n := range names {
		v, err := c.Floats(n)
		if err != nil {
			t.Fatal(err)
		}
		out[n] = v
	}
	return out
}

// A run stopped and resumed equals an uninterrupted one bit for bit, for both
// dtypes, and a cancelled context checkpoints and reports ErrInterrupted.
func TestResumeBitForBit(t *testing.T) {
	for _, dtype := range []string{"float64", "float32"} {
		t.Run(dtype, func(t *testing.T) {
			cfg := gmmTestConfig()
			cfg.Dtype = dtype
			cfg.Model.Spec = models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{8, 8}, Activation: models.SiLU, BaseStd: 3}
			cfg.Optimizer = DefaultConfig().Optimizer
			cfg.Walkers.N, cfg.Walkers.Monitor, cfg.Data.Batch = 256, 64, 128
			cfg.Resample.Threshold = 0.999 // resample often, to cover it
			cfg.Optimizer.LR = 0.03
			cfg.Iterations = 40
			cfg.Log.Every, cfg.Log.EvalEvery, cfg.Log.Grid = 5, 4, 40
			dirA, dirB := t.TempDir(), t.TempDir()
			if _, err := Run(context.Background(), Options{Config: cfg, OutDir: dirA, Logger: quiet}); err != nil {
				t.Fatal(err)
			}
			// interrupted before it starts: checkpoint at 0, resumable
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := Run(ctx, Options{Config: cfg, OutDir: dirB, Logger: quiet}); !errors.Is(err, ErrInterrupted) {
				t.Fatalf("cancelled run returned %v, want ErrInterrupted", err)
			}
			half := cfg
			half.Iterations = 17
			if _, err := Run(context.Background(), Options{Config: half, OutDir: dirB, Resume: true, Logger: quiet}); err != nil {
				t.Fatal(err)
			}
			sum, err := Run(context.Background(), Options{Config: cfg, OutDir: dirB, Resume: true, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Iterations != 40 || sum.Resamplings == 0 {
				t.Fatalf("resumed run: %d iterations, %d resamplings", sum.Iterations, sum.Resamplings)
			}
			names := []string{"walkers", "energies", "grads", "log_weights", "param/w0", "param/w2", "monitor/walkers", "monitor/log_weights", "opt/m/0"}
			a := readFloats(t, filepath.Join(dirA, CheckpointDir, LatestCkpt), names...)
			b := readFloats(t, filepath.Join(dirB, CheckpointDir, LatestCkpt), names...)
			for _, n := range names {
				for i := range a[n] {
					if math.Float64bits(a[n][i]) != math.Float64bits(b[n][i]) {
						t.Fatalf("%s[%d]: uninterrupted %v, resumed %v", n, i, a[n][i], b[n][i])
					}
				}
			}
			ma, _ := os.ReadFile(filepath.Join(dirA, MetricsFile))
			mb, _ := os.ReadFile(filepath.Join(dirB, MetricsFile))
			if la, lb := strings.Count(string(ma), "\n"), strings.Count(string(mb), "\n"); la != lb {
				t.Fatalf("metrics.csv has %d lines uninterrupted, %d resumed", la, lb)
			}
		})
	}
}

// A short mixture run moves the model's mode masses toward the teacher's.
func TestShortMixtureRunLearnsMasses(t *testing.T) {
	cfg := gmmTestConfig()
	cfg.Iterations = 400
	cfg.Log.Every = 50
	sum, err := Run(context.Background(), Options{Config: cfg, OutDir: t.TempDir(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("masses %v, exact KL %v, estimated KL %v, resamplings %d", sum.ModeMasses, *sum.ExactKL, *sum.EstimatedKL, sum.Resamplings)
	if m := sum.ModeMasses[0]; m > 0.4 || m < 0.1 {
		t.Fatalf("mass of the light mode is %v after 400 iterations; want it to move from 0.5 toward 0.25", m)
	}
	if *sum.ExactKL > 0.2 {
		t.Fatalf("exact KL %v is still large", *sum.ExactKL)
	}
	if d := math.Abs(*sum.ExactKL - *sum.EstimatedKL); d > 0.1 {
		t.Fatalf("estimated KL %v vs exact %v", *sum.EstimatedKL, *sum.ExactKL)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "name: x\nwalkers:\n  n: 64\n")
	tests := []struct {
		name  string
		file  string
		sets  []string
		wants []string
	}{
		{"unknown key", write("unknown.yaml", "walkers:\n  nn: 5\n"), nil, []string{`"walkers.nn"`, "unknown.yaml"}},
		{"unknown top key", write("top.yaml", "iterationz: 5\n"), nil, []string{`"iterationz"`, "top.yaml"}},
		{"bad value", write("bad.yaml", "walkers:\n  n: -3\n"), nil, []string{"walkers.n", "bad.yaml"}},
		{"bad type", write("type.yaml", "walkers:\n  n: lots\n"), nil, []string{"walkers.n", "type.yaml"}},
		{"bad method", good, []string{"method=magic"}, []string{"method", "good.yaml"}},
		{"unknown set key", good, []string{"walkers.m=3"}, []string{`"walkers.m"`}},
		{"malformed set", good, []string{"walkers.n"}, []string{"key=value"}},
		{"missing file", filepath.Join(dir, "nope.yaml"), nil, []string{"nope.yaml"}},
		{"not yaml", write("broken.yaml", "walkers: [1, 2\n"), nil, []string{"broken.yaml"}},
		{"jarzynski from data", good, []string{"walkers.init=data"}, []string{"walkers.init"}},
		{"frozen unknown", good, []string{"optimizer.frozen=[zz]"}, []string{"optimizer.frozen"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(tc.file, tc.sets)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	t.Setenv("JARZYN_WALKERS_N", "123")
	c, err := LoadConfig(good, []string{"seed=7", "method=pcd", "model.hidden=[4, 5]"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Walkers.N != 123 || c.Seed != 7 || c.Method != PCD || len(c.Model.Hidden) != 2 || c.Name != "x" {
		t.Fatalf("overrides not applied: %+v", c)
	}
	c, err = LoadConfig(good, []string{"walkers.n=99"})
	if err != nil || c.Walkers.N != 99 {
		t.Fatalf("--set should beat the environment: %v %v", c.Walkers.N, err)
	}
}

// Every shipped config loads, with each method and a seed override.
func TestShippedConfigsLoad(t *testing.T) {
	files, _ := filepath.Glob("../configs/*.yaml")
	if len(files) == 0 {
		t.Fatal("no configs found")
	}
	for _, f := range files {
		for _, m := range []string{"jarzynski", "pcd", "cd"} {
			if _, err := LoadConfig(f, []string{"method=" + m, "seed=3"}); err != nil {
				t.Errorf("%s with method=%s: %v", f, m, err)
			}
		}
	}
}

// A diverging run (ULA step far beyond stability) stops with a clear error
// and leaves a loadable checkpoint of the last good state.
func TestNonFiniteStopsWithCheckpoint(t *testing.T) {
	for _, steps := range []int{1, 3} {
		cfg := gmmTestConfig()
		cfg.Walkers.N, cfg.Data.N = 200, 200
		cfg.Walkers.StepSize = 60
		cfg.Walkers.ULASteps = steps
		cfg.Resample.Threshold = 0
		cfg.Iterations = 1000
		dir := t.TempDir()
		_, err := Run(context.Background(), Options{Config: cfg, OutDir: dir, Logger: quiet})
		if err == nil || !strings.Contains(err.Error(), "non-finite") {
			t.Fatalf("ula_steps=%d: diverging run returned %v, want a non-finite error", steps, err)
		}
		c, err := models.ReadContainer(filepath.Join(dir, CheckpointDir, LatestCkpt))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"walkers", "energies", "grads", "log_weights"} {
			v, err := c.Floats(name)
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range v {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					t.Fatalf("ula_steps=%d: checkpointed %s[%d] = %v", steps, name, i, x)
				}
			}
		}
		if _, err := c.Params(); err != nil {
			t.Fatalf("checkpointed parameters: %v", err)
		}
	}
}

func TestLinearSchedule(t *testing.T) {
	cfg := gmmTestConfig()
	cfg.Iterations = 101
	cfg.Optimizer.Schedule, cfg.Optimizer.FinalLRFraction = "linear", 0.1
	tr := &trainer[float64]{cfg: cfg}
	for _, c := range []struct {
		k    int
		want float64
	}{{0, 1}, {50, 0.55}, {100, 0.1}} {
		if got := tr.lrFactor(c.k); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("lrFactor(%d) = %v, want %v", c.k, got, c.want)
		}
	}
	cfg.Optimizer.Schedule = "constant"
	tr.cfg = cfg
	if tr.lrFactor(100) != 1 {
		t.Error("constant schedule should not scale")
	}
	if _, err := LoadConfig("", []string{"optimizer.schedule=cosine"}); err == nil || !strings.Contains(err.Error(), "optimizer.schedule") {
		t.Errorf("bad schedule accepted: %v", err)
	}
}

// Arbitrary config files are refused with an error or accepted, never a panic.
func FuzzLoadConfig(f *testing.F) {
	for _, p := range []string{"../configs/gmm2d.yaml", "../configs/gmm50d.yaml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("walkers: {n: -1}\n"))
	f.Add([]byte("model:\n  hidden: [0]\n"))
	f.Add([]byte("optimizer:\n  group_lr: {means: x}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "c.yaml")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(p, nil)
		if err == nil {
			if verr := c.Validate(); verr != nil {
				t.Fatalf("LoadConfig accepted a config that Validate refuses: %v", verr)
			}
		}
	})
}
