package train

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/mat"

	blasimpl "github.com/jarzyn/jarzyn/internal/blas"
	"github.com/jarzyn/jarzyn/models"
)

// fitPCABase is the Gaussian base N(μ, Σ) fitted to data (n×d) by
// model.base_fit: pca (docs/METHOD.md §8, "A data-fitted Gaussian base"):
// μ the data mean, and Σ = ε·I + Σ_{j<k} s_j·v_j·v_jᵀ with (s_j, v_j) the k
// largest eigenpairs of the sample covariance C = (1/n)·Σ_i (x_i − μ)(x_i − μ)ᵀ.
// Along v_j the base variance is s_j + ε, elsewhere ε: the top-k part of
// C + ε·I. It returns μ, the k×d rows v_j (largest first) and λ_j = s_j
// (negative rounding noise clipped to 0). σ0 = √ε completes the Spec.
func fitPCABase(data []float64, d, k int, eps float64) (mu, vectors, variances []float64, err error) {
	n := len(data) / d
	if n < 2 || k < 1 || k > d {
		return nil, nil, nil, fmt.Errorf("train: base_fit pca needs at least 2 data points and 1 ≤ base_rank ≤ dim=%d, got %d points and rank %d", d, n, k)
	}
	mu = make([]float64, d)
	for i := 0; i < n; i++ {
		for j, v := range data[i*d : (i+1)*d] {
			mu[j] += v
		}
	}
	for j := range mu {
		mu[j] /= float64(n)
	}
	centred := make([]float64, len(data))
	for i := 0; i < n; i++ {
		for j, v := range data[i*d : (i+1)*d] {
			centred[i*d+j] = v - mu[j]
		}
	}
	cov := make([]float64, d*d)
	gemmTN(d, d, n, centred, centred, cov)
	for a := 0; a < d; a++ {
		for b := 0; b < a; b++ {
			// exact symmetry for the eigensolver
			v := 0.5 * (cov[a*d+b] + cov[b*d+a]) / float64(n)
			cov[a*d+b], cov[b*d+a] = v, v
		}
		cov[a*d+a] /= float64(n)
	}
	var es mat.EigenSym
	if !es.Factorize(mat.NewSymDense(d, cov), true) {
		return nil, nil, nil, fmt.Errorf("train: base_fit pca: the eigendecomposition of the %d×%d data covariance did not converge", d, d)
	}
	vals := es.Values(nil) // ascending
	var vecs mat.Dense
	es.VectorsTo(&vecs)
	vectors = make([]float64, k*d)
	variances = make([]float64, k)
	for j := 0; j < k; j++ {
		col := d - 1 - j
		variances[j] = math.Max(0, vals[col])
		for i := 0; i < d; i++ {
			vectors[j*d+i] = vecs.At(i, col)
		}
	}
	return mu, vectors, variances, nil
}

// applyPCABase fits the base of model.base_fit pca to data and writes it
// into spec: BaseMean μ, BaseStd √ε, BaseVectors and BaseVariances.
func applyPCABase(spec *models.Spec, data []float64, k int, eps float64) error {
	mu, v, lam, err := fitPCABase(data, spec.Dim, k, eps)
	if err != nil {
		return err
	}
	spec.BaseMean, spec.BaseStd, spec.BaseVectors, spec.BaseVariances = mu, math.Sqrt(eps), v, lam
	return nil
}

// lowRankBase is the part of the base term that the directions of
// Spec.BaseVectors add to the isotropic |x − μ0|²/(2σ0²): ½·Σ_j w_j·c_j² with
// c_j = ⟨v_j, x − μ0⟩ and w_j = 1/(λ_j + σ0²) − 1/σ0² (models.Spec.BasePrecisionWeights),
// and its gradient Σ_j w_j·c_j·v_j; two GEMMs per batch of points.
type lowRankBase struct {
	d, k int
	v    []float64 // k×d
	w    []float64 // k
}

// newLowRankBase returns spec's low-rank base part, or nil when it has none.
func newLowRankBase(spec models.Spec) *lowRankBase {
	if spec.Family == models.GMM || spec.BaseRank() == 0 {
		return nil
	}
	return &lowRankBase{d: spec.Dim, k: spec.BaseRank(), v: spec.BaseVectors, w: spec.BasePrecisionWeights()}
}

// addLowRank adds ½·Σ_j w_j·c_j² to u (one per row of x) and, when grad is
// non-nil, Σ_j w_j·c_j·v_j to grad's rows, for the rows of x and the base
// mean mu (nil: 0). It runs on the single-goroutine BLAS: addQuadratic
// already spreads the rows over cores.
func addLowRank[T Float](l *lowRankBase, x []T, mu []float64, u []float64, grad []T) {
	n, d, k := len(u), l.d, l.k
	if n == 0 {
		return
	}
	r := make([]float64, n*d)
	for i := 0; i < n; i++ {
		for j, v := range x[i*d : (i+1)*d] {
			t := float64(v)
			if mu != nil {
				t -= mu[j]
			}
			r[i*d+j] = t
		}
	}
	c := make([]float64, n*k)
	bl := blasimpl.Serial()
	bl.Dgemm(blas.NoTrans, blas.Trans, n, k, d, 1, r, d, l.v, d, 0, c, k)
	for i := 0; i < n; i++ {
		s := 0.0
		for j, w := range l.w {
			cij := c[i*k+j]
			s += w * cij * cij
			c[i*k+j] = w * cij
		}
		u[i] += 0.5 * s
	}
	if grad == nil {
		return
	}
	bl.Dgemm(blas.NoTrans, blas.NoTrans, n, d, k, 1, c, k, l.v, d, 0, r, d)
	for i, v := range r {
		grad[i] += T(v)
	}
}

// rowsOrNil is g[lo:hi], or nil when g is nil.
func rowsOrNil[T any](g []T, lo, hi int) []T {
	if g == nil {
		return nil
	}
	return g[lo:hi]
}

// sameSpec reports a checkpoint's model spec that is not the configured
// one. The fitted base directions (BaseVectors, BaseVariances, and with
// them the fitted μ0 and σ0) are left out of the comparison when the
// configured spec has them too: a checkpoint keeps its own fit.
func sameSpec(ckpt, cfg models.Spec) error {
	a, b := ckpt, cfg
	if a.BaseRank() > 0 && b.BaseRank() > 0 {
		if a.BaseRank() != b.BaseRank() {
			return fmt.Errorf("train: the checkpoint's base has rank %d, the config's model.base_rank is %d", a.BaseRank(), b.BaseRank())
		}
		a.BaseVectors, a.BaseVariances, a.BaseMean, a.BaseStd = nil, nil, nil, 0
		b.BaseVectors, b.BaseVariances, b.BaseMean, b.BaseStd = nil, nil, nil, 0
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		return fmt.Errorf("train: checkpoint model %+v does not match the config's %+v", a, b)
	}
	return nil
}
