package train

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// variantTestConfig is a small 2-D MLP run (base σ0 = 2 over the two-mode
// teacher of gmmTestConfig) with Adam moving θ, no resampling and a metrics
// row (the tests' hook) every iteration.
func variantTestConfig() Config {
	c := gmmTestConfig()
	c.Model.Spec = models.Spec{Family: models.MLP, Dim: 2, Hidden: []int{8, 8}, Activation: models.SiLU, BaseStd: 2}
	c.Optimizer = DefaultConfig().Optimizer
	c.Optimizer.LR = 0.05
	c.Data.N, c.Data.Batch = 200, 0
	c.Walkers.N, c.Walkers.Monitor = 64, 32
	c.Walkers.StepSize = 0.3
	c.Resample.Threshold = 0
	c.Iterations = 5
	c.Log.Every, c.Log.EvalEvery, c.Log.CheckpointEvery, c.Log.Grid = 1, 1000, 1000, 20
	return c
}

// popSnapshot is a population's positions and log-weights, in float64.
type popSnapshot struct{ x, a []float64 }

// stateSnapshot is θ and every population at the start of an iteration.
type stateSnapshot struct {
	p    *models.Params
	pops []popSnapshot
	rng  []byte // the run's stream
}

func snapshotOf(tr *trainer[float64]) stateSnapshot {
	s := stateSnapshot{p: tr.ps.params()}
	s.rng, _ = tr.pcg.MarshalBinary()
	for _, pop := range tr.pops() {
		s.pops = append(s.pops, popSnapshot{slices.Clone(pop.X), slices.Clone(pop.A)})
	}
	return s
}

// refIncrement is docs/METHOD.md §2 step 4 written out from the float64
// reference energies: a walker at x0 under p0 moved to x1 under p1.
func refIncrement(p0, p1 *models.Params, h float64, x0, x1 []float64) float64 {
	g0, g1 := make([]float64, len(x0)), make([]float64, len(x0))
	u0, u1 := p0.Energy(x0, g0), p1.Energy(x1, g1)
	dot, n0, n1 := 0.0, 0.0, 0.0
	for i := range x0 {
		dot += (x1[i] - x0[i]) * (g0[i] + g1[i])
		n0 += g0[i] * g0[i]
		n1 += g1[i] * g1[i]
	}
	return -(u1 - u0) + 0.5*dot - h/4*(n1-n0)
}

// replayMoves recomputes, from the float64 reference energies, what steps
// 3–4 of one iteration do to the gradient population (rows N×d at x under
// θ_k = p0; θ_{k+1} = p1), drawing the same random numbers from the run's
// stream in the state rng had at the iteration's metrics row: the subsets
// (walkers.move; the monitor's drawn after), one key per step and
// population, and each moved walker's noise from the stream (key, its
// chunk among the moved walkers). It returns the positions after the
// iteration and every walker's ΔA: the sum of the fixed-θ increments of
// its first ula_steps − 1 steps and the §2 increment of its last (θ_k →
// θ_{k+1}), or for a walker not moved the work term −[U_θk+1(X) − U_θk(X)].
func replayMoves(cfg Config, p0, p1 *models.Params, x []float64, rngState []byte, nMon int) (xEnd, dA []float64) {
	var pcg rand.PCG
	if err := pcg.UnmarshalBinary(rngState); err != nil {
		panic(err)
	}
	rng := rand.New(&pcg)
	d, h, n := cfg.Model.Dim, cfg.Walkers.StepSize, cfg.Walkers.N
	var rows []int
	if cfg.subsetMoves() {
		perm := make([]int, max(n, nMon))
		rows = make([]int, cfg.Walkers.Move)
		drawSubset(rng, n, len(rows), perm, rows)
		if nMon > 0 {
			drawSubset(rng, nMon, cfg.moverSize(nMon), perm, make([]int, cfg.moverSize(nMon)))
		}
	} else {
		for i := 0; i < n; i++ {
			rows = append(rows, i)
		}
	}
	xEnd, dA = slices.Clone(x), make([]float64, n)
	moved := make([]bool, n)
	for _, r := range rows {
		moved[r] = true
	}
	for i := 0; i < n; i++ {
		if !moved[i] {
			dA[i] = -(p1.Energy(x[i*d:(i+1)*d], nil) - p0.Energy(x[i*d:(i+1)*d], nil))
		}
	}
	noise := smc.NewNoise(len(rows))
	g := make([]float64, d)
	for j := 0; j < cfg.Walkers.ULASteps; j++ {
		key := rng.Uint64()
		if nMon > 0 {
			rng.Uint64() // the monitor's key
		}
		pNext := p0
		if j == cfg.Walkers.ULASteps-1 {
			pNext = p1
		}
		for c := 0; c < smc.Chunks(len(rows)); c++ {
			lo, hi := smc.ChunkWalkerRange(c, len(rows))
			z := noise.Chunk(key, c)
			for _, r := range rows[lo:hi] {
				cur := slices.Clone(xEnd[r*d : (r+1)*d])
				p0.Energy(cur, g)
				next := make([]float64, d)
				for k := range next {
					next[k] = cur[k] - h*g[k] + math.Sqrt(2*h)*z.NormFloat64()
				}
				dA[r] += refIncrement(p0, pNext, h, cur, next)
				copy(xEnd[r*d:(r+1)*d], next)
			}
		}
	}
	return xEnd, dA
}

