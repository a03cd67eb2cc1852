package serve

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/smc"
)

// Weighted annealing (docs/METHOD.md §9): the walkers start as exact samples
// of the base Gaussian π_0 = N(μ0, σ0²I) and follow the path
//
//	U_β(x) = (1 − β)·|x − μ0|²/(2σ0²) + β·U(x),  β_k = k/Steps,
//
// (then ExtraSteps more at β = 1) by ULA at each β, carrying the Jarzynski
// log-weights of docs/METHOD.md §2 with U_β in place of U_θ. The weighted
// walkers then represent the model exactly, and log Ẑ estimates its log Z
// (log Z_0 of the base is known in closed form).
//
// For a data-fitted base N(μ0, Σ) (pcabase.go) the path is
// U_β = (1 − β)·½(x − μ0)ᵀΣ⁻¹(x − μ0) + β·U(x), log Z_0 = (d/2)·log 2π +
// ½·log det Σ, and with PreconditionBase the moves are preconditioned with
// M = Σ and weighed with smc's preconditioned increment (docs/METHOD.md §8):
// exact for any h.
//
// With KernelMALA the moves are Metropolis-adjusted instead (docs/METHOD.md
// §8, "MALA with work-only weights", as AIS): step 0 evaluates the model at
// the start, and each step k ≥ 1 proposes a move at β_k, evaluates the model
// at the proposals and accepts each with its log Metropolis–Hastings ratio
// under U_{β_k} (smc.Population.AcceptChunks), which leaves π_{β_k}
// invariant; every step then adds the work of the next β,
// A ← A − [U_{β_{k+1}}(x) − U_{β_k}(x)], at the walkers' positions. The
// weights never carry a discretisation error, so they stay exact for any h,
// and the same number of model evaluations reaches β = 1.

// streamResample names the resampling stream of a seed (smc.NewStream).
const streamResample = 1 << 63

// annealing is the state of one weighted run: an smc.Population whose
// positions are the batch's input tensor and whose energies and gradients
// are those of U_β at the current β.
type annealing struct {
	w           *walk
	pop         *smc.Population[float32]
	mu          []float64
	invVar      float64  // 1/σ0²
	base        *pcaBase // the data-fitted base, nil for N(μ0, σ0²I)
	beta        float64  // β of the energy the current step moves to
	key         uint64   // the noise of the current step
	resampleRNG *rand.Rand

	// KernelMALA: the model's energy and gradient at the walkers' current
	// positions (the work of a β step needs both parts of U_β), the β of
	// the current move and of the next step, and the accepted proposals.
	mala             bool
	modelU           []float32
	modelG           []float32
	betaMove         float64
	step             int
	accepted         []bool
	acceptedPerChunk []int
	proposals        int64
	acceptedTotal    int64
}

// streamAccept names the acceptance uniforms of a MALA step's key.
const streamAccept = 0x6d616c61 // "mala"

func newAnnealing(w *walk) *annealing {
	info := &w.m.Info
	logZ0 := info.LogZBase()
	if w.base != nil {
		logZ0 = w.base.logZ
	}
	a := &annealing{
		w: w, pop: smc.NewPopulation(w.b.X, w.d, logZ0, 0),
		mu: info.BaseMean, invVar: 1 / (info.BaseStd * info.BaseStd), base: w.base,
		resampleRNG: smc.NewStream(w.cfg.Seed, streamResample),
		mala:        w.cfg.Kernel == KernelMALA,
	}
	if a.mala {
		a.modelU, a.modelG = make([]float32, w.n), make([]float32, w.n*w.d)
		a.accepted, a.acceptedPerChunk = make([]bool, w.n), make([]int, smc.Chunks(w.n))
		a.pop.PermuteCaches = a.permuteModelCaches
	}
	if w.precond {
		a.pop.Precond = w.base.m
		// the population makes its chunks' working memory for Precond on
		// the first move: here, before goroutines share the chunks
		a.pop.MoveChunks(0, 0, w.cfg.StepSize, 0)
	}
	return a
}

// betaAt is the schedule: linear in k over Steps, then 1 for extra steps.
func (a *annealing) betaAt(k int) float64 {
	if k >= a.w.cfg.Steps {
		return 1
	}
	return float64(k) / float64(a.w.cfg.Steps)
}

