package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jarzyn/jarzyn/models"
)

// tinyConfig is a small 2-D mixture run: a few iterations, a metrics row
// every iteration, no plots.
func tinyConfig(m Method) Config {
	c := gmmTestConfig()
	c.Method = m
	c.Data.N, c.Walkers.N = 200, 100
	c.Iterations = 8
	c.Optimizer.Frozen = nil
	c.Log.Every, c.Log.EvalEvery, c.Log.CheckpointEvery, c.Log.Grid = 1, 1000, 1000, 20
	return c
}

// runTrainer runs cfg's iterations on a fresh trainer, calling onRow (if not
// nil) at every metrics row with the trainer and the iteration, and returns
// the trainer with its initial parameters.
func runTrainer(t *testing.T, cfg Config, onRow func(tr *trainer[float64], k int)) (tr *trainer[float64], theta0 [][]float64) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tr, err := newTrainer[float64](cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.initFresh(); err != nil {
		t.Fatal(err)
	}
	for _, d := range tr.ps.data {
		theta0 = append(theta0, append([]float64(nil), d...))
	}
	h := Hooks{Checkpoint: func(int) error { return nil }}
	if onRow != nil {
		h.Row = func(r row, _ int) { onRow(tr, r.Iter) }
	}
	if err := tr.run(context.Background(), h, time.Now()); err != nil {
		t.Fatal(err)
	}
	return tr, theta0
}

// walkersAreData reports whether every walker sits exactly on a data point.
func walkersAreData(tr *trainer[float64]) bool {
	d := tr.cfg.Model.Dim
	set := map[[2]float64]bool{}
	for j := 0; j < tr.cfg.Data.N; j++ {
		set[[2]float64{tr.dataT[j*d], tr.dataT[j*d+1]}] = true
	}
	for i := 0; i < tr.pop.N(); i++ {
		if !set[[2]float64{tr.pop.X[i*d], tr.pop.X[i*d+1]}] {
			return false
		}
	}
	return true
}

// PCD starts its walkers on data and keeps them (and their uniform weights)
// for the whole run; CD puts them back on data every cd.reset_every
// iterations; jarzynski, the contrast, starts from the model and weights its
// walkers. At every iteration the cached energies belong to the positions
// and, without weights, the gradient's walker coefficients are 1/N.
func TestMethodsWalkersAndWeights(t *testing.T) {
	for _, tc := range []struct {
		method   Method
		fromData func(k int) bool // walkers sit on data at the start of iteration k
		weighted bool
	}{
		{PCD, func(k int) bool { return k == 0 }, false},
		{CD, func(k int) bool { return k%3 == 0 }, false},
		{Jarzynski, func(int) bool { return false }, true},
	} {
		t.Run(string(tc.method), func(t *testing.T) {
			cfg := tinyConfig(tc.method)
			cfg.CD.ResetEvery = 3
			cfg.Resample.Threshold = 1 // resamples at once if anything is weighted
			if tc.weighted {
				cfg.Resample.Threshold = 0 // let the weights accumulate
			}
			rows := 0
			ref := make([]float64, 2)
			tr, _ := runTrainer(t, cfg, func(tr *trainer[float64], k int) {
				rows++
				if got, want := walkersAreData(tr), tc.fromData(k); got != want {
					t.Errorf("iteration %d: walkers on data points: %v, want %v", k, got, want)
				}
				q := tr.ps.params()
				for i := 0; i < tr.pop.N(); i++ {
					if u := q.Energy(tr.pop.X[2*i:2*i+2], ref); math.Abs(u-tr.pop.U[i]) > 1e-9*math.Max(1, math.Abs(u)) {
						t.Fatalf("iteration %d: walker %d has cached energy %v, its position %v", k, i, tr.pop.U[i], u)
					}
				}
				uniform := true
				for i := range tr.pop.A {
					// negP holds −(the walker coefficients of this iteration's gradient)
					if tr.pop.A[i] != 0 || math.Abs(tr.negP[i]+1/float64(tr.pop.N())) > 1e-15 {
						uniform = false
					}
				}
				if wantUniform := !tc.weighted || k == 0; uniform != wantUniform {
					t.Errorf("iteration %d: log-weights all 0 and gradient coefficients 1/N: %v, want %v", k, uniform, wantUniform)
				}
			})
			if rows != cfg.Iterations {
				t.Fatalf("%d metrics rows, want %d", rows, cfg.Iterations)
			}
			if ess := tr.pop.ESS(); !tc.weighted && (ess != 1 || tr.pop.Resamplings != 0) {
				t.Fatalf("after the run: ESS %v, %d resamplings; want 1 and 0", ess, tr.pop.Resamplings)
			}
		})
	}
}