// walkers.move and walkers.ula_steps against a float64 recomputation
// (replayMoves) over several iterations of Adam: the positions after each
// iteration and every walker's ΔA, moved (fixed-θ increments, then the §2
// increment with the parameter change) or not (the work term alone), and
// exactly walkers.move walkers moved (the monitor the same fraction).
func TestSubsetMoveBookkeeping(t *testing.T) {
	for _, tc := range []struct{ move, steps int }{{20, 1}, {20, 3}, {0, 3}} {
		t.Run(fmt.Sprintf("move=%d,ula_steps=%d", tc.move, tc.steps), func(t *testing.T) {
			cfg := variantTestConfig()
			cfg.Walkers.Move, cfg.Walkers.ULASteps = tc.move, tc.steps
			var states []stateSnapshot
			tr, _ := runTrainer(t, cfg, func(tr *trainer[float64], k int) { states = append(states, snapshotOf(tr)) })
			states = append(states, snapshotOf(tr))
			if len(states) != cfg.Iterations+1 {
				t.Fatalf("%d snapshots, want %d", len(states), cfg.Iterations+1)
			}
			d := cfg.Model.Dim
			for k := 0; k < cfg.Iterations; k++ {
				s0, s1 := states[k], states[k+1]
				last := len(s0.p.Tensors) - 2 // the last layer's weights, zero at θ0
				if slices.Equal(s0.p.Tensors[last].Data, s1.p.Tensors[last].Data) {
					t.Fatalf("iteration %d: θ did not move", k)
				}
				xEnd, dA := replayMoves(cfg, s0.p, s1.p, s0.pops[0].x, s0.rng, cfg.Walkers.Monitor)
				for i := range dA {
					for c := 0; c < d; c++ {
						if got, want := s1.pops[0].x[i*d+c], xEnd[i*d+c]; math.Abs(got-want) > 1e-10*math.Max(1, math.Abs(want)) {
							t.Fatalf("iteration %d, walker %d: position %v, recomputed %v", k, i, got, want)
						}
					}
					if got := s1.pops[0].a[i] - s0.pops[0].a[i]; math.Abs(got-dA[i]) > 1e-9*math.Max(1, math.Abs(dA[i])) {
						t.Fatalf("iteration %d, walker %d: ΔA = %.15g, recomputed %.15g", k, i, got, dA[i])
					}
				}
				for q, want := range []int{cfg.moverSize(cfg.Walkers.N), cfg.moverSize(cfg.Walkers.Monitor)} {
					if tc.move == 0 {
						want = len(s0.pops[q].a)
					}
					moved := 0
					for i := range s0.pops[q].a {
						if !slices.Equal(s0.pops[q].x[i*d:(i+1)*d], s1.pops[q].x[i*d:(i+1)*d]) {
							moved++
						}
					}
					if moved != want {
						t.Fatalf("iteration %d, population %d: %d walkers moved, want %d", k, q, moved, want)
					}
				}
			}
		})
	}
}

