package train

import (
	"fmt"
	G "gorgonia.org/gorgonia"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/jarzyn/jarzyn/smc"
)

// population is a set of Langevin walkers with Jarzynski log-weights and the
// cached energies and gradients of SPEC §2. X is the walker graph's own input
// buffer, so evaluating never copies positions.
type population[T Float] struct {
	n, d        int
	X, Xold     []T       // positions now and before the last move
	U, Uold     []float64 // U at X (current θ) and at Xold (θ of the move)
	G, Gold     []T       // ∇ₓU likewise
	A           []float64 // log-weights
	logZref     float64
	resamplings int
	eval        *walkerEval[T]
	p           []float64
	idx         []int
	tmpT        []T
	tmpF        []float64
}

// keepTaps keeps per-layer caches for weightedParamGrad (MLP family).
func newPopulation[T Float](ps *paramSet[T], n int, keepTaps bool, vmOpts ...G.VMOpt) (*population[T], error) {
	e, err := newWalkerEval[T](ps, n, keepTaps, vmOpts...)
	if err != nil {
		return nil, err
	}
	d := ps.spec.Dim
	return &population[T]{
		n: n, d: d, X: e.X, Xold: make([]T, n*d),
		U: make([]float64, n), Uold: make([]float64, n),
		G: make([]T, n*d), Gold: make([]T, n*d),
		A: make([]float64, n), eval: e,
		p: make([]float64, n), idx: make([]int, n),
		tmpT: make([]T, n*max(d, slices.Max(ps.spec.Layers()))), tmpF: make([]float64, n),
	}, nil
}

// evaluate refreshes U and G at X under the current parameters.
func (pop *population[T]) evaluate() error { return pop.eval.run(pop.U, pop.G) }

// move performs one ULA step with the cached gradient (the parameters the
// cache was computed at), keeping the old positions, energies and gradients.
func (pop *population[T]) move(h float64, rng *rand.Rand) {
	copy(pop.Xold, pop.X)
	smc.ULAParallel(pop.X, pop.G, pop.d, h, rng)
	pop.U, pop.Uold = pop.Uold, pop.U
	pop.G, pop.Gold = pop.Gold, pop.G
}

// reweight adds the Jarzynski increment of the last move and evaluation.
func (pop *population[T]) reweight(h float64) {
	smc.UpdateLogWeights(pop.A, h, pop.d, pop.Uold, pop.U, pop.Xold, pop.X, pop.Gold, pop.G)
}

// weights writes softmax(A) into pop.p and returns it.
func (pop *population[T]) weights() []float64 {
	smc.Normalize(pop.A, pop.p)
	return pop.p
}

func (pop *population[T]) logZ() float64 { return pop.logZref + smc.LogMeanExp(pop.A) }

func (pop *population[T]) ess() float64 { return smc.ESSFraction(pop.A) }

// resample draws ancestors ∝ e^A, permutes positions, energies and gradients
// with them, moves log Ẑ into logZref and zeroes A (log Ẑ is unchanged).
func (pop *population[T]) resample(scheme smc.Scheme, rng *rand.Rand) {
	logZ := pop.logZ()
	smc.Resample(scheme, pop.weights(), pop.idx, rng)
	smc.Gather(pop.X, pop.d, pop.idx, pop.tmpT[:len(pop.X)])
	smc.Gather(pop.G, pop.d, pop.idx, pop.tmpT[:len(pop.G)])
	smc.Gather(pop.U, 1, pop.idx, pop.tmpF)
	pop.eval.gatherCaches(pop.idx, pop.tmpT)
	pop.logZref = logZ
	for i := range pop.A {
		pop.A[i] = 0
	}
	pop.resamplings++
}

// checkFinite reports the first non-finite energy, gradient or log-weight.
// With reweighted walkers a NaN or Inf in a gradient or position reaches the
// log-weight through the increment, so checking U and A suffices; otherwise
// the gradients are scanned too.
func (pop *population[T]) checkFinite(reweighted bool) error {
	for i, u := range pop.U {
		if math.IsNaN(u) || math.IsInf(u, 0) {
			return fmt.Errorf("walker %d has energy %v", i, u)
		}
		if a := pop.A[i]; math.IsNaN(a) || math.IsInf(a, 0) {
			return fmt.Errorf("walker %d has log-weight %v", i, a)
		}
	}
	if reweighted {
		return nil
	}
	for i, g := range pop.G {
		if v := float64(g); math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("walker %d has gradient entry %v", i/pop.d, v)
		}
	}
	return nil
}
