package export

import (
	"math"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// TestBuildParityLargePreactivations drives every activation deep into
// saturation (first-layer weights ×10), where a naive softplus
// log(1 + eˣ) overflows in float32 and σ(z)(1 − σ(z)) underflows.
func TestBuildParityLargePreactivations(t *testing.T) {
	needORT(t)
	for _, act := range []models.Activation{models.SiLU, models.Softplus, models.Tanh} {
		t.Run(string(act), func(t *testing.T) {
			p := testMLP(t, act, 2, []int{16, 16}, 7)
			for _, name := range []string{"w0", "w1"} {
				for j := range p.Get(name).Data {
					p.Get(name).Data[j] *= 10
				}
			}
			model, err := Build(p, models.TrainingInfo{LogZEstimate: math.NaN()})
			if err != nil {
				t.Fatal(err)
			}
			const n = 512
			x := testPoints(p, n, 11)
			u, g := reference(p, x, n)
			eErr, gErr, err := Parity(model, x, n, u, g)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("energy %.2e, grad %.2e", eErr, gErr)
			if eErr > Tolerance || gErr > Tolerance {
				t.Errorf("relative error energy %.3g, grad %.3g > %g", eErr, gErr, Tolerance)
			}
		})
	}
}

// TestSoftplusNoOverflow checks ONNX Runtime's Softplus far beyond float32's
// exp overflow (eˣ = +Inf for x > 88.7): the graph relies on its stable form.
func TestSoftplusNoOverflow(t *testing.T) {
	needORT(t)
	p := testMLP(t, models.Softplus, 1, []int{1}, 1)
	copy(p.Get("w0").Data, []float64{1})
	copy(p.Get("b0").Data, []float64{0})
	copy(p.Get("w1").Data, []float64{1})
	copy(p.Get("b1").Data, []float64{0})
	p.Spec.BaseStd = 1e3 // so that U ≈ softplus(x)
	model, err := Build(p, models.TrainingInfo{})
	if err != nil {
		t.Fatal(err)
	}
	x := []float64{-500, -90, -20, 0, 20, 90, 500}
	u, g := reference(p, x, len(x))
	eErr, gErr, err := Parity(model, x, len(x), u, g)
	if err != nil {
		t.Fatal(err)
	}
	if eErr > Tolerance || gErr > Tolerance {
		t.Errorf("relative error energy %.3g, grad %.3g > %g", eErr, gErr, Tolerance)
	}
}