// docs/METHOD.md §7.2 through the training loop, with the variants of the
// moves: a one-mode mixture U_k(x) = ½|x − a_k|² + z_k whose parameters
// follow a schedule fixed in advance (set between the gradient and the
// moves; the optimizer freezes everything), so Z_k = 2π·e^{−z_k}. At h =
// 0.5, where ULA's stationary variance is 1/(1 − h/2) = 4/3, the final
// log Ẑ must match log Z_K, and the weighted mean and variance of the
// walkers a_K and 1, with all walkers moved three steps per update, half
// of them one or three steps, and half of them three steps with frequent
// resampling; without resampling the unweighted variance shows the ULA
// bias that the weights remove.
func TestVariantsJarzynskiClosedForm(t *testing.T) {
	for _, tc := range []struct {
		name      string
		move      int
		steps     int
		threshold float64
	}{
		{"all walkers, 3 steps", 0, 3, 0},
		{"half the walkers, 1 step", 2000, 1, 0},
		{"half the walkers, 3 steps", 2000, 3, 0},
		{"half the walkers, 3 steps, resampling", 2000, 3, 0.95},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := gmmTestConfig()
			cfg.Model.Spec = models.Spec{Family: models.GMM, Dim: 2, Modes: 1, BaseStd: 1}
			cfg.Model.MeanOverrides = nil
			cfg.Optimizer.Frozen = []string{"means", "log_mass"}
			cfg.Walkers.N, cfg.Walkers.StepSize = 4000, 0.5
			cfg.Walkers.Move, cfg.Walkers.ULASteps = tc.move, tc.steps
			cfg.Resample.Threshold = tc.threshold
			cfg.Iterations = 30
			cfg.Log.Every, cfg.Log.EvalEvery = 1, 1000
			var a0 []float64
			var z0 float64
			schedule := func(tr *trainer[float64], k int) {
				if k == 0 {
					a0, z0 = slices.Clone(tr.ps.data[0]), tr.ps.data[1][0]
				}
				// θ_{k+1}: the mean moves by (0.05, −0.03) and z by 0.02 per iteration
				tr.ps.data[0][0] = a0[0] + 0.05*float64(k+1)
				tr.ps.data[0][1] = a0[1] - 0.03*float64(k+1)
				tr.ps.data[1][0] = z0 + 0.02*float64(k+1)
			}
			tr, _ := runTrainer(t, cfg, schedule)
			p := tr.ps.params()
			logZ, _ := p.ExactLogZ()
			aK := p.Get("means").Data
			if want := math.Log(2*math.Pi) - (z0 + 0.02*30); math.Abs(logZ-want) > 1e-12 {
				t.Fatalf("final log Z %v, want %v: the schedule did not run", logZ, want)
			}
			w := tr.pop.Weights()
			ess := tr.pop.ESS() * float64(tr.pop.N())
			t.Logf("log Ẑ %.4f, log Z_K %.4f, ESS %.0f, %d resamplings", tr.pop.LogZ(), logZ, ess, tr.pop.Resamplings)
			// the standard error of log Ẑ is about √((N/ESS − 1)/N); each
			// resampling (at ESS/N ≈ 0.95 here) adds about (1/0.95 − 1)/N to
			// its variance
			n := float64(tr.pop.N())
			se := math.Sqrt((n/ess - 1 + float64(tr.pop.Resamplings)*(1/0.95-1)) / n)
			if logZHat, tol := tr.pop.LogZ(), math.Max(0.02, 5*se); math.Abs(logZHat-logZ) > tol {
				t.Errorf("log Ẑ = %.4f, exact log Z_K = %.4f ± %.3f (ESS %.0f, %d resamplings)", logZHat, logZ, tol, ess, tr.pop.Resamplings)
			}
			if tc.threshold > 0 && tr.pop.Resamplings == 0 {
				t.Errorf("no resampling at threshold %v", tc.threshold)
			}
			d := 2
			for c := 0; c < d; c++ {
				mean, uMean := 0.0, 0.0
				for i, wi := range w {
					mean += wi * tr.pop.X[i*d+c]
					uMean += tr.pop.X[i*d+c] / float64(len(w))
				}
				v, uv := 0.0, 0.0
				for i, wi := range w {
					v += wi * (tr.pop.X[i*d+c] - mean) * (tr.pop.X[i*d+c] - mean)
					uv += (tr.pop.X[i*d+c] - uMean) * (tr.pop.X[i*d+c] - uMean) / float64(len(w))
				}
				if tol := 5 / math.Sqrt(ess); math.Abs(mean-aK[c]) > tol {
					t.Errorf("coordinate %d: weighted mean %.4f, a_K = %.4f (tolerance %.3f)", c, mean, aK[c], tol)
				}
				if tol := 5 * math.Sqrt(2/ess); math.Abs(v-1) > tol {
					t.Errorf("coordinate %d: weighted variance %.4f, want 1 (tolerance %.3f)", c, v, tol)
				}
				if tc.threshold == 0 && uv < 1.15 { // resampling moves the walkers themselves toward ρθ
					t.Errorf("coordinate %d: unweighted variance %.4f; ULA at h = 0.5 should be visibly biased (4/3)", c, uv)
				}
			}
		})
	}
}

// With walkers.move, an iteration that ends with non-finite values (a ULA
// step far beyond stability) is undone: the checkpoint written on the
// failure holds the walkers, energies and log-weights of the start of that
// iteration exactly.
func TestSubsetMoveFailureRestoresIterationStart(t *testing.T) {
	for _, steps := range []int{1, 3} {
		t.Run(fmt.Sprintf("ula_steps=%d", steps), func(t *testing.T) {
			cfg := gmmTestConfig()
			cfg.Walkers.N, cfg.Data.N = 200, 200
			cfg.Walkers.StepSize, cfg.Walkers.ULASteps, cfg.Walkers.Move = 60, steps, 100
			cfg.Resample.Threshold = 0
			cfg.Iterations = 1000
			cfg.Log.Every = 1
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
			var start, saved [3][]float64
			h := Hooks{
				Row: func(r row, _ int) {
					start = [3][]float64{slices.Clone(tr.pop.X), slices.Clone(tr.pop.U), slices.Clone(tr.pop.A)}
				},
				Checkpoint: func(int) error {
					saved = [3][]float64{slices.Clone(tr.pop.X), slices.Clone(tr.pop.U), slices.Clone(tr.pop.A)}
					return nil
				},
			}
			if err := tr.run(context.Background(), h, time.Now()); err == nil || !strings.Contains(err.Error(), "non-finite") {
				t.Fatalf("diverging run returned %v, want a non-finite error", err)
			}
			for q, name := range []string{"walkers", "energies", "log-weights"} {
				if !slices.Equal(start[q], saved[q]) {
					t.Fatalf("the checkpoint's %s are not those of the start of the failed iteration %d", name, tr.iter)
				}
			}
		})
	}
}