// PCD and CD complete a run through the public entry point: the summary
// reports the method, every iteration, ESS 1, no resampling (even with
// threshold 1) and no log Ẑ; the final checkpoint's log-weights are all 0.
func TestPCDAndCDRuns(t *testing.T) {
	for _, m := range []Method{PCD, CD} {
		t.Run(string(m), func(t *testing.T) {
			cfg := tinyConfig(m)
			cfg.Resample.Threshold = 1
			dir := t.TempDir()
			sum, err := Run(context.Background(), Options{Config: cfg, OutDir: dir, Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			if sum.Method != m || sum.Iterations != cfg.Iterations || sum.ESS != 1 || sum.Resamplings != 0 || sum.LogZEstimate != nil || sum.CEEstimate != nil {
				t.Fatalf("summary: method %s, %d iterations, ESS %v, %d resamplings, log Ẑ %v, CE %v",
					sum.Method, sum.Iterations, sum.ESS, sum.Resamplings, sum.LogZEstimate, sum.CEEstimate)
			}
			a := readFloats(t, filepath.Join(dir, CheckpointDir, LatestCkpt), "log_weights")["log_weights"]
			if len(a) != cfg.Walkers.N {
				t.Fatalf("%d log-weights, want %d", len(a), cfg.Walkers.N)
			}
			for i, v := range a {
				if v != 0 {
					t.Fatalf("log_weights[%d] = %v, want 0", i, v)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, models.WeightsFile)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// One iteration of the real trainer moves θ by the documented update of its
// own gradient g at θ0: sgd θ0 − lr·g; adam's first, bias-corrected step
// θ0 − lr·g/(|g| + ε); clip_norm first scales g by clip/‖g‖ (over the
// entries that may move) when ‖g‖ is larger; cd.lr_multiplier scales every
// rate under method cd and nothing under pcd; frozen entries stay.
func TestOneIterationUpdate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method Method
		kind   string
		mult   float64
		clip   float64
		frozen []string
	}{
		{"sgd", Jarzynski, "sgd", 1, 0, nil},
		{"adam", Jarzynski, "adam", 1, 0, nil},
		{"sgd clipped", Jarzynski, "sgd", 1, 1e-3, nil},
		{"sgd clip above norm", Jarzynski, "sgd", 1, 1e6, nil},
		{"adam clipped", Jarzynski, "adam", 1, 1e-3, nil},
		{"sgd clipped frozen", Jarzynski, "sgd", 1, 1e-3, []string{"log_mass[0]"}},
		{"cd lr_multiplier", CD, "sgd", 2.5, 0, nil},
		{"cd lr_multiplier adam", CD, "adam", 2.5, 0, nil},
		{"pcd ignores lr_multiplier", PCD, "sgd", 2.5, 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyConfig(tc.method)
			cfg.Iterations = 1
			cfg.Optimizer.Kind, cfg.Optimizer.ClipNorm, cfg.Optimizer.Frozen = tc.kind, tc.clip, tc.frozen
			cfg.CD.LRMultiplier = tc.mult
			tr, theta0 := runTrainer(t, cfg, nil)
			frozen := map[[2]int]bool{}
			if tc.frozen != nil {
				frozen[[2]int{1, 0}] = true // log_mass[0]
			}
			norm := 0.0
			for k, g := range tr.grads {
				for i, v := range g {
					if !frozen[[2]int{k, i}] {
						norm += v * v
					}
				}
			}
			norm = math.Sqrt(norm)
			if norm == 0 || math.Abs(tr.lastGradNorm-norm) > 1e-12*norm {
				t.Fatalf("gradient norm %v, trainer reports %v", norm, tr.lastGradNorm)
			}
			scale := 1.0
			if tc.clip > 0 && norm > tc.clip {
				scale = tc.clip / norm
			}
			if tc.clip > 0 && tc.clip < 1 && scale == 1 {
				t.Fatalf("gradient norm %v is below the clip %v: the case checks nothing", norm, tc.clip)
			}
			clipped := 0.0 // ‖(θ0 − θ1)/lr‖ for sgd: the norm of the applied gradient
			for k, s := range tr.ps.shapes {
				lr := cfg.Optimizer.LR
				if v, ok := cfg.Optimizer.GroupLR[s.Name]; ok {
					lr = v
				}
				if tc.method == CD {
					lr *= tc.mult
				}
				for i, th := range tr.ps.data[k] {
					g := tr.grads[k][i] * scale
					want := theta0[k][i] - lr*g
					if tc.kind == "adam" {
						want = theta0[k][i] - lr*g/(math.Abs(g)+cfg.Optimizer.Eps)
					}
					if frozen[[2]int{k, i}] {
						want = theta0[k][i]
					} else if tc.kind == "sgd" {
						clipped += math.Pow((theta0[k][i]-th)/lr, 2)
					}
					if math.Abs(th-want) > 1e-12*math.Max(1, math.Abs(want)) {
						t.Fatalf("%s[%d]: θ0 = %v, g = %v, θ1 = %v, want %v", s.Name, i, theta0[k][i], tr.grads[k][i], th, want)
					}
				}
			}
			if tc.kind == "sgd" {
				if want := norm * scale; math.Abs(math.Sqrt(clipped)-want) > 1e-9*want {
					t.Fatalf("applied gradient norm %v, want %v", math.Sqrt(clipped), want)
				}
			}
		})
	}
}

// adamRef is a plain float64 Adam (Kingma & Ba, Algorithm 1) on one vector.
type adamRef struct {
	b1, b2, eps float64
	m, v        []float64
	t           int
}

func (a *adamRef) step(theta, g []float64, lr float64) {
	if a.m == nil {
		a.m, a.v = make([]float64, len(g)), make([]float64, len(g))
	}
	a.t++
	for i := range g {
		a.m[i] = a.b1*a.m[i] + (1-a.b1)*g[i]
		a.v[i] = a.b2*a.v[i] + (1-a.b2)*g[i]*g[i]
		mh := a.m[i] / (1 - math.Pow(a.b1, float64(a.t)))
		vh := a.v[i] / (1 - math.Pow(a.b2, float64(a.t)))
		theta[i] -= lr * mh / (math.Sqrt(vh) + a.eps)
	}
}

// The optimizer against a float64 reference over several steps with a
// changing schedule factor and per-group rates: sgd and adam, in both
// dtypes; the first adam step is also checked by hand.
func TestOptimizerSteps(t *testing.T) {
	spec := models.Spec{Family: models.GMM, Dim: 2, Modes: 2}
	grads := [][][]float64{ // per step, per tensor (means 2×2, log_mass 2)
		{{0.5, -1, 2, 1e-3}, {0.25, -4}},
		{{-1, -1, 0.5, 3}, {0, 2}},
		{{0.1, 0.2, -0.3, 0.4}, {-1, 1}},
	}
	factors := []float64{1, 0.5, 0.25}
	theta0 := [][]float64{{1, -2, 0.5, 0}, {0.3, -0.3}}
	c := DefaultConfig().Optimizer
	c.LR, c.GroupLR, c.Beta1, c.Beta2, c.Eps = 0.1, map[string]float64{"log_mass": 0.02}, 0.8, 0.99, 1e-6
	lrs := []float64{0.1, 0.02}
	for _, kind := range []string{"sgd", "adam"} {
		c.Kind = kind
		// reference
		want := [][]float64{append([]float64(nil), theta0[0]...), append([]float64(nil), theta0[1]...)}
		refs := []*adamRef{{b1: 0.8, b2: 0.99, eps: 1e-6}, {b1: 0.8, b2: 0.99, eps: 1e-6}}
		for s, g := range grads {
			for k := range g {
				if kind == "adam" {
					refs[k].step(want[k], g[k], lrs[k]*factors[s])
					continue
				}
				for i := range g[k] {
					want[k][i] -= lrs[k] * factors[s] * g[k][i]
				}
			}
		}
		t.Run(kind+"/float64", func(t *testing.T) { checkOptimizer[float64](t, c, spec, theta0, grads, factors, want, 1e-13) })
		t.Run(kind+"/float32", func(t *testing.T) { checkOptimizer[float32](t, c, spec, theta0, grads, factors, want, 1e-6) })
	}
	// by hand: the first bias-corrected Adam step is lr·g/(|g| + ε), whatever β
	c.Kind = "adam"
	o, err := newOptimizer[float64](c, spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	p := [][]float64{{0, 0, 0, 0}, {0, 0}}
	o.step(p, [][]float64{{0.5, -1, 2, 1e-6}, {0, 0}}, 1)
	for i, want := range []float64{-0.1 * 0.5 / (0.5 + 1e-6), 0.1 / (1 + 1e-6), -0.2 / (2 + 1e-6), -0.1 * 1e-6 / (2e-6)} {
		if math.Abs(p[0][i]-want) > 1e-15 {
			t.Errorf("first adam step, means[%d]: %v, want %v", i, p[0][i], want)
		}
	}
}

func checkOptimizer[T Float](t *testing.T, c OptimizerConfig, spec models.Spec, theta0 [][]float64, grads [][][]float64, factors []float64, want [][]float64, tol float64) {
	o, err := newOptimizer[T](c, spec, 1)
	if err != nil {
		t.Fatal(err)
	}
	params := make([][]T, len(theta0))
	for k := range theta0 {
		for _, v := range theta0[k] {
			params[k] = append(params[k], T(v))
		}
	}
	for s, g := range grads {
		gt := make([][]T, len(g))
		for k := range g {
			for _, v := range g[k] {
				gt[k] = append(gt[k], T(v))
			}
		}
		o.step(params, gt, factors[s])
	}
	for k := range want {
		for i, w := range want[k] {
			if got := float64(params[k][i]); math.Abs(got-w) > tol*math.Max(1, math.Abs(w)) {
				t.Errorf("tensor %d entry %d after %d steps: %v, want %v", k, i, len(grads), got, w)
			}
		}
	}
}

// clip_norm on the optimizer alone: a gradient whose norm (over the entries
// that may move) is above the clip is applied with norm exactly clip_norm;
// one at or below it is applied unchanged; the norm before clipping is
// returned.
func TestClipNorm(t *testing.T) {
	spec := models.Spec{Family: models.GMM, Dim: 2, Modes: 2}
	for _, tc := range []struct {
		name    string
		clip    float64
		frozen  []string
		g       [][]float64
		norm    float64 // returned
		applied float64 // norm of the applied gradient
	}{
		{"above", 1, nil, [][]float64{{3, 0, 0, 0}, {0, 4}}, 5, 1},
		{"below", 10, nil, [][]float64{{3, 0, 0, 0}, {0, 4}}, 5, 5},
		{"equal", 5, nil, [][]float64{{3, 0, 0, 0}, {0, 4}}, 5, 5},
		{"off", 0, nil, [][]float64{{3, 0, 0, 0}, {0, 4}}, 5, 5},
		{"frozen entry not counted", 4, []string{"log_mass[1]"}, [][]float64{{3, 0, 0, 0}, {0, 100}}, 3, 3},
		{"frozen entry not counted, above", 1, []string{"log_mass[1]"}, [][]float64{{3, 0, 0, 0}, {0, 100}}, 3, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig().Optimizer
			c.Kind, c.LR, c.ClipNorm, c.Frozen = "sgd", 1, tc.clip, tc.frozen
			o, err := newOptimizer[float64](c, spec, 1)
			if err != nil {
				t.Fatal(err)
			}
			p := [][]float64{make([]float64, 4), make([]float64, 2)}
			if n := o.step(p, tc.g, 1); math.Abs(n-tc.norm) > 1e-12 {
				t.Fatalf("returned norm %v, want %v", n, tc.norm)
			}
			s := 0.0
			for k := range p {
				for i, v := range p[k] {
					s += v * v
					// the step is along −g
					if want := -tc.g[k][i] * tc.applied / tc.norm; tc.frozen == nil || k == 0 {
						if math.Abs(v-want) > 1e-12 {
							t.Fatalf("entry %d,%d moved to %v, want %v", k, i, v, want)
						}
					} else if k == 1 && i == 1 && v != 0 {
						t.Fatalf("frozen entry moved to %v", v)
					}
				}
			}
			if math.Abs(math.Sqrt(s)-tc.applied) > 1e-12 {
				t.Fatalf("applied gradient norm %v, want %v", math.Sqrt(s), tc.applied)
			}
		})
	}
}

// optimizer.frozen over a whole run: a frozen tensor and a frozen entry keep
// their initial values bit for bit while the rest of the parameters move.
func TestFrozenNeverMove(t *testing.T) {
	for _, tc := range []struct {
		name     string
		spec     models.Spec
		frozen   []string
		isFrozen func(name string, i int) bool
	}{
		{"gmm", models.Spec{Family: models.GMM, Dim: 2, Modes: 3, BaseStd: 1}, []string{"means", "log_mass[0]"},
			func(n string, i int) bool { return n == "means" || (n == "log_mass" && i == 0) }},
		{"mlp", models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{4, 4}, Activation: models.SiLU, BaseStd: 3}, []string{"w0", "b1[2]"},
			func(n string, i int) bool { return n == "w0" || (n == "b1" && i == 2) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyConfig(Jarzynski)
			cfg.Model.Spec = tc.spec
			cfg.Model.MeanOverrides = nil
			cfg.Optimizer = DefaultConfig().Optimizer
			cfg.Optimizer.LR = 0.05
			cfg.Optimizer.Frozen = tc.frozen
			cfg.Iterations = 10
			tr, theta0 := runTrainer(t, cfg, nil)
			for k, s := range tr.ps.shapes {
				for i, v := range tr.ps.data[k] {
					if f := tc.isFrozen(s.Name, i); f && math.Float64bits(v) != math.Float64bits(theta0[k][i]) {
						t.Errorf("frozen %s[%d] moved from %v to %v", s.Name, i, theta0[k][i], v)
					} else if !f && v == theta0[k][i] {
						t.Errorf("%s[%d] never moved from %v", s.Name, i, v)
					}
				}
			}
		})
	}
}

// resample.warmup: with threshold 1 (any weighted population is below it)
// the walkers are never resampled before the warm-up iteration, though their
// weights have degenerated, and are resampled at the end of every iteration
// from iteration warmup − 1 on (so the walkers of iteration warmup are the
// first resampled ones).
func TestResampleWarmup(t *testing.T) {
	for _, warmup := range []int{0, 1, 3, 6} {
		t.Run("warmup="+strconv.Itoa(warmup), func(t *testing.T) {
			cfg := tinyConfig(Jarzynski)
			cfg.Resample.Threshold, cfg.Resample.Warmup = 1, warmup
			cfg.Iterations = 9
			first := max(warmup, 1) // the first iteration that starts with resampled walkers
			tr, _ := runTrainer(t, cfg, func(tr *trainer[float64], k int) {
				want := max(0, k-first+1)
				if got := tr.pop.Resamplings; got != want {
					t.Errorf("iteration %d: %d resamplings so far, want %d", k, got, want)
				}
				ess := tr.pop.ESS()
				switch {
				case k > 0 && k < first && !(ess < 1):
					t.Errorf("iteration %d (before warm-up): ESS fraction %v, want < 1", k, ess)
				case k >= first && ess != 1:
					t.Errorf("iteration %d (just resampled): ESS fraction %v, want 1", k, ess)
				}
			})
			if want := cfg.Iterations - first + 1; tr.pop.Resamplings != want {
				t.Fatalf("%d resamplings in the run, want %d", tr.pop.Resamplings, want)
			}
		})
	}
}
