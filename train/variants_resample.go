package train

import (
	"math"

	"github.com/jarzyn/jarzyn/smc"
)

// resample is step 6 of iteration k (docs/METHOD.md §2): every weighted
// population (the gradient one with method jarzynski, the monitor) whose
// weights call for it under resample.criterion (resampleDue) is resampled,
// if resample.threshold > 0 and k+1 ≥ resample.warmup. Resampling permutes
// every per-walker cache and keeps log Ẑ (smc.Population.Resample).
func (t *trainer[T]) resample(k int, weighted bool) {
	cfg := t.cfg
	if cfg.Resample.Threshold <= 0 || k+1 < cfg.Resample.Warmup {
		return
	}
	for _, pop := range t.pops() {
		if (weighted || pop == t.mon) && t.resampleDue(pop) {
			pop.Resample(smc.Scheme(cfg.Resample.Scheme), t.rng)
		}
	}
}

// resampleDue reports whether pop's weights call for resampling under
// resample.criterion (the caller checks resample.threshold > 0 and the
// warm-up): "ess", ESS/N < threshold (docs/METHOD.md §2 step 6); "std",
// the sample standard deviation of w/mean(w) above threshold; "loss_ess",
// the effective number of walkers of this iteration's loss subset below
// threshold, which a population without a loss subset (the monitor) reads
// as ESS/N < threshold/loss.walkers.
func (t *trainer[T]) resampleDue(pop *population[T]) bool {
	thr := t.cfg.Resample.Threshold
	switch t.cfg.Resample.Criterion {
	case "std":
		return weightStd(pop.A) > thr
	case "loss_ess":
		if pop != t.pop {
			return pop.ESS() < thr/float64(t.cfg.lossWalkers())
		}
		if t.vs.lossSet == nil {
			return pop.ESS()*float64(pop.N()) < thr
		}
		a := t.vs.lossA[:0]
		for _, i := range t.vs.lossSet {
			a = append(a, pop.A[i])
		}
		t.vs.lossA = a
		return smc.ESSFraction(a)*float64(len(a)) < thr
	}
	return pop.ESS() < thr
}

// weightStd is the sample standard deviation (denominator n − 1) of
// w_i/mean(w) for w = e^A, in float64 from the log-weights: with
// ESS = (Σw)²/Σw², it is √(n·(n/ESS − 1)/(n − 1)). 0 for one walker.
func weightStd(a []float64) float64 {
	n := float64(len(a))
	if len(a) < 2 {
		return 0
	}
	ess := smc.ESSFraction(a) * n
	return math.Sqrt(math.Max(0, n*(n/ess-1)/(n-1)))
}
