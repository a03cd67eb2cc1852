package train

import (
	"context"
	"math"
	"math/rand/v2"

	blasimpl "github.com/jarzyn/jarzyn/internal/blas"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// The walker kernels of docs/METHOD.md §8: the preconditioned ULA step
// (walkers.preconditioner) and MALA with work-only weights
// (walkers.kernel: mala).

// sampleBase writes exact samples μ0 + Σ^{1/2}·ξ of the base N(μ0, Σ) of
// spec into x (rows of Dim values), ξ drawn row by row from rng.
func sampleBase[T Float](spec models.Spec, x []T, rng *rand.Rand) {
	d := spec.Dim
	xi, out := make([]float64, d), make([]float64, d)
	for i := 0; i < len(x)/d; i++ {
		for k := range xi {
			xi[k] = rng.NormFloat64()
		}
		spec.BaseSample(xi, out)
		for k, v := range out {
			x[i*d+k] = T(v)
		}
	}
}

// basePreconditioned reports whether the walkers move with M = Σ, the base
// covariance: walkers.preconditioner base, or auto with model.base_fit pca.
func (c *Config) basePreconditioned() bool {
	p := c.Walkers.Preconditioner
	return p == "base" || (p == "auto" && c.Model.BaseFit == "pca")
}

// basePreconditioner is M = Σ = σ0²·I + V·diag(λ)·Vᵀ of spec's base, its
// products on the BLAS the graphs use (one goroutine per chunk of walkers).
func basePreconditioner(spec models.Spec) (*smc.Preconditioner, error) {
	m, err := smc.NewPreconditioner(spec.Dim, spec.BaseStd*spec.BaseStd, spec.BaseVectors, spec.BaseVariances)
	if err != nil {
		return nil, err
	}
	m.SetGemm(blasimpl.Serial().Dgemm)
	return m, nil
}

// setPreconditioner gives every population the configured M (nil: M = I,
// the plain ULA of docs/METHOD.md §2 on its own code path).
func (t *trainer[T]) setPreconditioner() error {
	if !t.cfg.basePreconditioned() {
		return nil
	}
	m, err := basePreconditioner(t.ps.spec)
	if err != nil {
		return err
	}
	for _, pop := range t.pops() {
		pop.Precond = m
	}
	return nil
}

// malaState is what the MALA kernel keeps between iterations: scratch, and
// the acceptance counts of the gradient population (checkpointed).
type malaState struct {
	before   [][]float64 // per population: U_θk at the positions, for the work term
	accepted []bool
	// Accepted and Proposed count MALA proposals of the gradient
	// population over the run; Last is the acceptance rate of the last
	// iteration (NaN before the first).
	Accepted, Proposed int64
	Last               float64
	// H is the step size of the next iteration (0 before the first:
	// walkers.step_size); it moves with walkers.target_accept.
	H float64
}

// malaAdaptMin and malaAdaptMax bound the adapted step size to
// [malaAdaptMin·h0, malaAdaptMax·h0], h0 = walkers.step_size.
const (
	malaAdaptMin = 1e-3
	malaAdaptMax = 100
)

// adapt sets the next iteration's step size from the last acceptance rate
// (walkers.target_accept; no-op when 0).
func (ms *malaState) adapt(h0, target float64) {
	if target <= 0 || math.IsNaN(ms.Last) {
		return
	}
	ms.H = min(max(ms.H*math.Exp(ms.Last-target), h0*malaAdaptMin), h0*malaAdaptMax)
}

// malaMove is steps 3–4 of an iteration with walkers.kernel mala (docs/METHOD.md
// §8, "MALA with work-only weights"): θ_k → θ_{k+1}; U_{θk+1} and ∇U_{θk+1}
// at the walkers' current positions, and the work term
// A ← A − [U_{θk+1}(X) − U_θk(X)] for weighted populations; then
// walkers.ula_steps Metropolis-adjusted steps at θ_{k+1}, each a
// (preconditioned) Langevin proposal, an evaluation and an accept/reject
// (smc.Population.Accept). The weights carry only the work term. A rejected
// walker keeps its position, energy and gradient and, in the gradient
// population, its per-layer caches. Cost: ula_steps + 1 evaluations of the
// walkers per iteration, one more than ULA. It returns ErrInterrupted,
// after checkpointing the start of the iteration, when ctx is cancelled
// between steps.
func (t *trainer[T]) malaMove(ctx context.Context, h Hooks, k int, weighted bool, prevMeanU, prevNorm float64) error {
	cfg := t.cfg
	ms := t.mala
	if ms.H == 0 {
		ms.H = cfg.Walkers.StepSize
	}
	hStep := ms.H
	pops := t.pops()
	if len(ms.before) != len(pops) {
		ms.before = make([][]float64, len(pops))
		ms.accepted = make([]bool, t.pop.N())
	}
	t.opt.step(t.ps.data, t.grads, t.lrFactor(k))
	for i, pop := range pops {
		ms.before[i] = append(ms.before[i][:0], pop.U...)
		if err := pop.evaluate(); err != nil {
			return err
		}
		if weighted || pop == t.mon {
			pop.AddWork(ms.before[i])
		}
	}
	acc := 0
	for j := 0; j < cfg.Walkers.ULASteps; j++ {
		if j > 0 && ctx.Err() != nil {
			t.restoreSnapshot()
			t.lastMeanUData, t.lastGradNorm = prevMeanU, prevNorm
			if err := h.Checkpoint(t.iter); err != nil {
				return err
			}
			return ErrInterrupted
		}
		for _, pop := range pops {
			keep := pop == t.pop && pop.eval.taps != nil
			if keep {
				pop.eval.saveCaches()
			}
			pop.Move(hStep, t.rng.Uint64())
			if err := pop.evaluate(); err != nil {
				return err
			}
			var flags []bool
			if pop == t.pop {
				flags = ms.accepted
			}
			n := pop.Accept(hStep, t.rng.Uint64(), flags)
			if pop == t.pop {
				acc += n
			}
			if keep {
				pop.eval.restoreRejected(ms.accepted)
			}
		}
	}
	proposed := int64(t.pop.N()) * int64(cfg.Walkers.ULASteps)
	ms.Accepted += int64(acc)
	ms.Proposed += proposed
	ms.Last = float64(acc) / float64(proposed)
	ms.adapt(cfg.Walkers.StepSize, cfg.Walkers.TargetAccept)
	return nil
}

// saveCaches copies the per-layer caches of the walkers' current positions
// (all but the positions, which the population saves) so that
// restoreRejected can put back the rows of walkers whose next proposal is
// rejected. Every step needs it: after a rejection the walker graph holds
// the proposal's caches.
func (e *walkerEval[T]) saveCaches() {
	inputs, deltas := e.layerCaches()
	if len(e.saved) == 0 {
		for l := range deltas {
			if l > 0 {
				e.saved = append(e.saved, make([]T, len(inputs[l])))
			}
			e.saved = append(e.saved, make([]T, len(deltas[l])))
		}
	}
	i := 0
	for l := range deltas {
		if l > 0 {
			copy(e.saved[i], inputs[l])
			i++
		}
		copy(e.saved[i], deltas[l])
		i++
	}
}

// restoreRejected copies the saved cache rows back for every walker i with
// accepted[i] false.
func (e *walkerEval[T]) restoreRejected(accepted []bool) {
	inputs, deltas := e.layerCaches()
	i := 0
	put := func(dst, src []T) {
		w := len(dst) / len(accepted)
		for r, ok := range accepted {
			if !ok {
				copy(dst[r*w:(r+1)*w], src[r*w:(r+1)*w])
			}
		}
	}
	for l := range deltas {
		if l > 0 {
			put(inputs[l], e.saved[i])
			i++
		}
		put(deltas[l], e.saved[i])
		i++
	}
}
