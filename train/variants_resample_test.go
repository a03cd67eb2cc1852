package train

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// bruteResampleDue is resample.criterion written out from its definition,
// from e^A directly (the spreads here keep it finite): "ess", ESS/N <
// threshold; "std", the sample standard deviation of w/mean(w) above it;
// "loss_ess", the effective number of the subset's walkers below it.
func bruteResampleDue(criterion string, threshold float64, a []float64, subset []int) bool {
	w := make([]float64, len(a))
	for i, v := range a {
		w[i] = math.Exp(v)
	}
	ess := func(idx []int) float64 {
		s, s2 := 0.0, 0.0
		for _, i := range idx {
			s += w[i]
			s2 += w[i] * w[i]
		}
		return s * s / s2
	}
	all := make([]int, len(a))
	for i := range all {
		all[i] = i
	}
	switch criterion {
	case "std":
		mean := 0.0
		for _, v := range w {
			mean += v / float64(len(w))
		}
		ss := 0.0
		for _, v := range w {
			ss += (v/mean - 1) * (v/mean - 1)
		}
		return math.Sqrt(ss/float64(len(w)-1)) > threshold
	case "loss_ess":
		return ess(subset) < threshold
	}
	return ess(all)/float64(len(a)) < threshold
}

// resample.criterion: for log-weights of several spreads, each criterion
// decides as its definition written out in float64 (bruteResampleDue; the
// monitor under loss_ess by ESS/N < threshold/loss.walkers), and a
// resampling through the loop's step 6 keeps log Ẑ of every population to
// 1e-12, zeroes the log-weights and leaves every cached energy that of its
// walker's new position; nothing happens before resample.warmup.
func TestResampleCriteria(t *testing.T) {
	for _, tc := range []struct {
		criterion string
		threshold float64
	}{
		{"ess", 0.5}, {"std", 1.5}, {"loss_ess", 12},
	} {
		for _, spread := range []float64{0.2, 1, 2.5} {
			t.Run(fmt.Sprintf("%s_spread_%v", tc.criterion, spread), func(t *testing.T) {
				cfg := variantTestConfig()
				cfg.Loss.Walkers = 20
				cfg.Resample.Criterion, cfg.Resample.Threshold, cfg.Resample.Warmup = tc.criterion, tc.threshold, 3
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
				rng := rand.New(rand.NewPCG(5, uint64(spread*10)))
				for _, pop := range tr.pops() {
					for i := range pop.A {
						pop.A[i] = spread * rng.NormFloat64()
					}
				}
				tr.walkerCoefficients(true) // draws this iteration's loss subset
				var want []bool
				for _, pop := range tr.pops() {
					subset, thr := tr.vs.lossSet, tc.threshold
					if pop == tr.mon && tc.criterion == "loss_ess" {
						// the monitor: ESS/N < threshold/loss.walkers
						subset = nil
						for i := 0; i < pop.N(); i++ {
							subset = append(subset, i)
						}
						thr *= float64(pop.N()) / float64(cfg.Loss.Walkers)
					}
					w := bruteResampleDue(tc.criterion, thr, pop.A, subset)
					if got := tr.resampleDue(pop); got != w {
						t.Fatalf("population of %d: resampleDue %v, by definition %v", pop.N(), got, w)
					}
					want = append(want, w)
				}
				// the extremes are clear-cut for every criterion: the test
				// sees both outcomes
				if (spread == 0.2 && (want[0] || want[1])) || (spread == 2.5 && !(want[0] && want[1])) {
					t.Fatalf("spread %v: resampling due %v, want %v for both populations", spread, want, spread > 1)
				}
				before := []float64{tr.pop.LogZ(), tr.mon.LogZ()}
				tr.resample(1, true) // before resample.warmup
				for q, pop := range tr.pops() {
					if pop.Resamplings != 0 || pop.LogZ() != before[q] {
						t.Fatalf("population %d resampled before resample.warmup", q)
					}
				}
				tr.resample(2, true) // iteration 2 ends at warm-up 3
				d := cfg.Model.Dim
				p := tr.ps.params()
				for q, pop := range tr.pops() {
					if got := pop.Resamplings == 1; got != want[q] {
						t.Fatalf("population %d: %d resamplings, criterion says %v", q, pop.Resamplings, want[q])
					}
					if math.Abs(pop.LogZ()-before[q]) > 1e-12*math.Max(1, math.Abs(before[q])) {
						t.Fatalf("population %d: log Ẑ %.15g before, %.15g after", q, before[q], pop.LogZ())
					}
					if !want[q] {
						continue
					}
					for i, a := range pop.A {
						if a != 0 {
							t.Fatalf("population %d: log-weight %d is %v after resampling", q, i, a)
						}
						if u := p.Energy(pop.X[i*d:(i+1)*d], nil); math.Abs(u-pop.U[i]) > 1e-10*math.Max(1, math.Abs(u)) {
							t.Fatalf("population %d, walker %d: cached energy %v, that of its position %v", q, i, pop.U[i], u)
						}
					}
				}
			})
		}
	}
}

// weightStd from ESS against the sample standard deviation written out,
// for log-weights far beyond what e^A could hold in float64 once shifted.
func TestWeightStdLargeLogWeights(t *testing.T) {
	a := []float64{1000, 1001, 999.5, 1000.2}
	w := make([]float64, len(a))
	mean := 0.0
	for i, v := range a {
		w[i] = math.Exp(v - 1000)
		mean += w[i] / 4
	}
	ss := 0.0
	for _, v := range w {
		ss += (v/mean - 1) * (v/mean - 1)
	}
	if got, want := weightStd(a), math.Sqrt(ss/3); math.Abs(got-want) > 1e-12 {
		t.Fatalf("weightStd %v, written out %v", got, want)
	}
}
