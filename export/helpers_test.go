package export

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/jarzyn/jarzyn/internal/ortlib"
	"github.com/jarzyn/jarzyn/models"
)

// needORT initialises ONNX Runtime and fails (never skips) the test when the
// library is missing: CI installs it.
func needORT(t testing.TB) {
	t.Helper()
	if _, err := ortlib.Init(""); err != nil {
		t.Fatalf("ONNX Runtime is required for this test: %v", err)
	}
}

// testGMM returns mixture parameters with well separated means and nonzero
// log-mass offsets.
func testGMM(t testing.TB, d, modes int, seed uint64) *models.Params {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	p, err := models.NewParams(models.Spec{Family: models.GMM, Dim: d, Modes: modes})
	if err != nil {
		t.Fatal(err)
	}
	a, z := p.Get("means").Data, p.Get("log_mass").Data
	for m := 0; m < modes; m++ {
		for k := 0; k < d; k++ {
			a[m*d+k] = 0.3 * rng.NormFloat64()
		}
		// modes along the first axis, like the paper's −10·e₁ and +6·e₁
		a[m*d] += -10 + 16*float64(m)/math.Max(1, float64(modes-1))
		z[m] = 0.8 * rng.NormFloat64()
	}
	return p
}

// testMLP returns perceptron parameters with a random nonzero last layer and
// a base mean and std away from 0 and 1.
func testMLP(t testing.TB, act models.Activation, d int, hidden []int, seed uint64) *models.Params {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 2))
	mean := make([]float64, d)
	for k := range mean {
		mean[k] = 0.5 * rng.NormFloat64()
	}
	spec := models.Spec{Family: models.MLP, Dim: d, Hidden: hidden, Activation: act, BaseMean: mean, BaseStd: 1.7}
	p, err := models.InitMLP(spec, rng)
	if err != nil {
		t.Fatal(err)
	}
	for i := range p.Tensors {
		t := &p.Tensors[i]
		scale := 0.0
		switch {
		case t.Name == fmt.Sprintf("w%d", len(hidden)):
			scale = 0.7 // the last layer, zero after InitMLP
		case t.Name[0] == 'b':
			scale = 0.3
		}
		for j := range t.Data {
			t.Data[j] += scale * rng.NormFloat64()
		}
	}
	return p
}

// testPoints draws n points: a third from the base Gaussian widened ×2, a
// third near the GMM means or base mean, a third uniform in a wide box.
func testPoints(p *models.Params, n int, seed uint64) []float64 {
	rng := rand.New(rand.NewPCG(seed, 3))
	d := p.Spec.Dim
	mean, std := baseOf(p.Spec)
	x := make([]float64, n*d)
	for i := 0; i < n; i++ {
		row := x[i*d : (i+1)*d]
		switch i % 3 {
		case 0:
			for k := range row {
				row[k] = mean[k] + 2*std*rng.NormFloat64()
			}
		case 1:
			center := mean
			if p.Spec.Family == models.GMM {
				m := rng.IntN(p.Spec.Modes)
				center = p.Get("means").Data[m*d : (m+1)*d]
			}
			for k := range row {
				row[k] = center[k] + 0.5*rng.NormFloat64()
			}
		case 2:
			for k := range row {
				row[k] = -12 + 20*rng.Float64()
			}
		}
	}
	return x
}

// reference evaluates models' float64 U and ∇ₓU at n points.
func reference(p *models.Params, x []float64, n int) (u, g []float64) {
	d := p.Spec.Dim
	u, g = make([]float64, n), make([]float64, n*d)
	for i := 0; i < n; i++ {
		u[i] = p.Energy(x[i*d:(i+1)*d], g[i*d:(i+1)*d])
	}
	return u, g
}
