package train

import (
	"slices"

	G "gorgonia.org/gorgonia"

	"github.com/jarzyn/jarzyn/smc"
)

// population is an smc.Population whose positions are the walker graph's own
// input buffer, so evaluating never copies positions, with the graph that
// evaluates it. Resampling also permutes the graph's per-layer caches.
type population[T Float] struct {
	*smc.Population[T]
	eval *walkerEval[T]
}

// newPopulation builds the walker graph of n walkers; keepTaps keeps the
// per-layer caches that weightedParamGrad reads (MLP family). The caller
// draws the walkers and sets LogZRef.
func newPopulation[T Float](ps *paramSet[T], n int, keepTaps bool, vmOpts ...G.VMOpt) (*population[T], error) {
	e, err := newWalkerEval[T](ps, n, keepTaps, vmOpts...)
	if err != nil {
		return nil, err
	}
	pop := &population[T]{Population: smc.NewPopulation(e.X, ps.spec.Dim, 0, slices.Max(cacheWidths(ps.spec))), eval: e}
	pop.PermuteCaches = e.gatherCaches
	return pop, nil
}

// evaluate refreshes U and G at X under the current parameters.
func (pop *population[T]) evaluate() error { return pop.eval.run(pop.U, pop.G) }
