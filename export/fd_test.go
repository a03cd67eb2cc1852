package export

import (
	"math"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// TestGradIsGradientOfEnergy checks the exported graph against itself: the
// "grad" output must be the derivative of the "energy" output, by central
// finite differences in float32 (step 1e-2; truncation and rounding keep the
// agreement to about 1e-3 of the gradient's scale).
func TestGradIsGradientOfEnergy(t *testing.T) {
	needORT(t)
	cases := []struct {
		name string
		p    *models.Params
	}{
		{"gmm/d2-m3", testGMM(t, 2, 3, 1)},
		{"gmm/d50-m2", testGMM(t, 50, 2, 2)},
		{"mlp/silu", testMLP(t, models.SiLU, 2, []int{16, 16}, 3)},
		{"mlp/softplus", testMLP(t, models.Softplus, 2, []int{16, 16}, 4)},
		{"mlp/tanh", testMLP(t, models.Tanh, 2, []int{16, 16}, 5)},
	}
	const (
		points = 12
		coords = 4 // coordinates probed per point
		h      = 1e-2
		tol    = 2e-3
	)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			model, err := Build(c.p, models.TrainingInfo{})
			if err != nil {
				t.Fatal(err)
			}
			d := c.p.Spec.Dim
			x := testPoints(c.p, points, 5)
			var probes [][2]int
			for i := 0; i < points; i++ {
				for j := 0; j < coords && j < d; j++ {
					probes = append(probes, [2]int{i, (i + 7*j) % d})
				}
			}
			worst := checkGradIsGradient(t, model, x, d, probes, h, tol)
			t.Logf("worst relative disagreement %.2e over %d probes", worst, len(probes))
		})
	}
}

// checkGradIsGradient evaluates model at the points x (rows of d values)
// and at x ± h·e_k for each probe (row, k), and reports every probe whose
// central difference of "energy" differs from "grad"_k by more than tol
// relative to the row's largest gradient entry (at least 1). It returns the
// worst relative disagreement.
func checkGradIsGradient(t *testing.T, model []byte, x []float64, d int, probes [][2]int, h, tol float64) float64 {
	t.Helper()
	var batch []float32
	for _, pr := range probes {
		for _, s := range []float64{0, h, -h} {
			for kk, v := range x[pr[0]*d : (pr[0]+1)*d] {
				if kk == pr[1] {
					v += s
				}
				batch = append(batch, float32(v))
			}
		}
	}
	n := len(batch) / d
	u, g, err := evaluate(model, batch, n, d)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for r, pr := range probes {
		k := pr[1]
		base, plus, minus := 3*r, 3*r+1, 3*r+2
		step := float64(batch[plus*d+k]) - float64(batch[minus*d+k]) // the float32 step actually taken
		fd := (float64(u[plus]) - float64(u[minus])) / step
		scale := 1.0
		for kk := 0; kk < d; kk++ {
			scale = math.Max(scale, math.Abs(float64(g[base*d+kk])))
		}
		e := math.Abs(fd-float64(g[base*d+k])) / scale
		worst = math.Max(worst, e)
		if e > tol {
			t.Errorf("probe %d coord %d: finite difference %.6g, grad %.6g (rel %.2g)", r, k, fd, g[base*d+k], e)
		}
	}
	return worst
}
