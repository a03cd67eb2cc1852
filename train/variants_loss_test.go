package train

import (
	"math"
	"slices"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// loss.walkers and loss.energy_reg, in float64 against independent
// recomputations at an iteration whose walkers carry non-uniform weights:
// the loss subset holds loss.walkers distinct walkers and the walker
// coefficients are −p_i + 2λ·p_i·U_i inside it (p the softmax of A over
// the subset, or 1/L without weights; U from the reference energy) and 0
// outside; and the whole gradient the optimizer receives equals central
// differences of L(θ) = mean_b [U(d_b) + λ·U(d_b)²] + Σ_i p_i·[−U(X_i) +
// λ·U(X_i)²], p held fixed.
func TestLossSubsetAndEnergyRegGradient(t *testing.T) {
	for _, tc := range []struct {
		name   string
		method Method
		subset int
		lambda float64
	}{
		{"jarzynski, subset and regulariser", Jarzynski, 17, 0.3},
		{"pcd, subset and regulariser", PCD, 17, 0.3},
		{"jarzynski, all walkers and regulariser", Jarzynski, 0, 0.3},
		{"jarzynski, subset only", Jarzynski, 17, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := variantTestConfig()
			cfg.Method = tc.method
			cfg.Data.N, cfg.Walkers.N, cfg.Walkers.Monitor = 40, 50, 0
			cfg.Loss.Walkers, cfg.Loss.EnergyReg = tc.subset, tc.lambda
			cfg.Iterations = 3
			const at = 2 // the iteration checked: θ and A have moved
			checked := false
			runTrainer(t, cfg, func(tr *trainer[float64], k int) {
				if k != at {
					return
				}
				checked = true
				p := tr.ps.params()
				d, n := cfg.Model.Dim, tr.pop.N()
				u := make([]float64, n)
				for i := range u {
					u[i] = p.Energy(tr.pop.X[i*d:(i+1)*d], nil)
				}
				set := tr.vs.lossSet
				if tc.subset == 0 {
					if set != nil {
						t.Fatalf("a loss subset %v without loss.walkers", set)
					}
					for i := 0; i < n; i++ {
						set = append(set, i)
					}
				}
				if len(set) != cfg.lossWalkers() {
					t.Fatalf("loss subset of %d walkers, want %d", len(set), cfg.lossWalkers())
				}
				sorted := slices.Sorted(slices.Values(set))
				if len(slices.Compact(slices.Clone(sorted))) != len(set) || sorted[0] < 0 || sorted[len(sorted)-1] >= n {
					t.Fatalf("loss subset %v is not distinct walkers of [0, %d)", set, n)
				}
				// p over the subset, from A directly
				pw := make([]float64, n)
				maxA := math.Inf(-1)
				for _, i := range set {
					maxA = math.Max(maxA, tr.pop.A[i])
				}
				sum := 0.0
				for _, i := range set {
					pw[i] = 1
					if tc.method == Jarzynski {
						pw[i] = math.Exp(tr.pop.A[i] - maxA)
					}
					sum += pw[i]
				}
				spread := 0.0
				for _, i := range set {
					pw[i] /= sum
					spread = math.Max(spread, math.Abs(pw[i]-1/float64(len(set))))
				}
				if tc.method == Jarzynski && spread < 1e-4 {
					t.Fatalf("the loss weights are uniform (max deviation %v): the check needs weighted walkers", spread)
				}
				for i := 0; i < n; i++ {
					want := -pw[i] + 2*tc.lambda*pw[i]*u[i]
					if math.Abs(tr.negP[i]-want) > 1e-10*math.Max(1, math.Abs(want)) {
						t.Fatalf("walker %d: coefficient %.15g, recomputed %.15g", i, tr.negP[i], want)
					}
				}
				loss := func(q *models.Params) float64 {
					l := 0.0
					for b := 0; b < cfg.Data.N; b++ {
						ub := q.Energy(tr.dataT[b*d:(b+1)*d], nil)
						l += (ub + tc.lambda*ub*ub) / float64(cfg.Data.N)
					}
					for _, i := range set {
						ui := q.Energy(tr.pop.X[i*d:(i+1)*d], nil)
						l += pw[i] * (-ui + tc.lambda*ui*ui)
					}
					return l
				}
				for k, tensor := range p.Tensors {
					for i := range tensor.Data {
						const eps = 1e-6
						old := tensor.Data[i]
						tensor.Data[i] = old + eps
						up := loss(p)
						tensor.Data[i] = old - eps
						dn := loss(p)
						tensor.Data[i] = old
						fd := (up - dn) / (2 * eps)
						if math.Abs(fd-tr.grads[k][i]) > 1e-6*math.Max(1, math.Abs(fd)) {
							t.Fatalf("∂L/∂%s[%d] = %.10g, finite difference %.10g", tensor.Name, i, tr.grads[k][i], fd)
						}
					}
				}
			})
			if !checked {
				t.Fatalf("iteration %d was never reached", at)
			}
		})
	}
}
