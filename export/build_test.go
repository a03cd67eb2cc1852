package export

import (
	"math"
	"strings"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

func TestBuildParity(t *testing.T) {
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
		{"mlp/silu-d50", testMLP(t, models.SiLU, 50, []int{16, 16}, 6)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			model, err := Build(c.p, models.TrainingInfo{Method: "jarzynski", StepSize: 0.1, LogZEstimate: math.NaN()})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []int{1, 7, 1024} {
				x := testPoints(c.p, n, uint64(n))
				u, g := reference(c.p, x, n)
				eErr, gErr, err := Parity(model, x, n, u, g)
				if err != nil {
					t.Fatalf("batch %d: %v", n, err)
				}
				t.Logf("batch %4d: energy %.2e, grad %.2e", n, eErr, gErr)
				if eErr > Tolerance || gErr > Tolerance {
					t.Errorf("batch %d: relative error energy %.3g, grad %.3g > %g", n, eErr, gErr, Tolerance)
				}
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	good := func() *models.Params { return testGMM(t, 2, 2, 1) }
	cases := []struct {
		name string
		p    func() *models.Params
		info models.TrainingInfo
		want string
	}{
		{"nil params", func() *models.Params { return nil }, models.TrainingInfo{}, "no parameters"},
		{"bad spec", func() *models.Params { p := good(); p.Spec.Dim = 0; return p }, models.TrainingInfo{}, "dim must be > 0"},
		{"missing tensor", func() *models.Params { p := good(); p.Tensors = p.Tensors[:1]; return p }, models.TrainingInfo{}, "parameter tensors"},
		{"wrong shape", func() *models.Params { p := good(); p.Tensors[0].Shape = []int{2, 3}; return p }, models.TrainingInfo{}, "want means"},
		{"nan weight", func() *models.Params { p := good(); p.Tensors[1].Data[0] = math.NaN(); return p }, models.TrainingInfo{}, "log_mass[0] is NaN"},
		{"gmm base mean length", func() *models.Params { p := good(); p.Spec.BaseMean = []float64{1}; return p }, models.TrainingInfo{}, "base_mean"},
		{"gmm base std", func() *models.Params { p := good(); p.Spec.BaseStd = -1; return p }, models.TrainingInfo{}, "base_std"},
		{"mlp activation", func() *models.Params {
			p := testMLP(t, models.Tanh, 2, []int{4}, 1)
			p.Spec.Activation = "relu"
			return p
		}, models.TrainingInfo{}, "activation"},
		{"negative step", good, models.TrainingInfo{StepSize: -1}, "step size"},
		{"inf log z", good, models.TrainingInfo{LogZEstimate: math.Inf(1)}, "log Z"},
		{"range", good, models.TrainingInfo{DataMin: 1, DataMax: 0}, "data range"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Build(c.p(), c.info)
			if err == nil || !strings.HasPrefix(err.Error(), "export: ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Build error = %v, want an export: error mentioning %q", err, c.want)
			}
		})
	}
}
