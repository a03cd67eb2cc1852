package export

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// withBase gives p a low-rank base of rank k (Spec.BaseVectors: random
// orthonormal rows by Gram–Schmidt; variances from 0.5 to 20) and a small
// σ0, as model.base_fit pca fits one.
func withBase(p *models.Params, k int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 8))
	d := p.Spec.Dim
	v := models.RandomOrthonormal(rng, k, d)
	lam := make([]float64, k)
	for j := range lam {
		lam[j] = 0.5 + 19.5*rng.Float64()
	}
	p.Spec.BaseVectors, p.Spec.BaseVariances, p.Spec.BaseStd = v, lam, 0.3
}

// The exported energy graph of an MLP and a conv energy with a low-rank
// base (model.base_fit pca) matches the float64 reference, its energy
// including ½(x − μ0)ᵀΣ⁻¹(x − μ0) and its gradient Σ⁻¹(x − μ0); the fused
// graphs agree with it; no latent model is offered (the base does not
// separate along the first layer's range).
func TestPCABaseExportParity(t *testing.T) {
	needORT(t)
	mlp := testMLP(t, models.SiLU, 20, []int{8, 6}, 5)
	withBase(mlp, 4, 1)
	conv := testConv(t, smallConv([]int{1, 6, 6}, []models.ConvLayer{{Out: 3, Kernel: 3, Stride: 2, Pad: 1, Activation: models.SiLU}}, []int{5}, models.Tanh, 0), 6)
	withBase(conv, 5, 2)
	for _, tc := range []struct {
		name string
		p    *models.Params
	}{{"mlp", mlp}, {"conv", conv}} {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if err := p.Check(); err != nil {
				t.Fatal(err)
			}
			model, err := Build(p, models.TrainingInfo{Method: "test", LogZEstimate: math.NaN()})
			if err != nil {
				t.Fatal(err)
			}
			const n = 120
			d := p.Spec.Dim
			x := testPoints(p, n, 9)
			refU, refG := reference(p, x, n)
			eErr, gErr, err := Parity(model, x, n, refU, refG)
			if err != nil {
				t.Fatal(err)
			}
			if !(eErr <= Tolerance && gErr <= Tolerance) {
				t.Fatalf("max relative error energy %.3g, grad %.3g, tolerance %g", eErr, gErr, Tolerance)
			}
			// the base's own term is most of the energy: a graph without it fails
			iso := p.Clone()
			iso.Spec.BaseVectors, iso.Spec.BaseVariances = nil, nil
			isoU, _ := reference(iso, x, n)
			off := 0.0
			for i := range isoU {
				off = math.Max(off, math.Abs(isoU[i]-refU[i])/math.Max(1, math.Abs(refU[i])))
			}
			if off < 100*Tolerance {
				t.Fatalf("the low-rank term changes U by at most %.3g (relative): the test would not see it", off)
			}
			if _, ok := p.Latent(); ok {
				t.Errorf("a latent reduction is offered for a low-rank base")
			}
			if tc.name != "mlp" {
				return
			}
			fused, err := BuildFused(p)
			if err != nil {
				t.Fatal(err)
			}
			gradOnly, err := BuildFusedGrad(p)
			if err != nil {
				t.Fatal(err)
			}
			x32 := toF32(x)
			e1, g1 := runGraph(t, fused, x32, n, d, true)
			if err := compareTo(e1, g1, toF32(refU), toF32(refG), n, d, 1e-4); err != nil {
				t.Errorf("fused against float64 reference: %v", err)
			}
			g2 := runOutputs(t, gradOnly, x32, n, d, true, models.OutputGrad)[0]
			if err := compareTo(e1, g2, e1, g1, n, d, 0); err != nil {
				t.Errorf("gradient-only graph against the fused graph: %v", err)
			}
		})
	}
}
