package train

import (
	"context"
	"math"

	"github.com/jarzyn/jarzyn/smc"
)

// mover moves the random subset of a population that walkers.move picks
// each iteration (docs/METHOD.md §2, "Variants"): it holds its own walker
// graph of m walkers (no per-layer caches), so that the steps at fixed θ
// evaluate only the moved walkers.
type mover[T Float] struct {
	pop    *population[T]
	idx    []int     // the population rows of the moved walkers, this iteration
	moved  []bool    // per population row: in idx
	before []float64 // U_θk of every walker of the population, for the work term
}

// moverSize is the number of walkers of a population of n moved per
// iteration: walkers.move for the gradient population, the same fraction
// (rounded, at least 1) for the monitor.
func (c *Config) moverSize(n int) int {
	if n == c.Walkers.N {
		return c.Walkers.Move
	}
	return min(n, max(1, int(math.Round(float64(c.Walkers.Move)*float64(n)/float64(c.Walkers.N)))))
}

// buildVariants makes the movers (walkers.move), the heuristic kernel
// (walkers.heuristic) and the scratch of the variants, after build made the
// populations.
func (t *trainer[T]) buildVariants() error {
	cfg := t.cfg
	t.vs.movers, t.vs.heur = nil, nil
	maxN := cfg.Walkers.N
	for _, pop := range t.pops() {
		maxN = max(maxN, pop.N())
	}
	t.vs.perm = make([]int, maxN)
	if cfg.subsetMoves() {
		for _, pop := range t.pops() {
			m := cfg.moverSize(pop.N())
			p, err := newPopulation[T](t.ps, m, false, deviceVMOpts(cfg.Device)...)
			if err != nil {
				return err
			}
			p.Precond = pop.Precond
			t.vs.movers = append(t.vs.movers, &mover[T]{pop: p, idx: make([]int, m), moved: make([]bool, pop.N())})
		}
	}
	if cfg.heuristicMoves() {
		lo, hi := dataRange(t.data)
		w := cfg.Walkers
		t.vs.heur = &heuristicKernel{noiseStd: w.NoiseStd, clamp: w.DriftClamp, revert: w.RevertOutside, lo: lo, hi: hi, noise: smc.NewNoise(maxN)}
	}
	return nil
}

// move moves every walker of pop by one Langevin step at step size h with
// the noise of key: the population's own (preconditioned) ULA step, or with
// walkers.heuristic the heuristic one.
func (t *trainer[T]) move(pop *population[T], h float64, key uint64) {
	if t.vs.heur != nil {
		heuristicMove(t.vs.heur, pop.Population, h, key)
		return
	}
	pop.Move(h, key)
}

// subsetMove is steps 3–4 of an iteration with walkers.move (docs/METHOD.md
// §2, "Variants"). Per population, a random subset S of the walkers (from
// the run's stream) is copied into its mover and takes walkers.ula_steps
// Langevin steps: the first ula_steps − 1 at θ_k, each reweighted with the
// increment at fixed θ, −α_θk(X_{j+1}, X_j) + α_θk(X_j, X_{j+1}); then the
// last step from the cached gradient, θ_k → θ_{k+1}, and one evaluation of
// the whole population at θ_{k+1} (which also refreshes the per-layer
// caches that the next gradient reads). A walker of S gets the §2
// increment of that last step, which contains the work of the parameter
// change; every other walker gets the work term −[U_θk+1(X) − U_θk(X)] at
// its unchanged position. Cost per iteration: one evaluation of the
// population and ula_steps − 1 of the subset. It returns ErrInterrupted,
// after checkpointing the start of the iteration, when ctx is cancelled
// between steps.
func (t *trainer[T]) subsetMove(ctx context.Context, hk Hooks, k int, weighted bool, prevMeanU, prevNorm float64) error {
	cfg := t.cfg
	h := cfg.Walkers.StepSize
	pops := t.pops()
	for i, pop := range pops {
		mv := t.vs.movers[i]
		drawSubset(t.rng, pop.N(), len(mv.idx), t.vs.perm, mv.idx)
		mv.gather(pop)
	}
	for j := 0; j < cfg.Walkers.ULASteps; j++ {
		if j > 0 && ctx.Err() != nil {
			t.restoreSnapshot()
			t.lastMeanUData, t.lastGradNorm = prevMeanU, prevNorm
			if err := hk.Checkpoint(t.iter); err != nil {
				return err
			}
			return ErrInterrupted
		}
		for _, mv := range t.vs.movers {
			t.move(mv.pop, h, t.rng.Uint64())
		}
		if j == cfg.Walkers.ULASteps-1 {
			break
		}
		for i, mv := range t.vs.movers {
			if err := mv.pop.evaluate(); err != nil {
				return err
			}
			if weighted || pops[i] == t.mon {
				mv.pop.Reweight(h)
			}
		}
	}
	t.opt.step(t.ps.data, t.grads, t.lrFactor(k))
	for i, pop := range pops {
		mv := t.vs.movers[i]
		mv.before = append(mv.before[:0], pop.U...)
		mv.scatter(pop)
		if err := pop.evaluate(); err != nil {
			return err
		}
		if weighted || pop == t.mon {
			mv.reweight(pop, h)
		}
	}
	return nil
}