// run draws the start and runs every step (begin, the model, end).
func (a *annealing) run(ctx context.Context, ro *ort.RunOptions) error {
	a.init()
	return a.w.drive(ctx, ro, a)
}

// init draws the start (β = 0: U_0 = |x−μ0|²/(2σ0²), A = 0).
func (a *annealing) init() {
	a.w.start(nil)
	a.beta = 0
	a.setEnergy(0, a.w.n, nil, nil)
}

// begin sets step k's β and noise: it moves at β_k and weighs at β_{k+1}.
func (a *annealing) begin(k int) {
	a.beta, a.key = a.betaAt(k+1), a.w.key(k+1)
	if a.mala { // MALA: step k moves at β_k (none at k = 0), then adds the work to β_{k+1}
		a.step, a.betaMove = k, a.betaAt(k)
		clear(a.acceptedPerChunk)
	}
}

// end checks the log-weights after step k and resamples when the ESS is
// low: the decision needs all weights, so it waits for the whole step.
func (a *annealing) end(k int) error {
	w, pop := a.w, a.pop
	for i, v := range pop.A {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("serve: walker %d %w: its log-weight is %v at step %d (energy %v); try a smaller h than %g", i, ErrDiverged, v, k+1, w.b.Energy[i], w.cfg.StepSize)
		}
	}
	if a.mala && k > 0 {
		for _, c := range a.acceptedPerChunk {
			a.acceptedTotal += int64(c)
		}
		a.proposals += int64(w.n)
	}
	if w.cfg.ResampleThreshold > 0 && pop.ESS() < w.cfg.ResampleThreshold {
		pop.Resample(w.cfg.ResampleScheme, a.resampleRNG)
	}
	w.progress(k + 1)
	return nil
}

// needsEnergy is true: the weights need U_β.
func (a *annealing) needsEnergy() bool { return true }

// beforeEval saves the walkers of chunks [first, end) and moves them by ULA
// at the current β (whose gradient the population holds).
func (a *annealing) beforeEval(first, end int) {
	if a.mala && a.step == 0 {
		return // step 0 evaluates the model at the start
	}
	a.pop.MoveChunks(first, end, a.w.cfg.StepSize, a.key)
}

// afterEval computes U_β, ∇U_β at the new positions of chunks [first, end)
// from the model's outputs and adds the Jarzynski increment to the walkers'
// log-weights.
func (a *annealing) afterEval(first, end int) {
	if first >= end {
		return
	}
	lo, _ := a.w.walkers(first)
	_, hi := a.w.walkers(end - 1)
	if a.mala {
		a.afterEvalMALA(first, end, lo, hi)
		return
	}
	a.setEnergy(lo, hi, a.w.b.Energy, a.w.b.Grad)
	a.pop.ReweightRange(lo, hi, a.w.cfg.StepSize)
}

// afterEvalMALA completes step k on chunks [first, end) (walkers [lo, hi)):
// for k ≥ 1 the Metropolis–Hastings decision of the proposals under U_{β_k}
// (the model's values kept for the accepted ones), then for every k the
// work of the step to β_{k+1} at the walkers' positions, after which the
// population holds U_{β_{k+1}} and its gradient for the next proposal.
func (a *annealing) afterEvalMALA(first, end, lo, hi int) {
	d, pop, b := a.w.d, a.pop, a.w.b
	if a.step == 0 {
		copy(a.modelU[lo:hi], b.Energy[lo:hi])
		copy(a.modelG[lo*d:hi*d], b.Grad[lo*d:hi*d])
	} else {
		a.setEnergyAt(lo, hi, a.betaMove, b.Energy, b.Grad)
		n := pop.AcceptChunks(first, end, a.w.cfg.StepSize, a.key^streamAccept, a.accepted)
		a.acceptedPerChunk[first] = n // one writer per chunk range: its first chunk
		for i := lo; i < hi; i++ {
			if a.accepted[i] {
				a.modelU[i] = b.Energy[i]
				copy(a.modelG[i*d:(i+1)*d], b.Grad[i*d:(i+1)*d])
			}
		}
	}
	if a.beta == a.betaMove && a.step > 0 {
		return // extra steps at β = 1: no work
	}
	var before [smc.ChunkWalkers]float64
	for i0 := lo; i0 < hi; i0 += smc.ChunkWalkers {
		i1 := min(hi, i0+smc.ChunkWalkers)
		copy(before[:i1-i0], pop.U[i0:i1]) // U_{β_k} at the positions (at k = 0: U_base, from init)
		a.setEnergyAt(i0, i1, a.beta, a.modelU, a.modelG)
		for i := i0; i < i1; i++ {
			pop.A[i] -= pop.U[i] - before[i-i0]
		}
	}
}

