package train

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

func testParams(t *testing.T, spec models.Spec, seed uint64) *models.Params {
	t.Helper()
	p, err := models.NewParams(spec)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for k := range p.Tensors {
		for i := range p.Tensors[k].Data {
			p.Tensors[k].Data[i] = 0.7 * rng.NormFloat64()
		}
	}
	return p
}

var testSpecs = []struct {
	name string
	spec models.Spec
}{
	{"gmm_d2_m3", models.Spec{Family: models.GMM, Dim: 2, Modes: 3}},
	{"gmm_d50_m2", models.Spec{Family: models.GMM, Dim: 50, Modes: 2}},
	{"mlp_silu", models.Spec{Family: models.MLP, Dim: 3, Hidden: []int{8, 5}, Activation: models.SiLU, BaseStd: 1.5, BaseMean: []float64{0.5, -1, 0.2}}},
	{"mlp_softplus", models.Spec{Family: models.MLP, Dim: 3, Hidden: []int{6}, Activation: models.Softplus, BaseStd: 0.8}},
	{"mlp_tanh", models.Spec{Family: models.MLP, Dim: 4, Hidden: []int{7, 7}, Activation: models.Tanh, BaseStd: 1}},
}

// TestEvalMatchesReference checks the gorgonia graph's U and ∇ₓU against the
// float64 reference implementation in models, in both dtypes.
func TestEvalMatchesReference(t *testing.T) {
	for _, tc := range testSpecs {
		t.Run(tc.name, func(t *testing.T) {
			p := testParams(t, tc.spec, 3)
			n, d := 17, tc.spec.Dim
			rng := rand.New(rand.NewPCG(9, 9))
			x := make([]float64, n*d)
			for i := range x {
				x[i] = 2 * rng.NormFloat64()
			}
			for _, dt := range []struct {
				name string
				tol  float64
			}{{"float64", 1e-12}, {"float32", 2e-5}} {
				u, g, err := EvalEnergy(p, x, n, dt.name)
				if err != nil {
					t.Fatal(err)
				}
				ref := make([]float64, d)
				for i := 0; i < n; i++ {
					ur := p.Energy(x[i*d:(i+1)*d], ref)
					if e := math.Abs(u[i]-ur) / math.Max(1, math.Abs(ur)); e > dt.tol {
						t.Errorf("%s U[%d] = %v, reference %v (rel err %.3g)", dt.name, i, u[i], ur, e)
					}
					for k := 0; k < d; k++ {
						if e := math.Abs(g[i*d+k]-ref[k]) / math.Max(1, math.Abs(ref[k])); e > dt.tol {
							t.Errorf("%s grad[%d][%d] = %v, reference %v", dt.name, i, k, g[i*d+k], ref[k])
						}
					}
				}
			}
		})
	}
}