// gather copies the positions, energies and gradients of the rows idx of
// pop into the mover and zeroes its log-weights.
func (mv *mover[T]) gather(pop *population[T]) {
	d := pop.Dim()
	clear(mv.moved)
	for s, r := range mv.idx {
		copy(mv.pop.X[s*d:(s+1)*d], pop.X[r*d:(r+1)*d])
		copy(mv.pop.G[s*d:(s+1)*d], pop.G[r*d:(r+1)*d])
		mv.pop.U[s] = pop.U[r]
		mv.moved[r] = true
	}
	clear(mv.pop.A)
}

// scatter copies the mover's positions back into the rows idx of pop.
func (mv *mover[T]) scatter(pop *population[T]) {
	d := pop.Dim()
	for s, r := range mv.idx {
		copy(pop.X[r*d:(r+1)*d], mv.pop.X[s*d:(s+1)*d])
	}
}

// reweight adds to pop's log-weights, after pop was evaluated at θ_{k+1}:
// for a moved walker, the increments of its steps at fixed θ (in the
// mover's A) and the §2 increment of its last step, from the mover's
// saved pre-move state and pop's new energy and gradient; for any other
// walker, the work term −[U_θk+1(X) − U_θk(X)].
func (mv *mover[T]) reweight(pop *population[T], h float64) {
	d := pop.Dim()
	for s, r := range mv.idx {
		copy(mv.pop.G[s*d:(s+1)*d], pop.G[r*d:(r+1)*d])
		mv.pop.U[s] = pop.U[r]
	}
	mv.pop.Reweight(h)
	for r, u := range pop.U {
		if !mv.moved[r] {
			pop.A[r] -= u - mv.before[r]
		}
	}
	for s, r := range mv.idx {
		pop.A[r] += mv.pop.A[s]
	}
}

// heuristicKernel is the paper's heuristic Langevin step (walkers.heuristic,
// docs/METHOD.md §5.2 and §6.2): noise of standard deviation noiseStd
// instead of √(2h) (0: √(2h)), the drift h·∇U clamped per coordinate to
// ±clamp (0: no clamp), and with revert every coordinate that the step
// takes from inside [lo, hi] to outside put back. The log-weights are then
// updated with the §2 increment as if the step were ULA: they are no
// longer exact.
type heuristicKernel struct {
	noiseStd, clamp float64
	revert          bool
	lo, hi          float64
	noise           *smc.Noise // chunks of the largest population
}

// heuristicMove moves every walker of pop by one heuristic step from its
// cached gradient, the noise of chunk c from the stream (key, c) (as
// smc.Population.Move: the result depends only on the state and key), and
// saves the positions, energies and gradients before the move as Move does.
func heuristicMove[T Float](k *heuristicKernel, pop *smc.Population[T], h float64, key uint64) {
	d, n := pop.Dim(), pop.N()
	s := k.noiseStd
	if s == 0 {
		s = math.Sqrt(2 * h)
	}
	smc.For(smc.Chunks(n), func(first, end int) {
		for c := first; c < end; c++ {
			lo, hi := smc.ChunkWalkerRange(c, n)
			rng := k.noise.Chunk(key, c)
			copy(pop.XPrev[lo*d:hi*d], pop.X[lo*d:hi*d])
			for j := lo * d; j < hi*d; j++ {
				x0 := float64(pop.X[j])
				drift := h * float64(pop.G[j])
				if k.clamp > 0 {
					drift = math.Max(-k.clamp, math.Min(k.clamp, drift))
				}
				x1 := T(x0 - drift + s*rng.NormFloat64())
				if k.revert && k.outside(float64(x1)) && !k.outside(x0) {
					x1 = pop.X[j]
				}
				pop.X[j] = x1
			}
		}
	})
	pop.U, pop.UPrev = pop.UPrev, pop.U
	pop.G, pop.GPrev = pop.GPrev, pop.G
}

func (k *heuristicKernel) outside(v float64) bool { return v < k.lo || v > k.hi }

// warmUp takes walkers.warmup_steps Langevin steps at θ0 before the first
// iteration (walkers.heuristic), every walker of every population, without
// weights: the log-weights stay 0. Progress is checkpointed, so that a
// cancelled warm-up resumes where it stopped; it returns ErrInterrupted
// after checkpointing when ctx is cancelled.
func (t *trainer[T]) warmUp(ctx context.Context, hk Hooks) error {
	h := t.cfg.Walkers.StepSize
	for t.iter == 0 && t.vs.warmupDone < t.cfg.Walkers.WarmupSteps {
		if ctx.Err() != nil {
			if err := hk.Checkpoint(t.iter); err != nil {
				return err
			}
			return ErrInterrupted
		}
		for _, pop := range t.pops() {
			t.move(pop, h, t.rng.Uint64())
			if err := pop.evaluate(); err != nil {
				return err
			}
		}
		t.vs.warmupDone++
	}
	return nil
}