// permuteModelCaches permutes the model's cached energies and gradients
// with the walkers at a resampling (smc.Population.PermuteCaches).
func (a *annealing) permuteModelCaches(idx []int, _ []float32) {
	d := a.w.d
	u := append([]float32(nil), a.modelU...)
	g := append([]float32(nil), a.modelG...)
	for i, j := range idx {
		a.modelU[i] = u[j]
		copy(a.modelG[i*d:(i+1)*d], g[j*d:(j+1)*d])
	}
}

// setEnergy sets the population's U and G of walkers [lo, hi) to U_β and
// ∇U_β at the current β from the model's energy and gradient (unused at
// β = 0, when they may be nil).
func (a *annealing) setEnergy(lo, hi int, energy, grad []float32) {
	a.setEnergyAt(lo, hi, a.beta, energy, grad)
}

// setEnergyAt is setEnergy at a given β.
func (a *annealing) setEnergyAt(lo, hi int, beta float64, energy, grad []float32) {
	if a.base != nil {
		a.setEnergyPCA(lo, hi, beta, energy, grad)
		return
	}
	d, pop := a.w.d, a.pop
	for i := lo; i < hi; i++ {
		r := i * d
		x, g := pop.X[r:r+d], pop.G[r:r+d]
		ub := 0.0
		for k, xk := range x {
			t := float64(xk) - a.mu[k]
			ub += t * t
			gk := (1 - beta) * t * a.invVar
			if beta != 0 {
				gk += beta * float64(grad[r+k])
			}
			g[k] = float32(gk)
		}
		ub *= 0.5 * a.invVar
		if beta != 0 {
			ub = (1-beta)*ub + beta*float64(energy[i])
		}
		pop.U[i] = ub
	}
}

// setEnergyPCA is setEnergy with the data-fitted base term
// U_base = ½(x − μ0)ᵀΣ⁻¹(x − μ0) and its gradient Σ⁻¹(x − μ0), a chunk of
// walkers at a time (none at β = 1).
func (a *annealing) setEnergyPCA(lo, hi int, beta float64, energy, grad []float32) {
	d, pop := a.w.d, a.pop
	if beta == 1 { // the model's own energy: no base term to mix in
		copy(pop.G[lo*d:hi*d], grad[lo*d:hi*d])
		for i := lo; i < hi; i++ {
			pop.U[i] = float64(energy[i])
		}
		return
	}
	var ub [smc.ChunkWalkers]float64
	s := a.base.getScratch()
	defer a.base.putScratch(s)
	gb := s.y
	for i0 := lo; i0 < hi; i0 += smc.ChunkWalkers {
		i1 := min(hi, i0+smc.ChunkWalkers)
		a.base.energy(s, pop.X[i0*d:i1*d], ub[:i1-i0])
		for i := i0; i < i1; i++ {
			r, rb := i*d, (i-i0)*d
			g := pop.G[r : r+d]
			for k, v := range gb[rb : rb+d] {
				gk := (1 - beta) * v
				if beta != 0 {
					gk += beta * float64(grad[r+k])
				}
				g[k] = float32(gk)
			}
			u := ub[i-i0]
			if beta != 0 {
				u = (1-beta)*u + beta*float64(energy[i])
			}
			pop.U[i] = u
		}
	}
}

// fill adds the weights and estimates to the walk's result.
func (a *annealing) fill(r *Result) {
	r.Weighted = true
	r.LogWeights = append([]float64(nil), a.pop.A...)
	r.ESSFraction = a.pop.ESS()
	r.ESS = r.ESSFraction * float64(r.N)
	r.LogZ = a.pop.LogZ()
	r.Resamplings = a.pop.Resamplings
	r.Kernel = KernelULA
	if a.mala {
		r.Kernel = KernelMALA
		if a.proposals > 0 {
			r.Accept = float64(a.acceptedTotal) / float64(a.proposals)
		}
	}
}
