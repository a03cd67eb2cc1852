package models

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// The base term of the mlp and conv families (docs/METHOD.md §3, "Neural
// energies", and §8, "A data-fitted Gaussian base"): ½(x − μ0)ᵀΣ⁻¹(x − μ0)
// with Σ = σ0²·I + V·diag(λ)·Vᵀ, V the k orthonormal rows of BaseVectors and
// λ = BaseVariances (k = 0: Σ = σ0²·I). With c_j = ⟨v_j, x − μ0⟩ and the
// precision weights w_j = 1/(λ_j + σ0²) − 1/σ0²,
//
//	Σ⁻¹ = I/σ0² + Σ_j w_j·v_j·v_jᵀ,
//	½(x − μ0)ᵀΣ⁻¹(x − μ0) = |x − μ0|²/(2σ0²) + ½·Σ_j w_j·c_j²,
//	log det Σ = d·log σ0² + Σ_j log(1 + λ_j/σ0²),
//	Σ^{1/2} = σ0·I + V·diag(√(λ + σ0²) − σ0)·Vᵀ,
//
// each O(d·k) per point.

// orthonormalTol is how far from orthonormal Validate lets BaseVectors be.
const orthonormalTol = 1e-6

// BaseRank is k, the number of base directions with their own variance
// (len(BaseVariances)); 0 for an isotropic base.
func (s Spec) BaseRank() int { return len(s.BaseVariances) }

// validateBase checks BaseVectors and BaseVariances: k ≤ Dim entries of
// λ, finite and ≥ 0, k×Dim finite vector entries, rows orthonormal.
func (s Spec) validateBase() error {
	k := len(s.BaseVariances)
	if k == 0 && len(s.BaseVectors) == 0 {
		return nil
	}
	if k > s.Dim {
		return fmt.Errorf("models: base_variances has %d entries, more than dim=%d", k, s.Dim)
	}
	if len(s.BaseVectors) != k*s.Dim {
		return fmt.Errorf("models: base_vectors must have %d×%d = %d entries (len(base_variances)×dim), got %d", k, s.Dim, k*s.Dim, len(s.BaseVectors))
	}
	for j, l := range s.BaseVariances {
		if !(l >= 0) || math.IsInf(l, 0) {
			return fmt.Errorf("models: base_variances[%d] must be a finite number ≥ 0, got %v", j, l)
		}
	}
	for i, v := range s.BaseVectors {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("models: base_vectors[%d] is %v", i, v)
		}
	}
	d := s.Dim
	for a := 0; a < k; a++ {
		va := s.BaseVectors[a*d : (a+1)*d]
		for b := 0; b <= a; b++ {
			dot := 0.0
			for i, v := range s.BaseVectors[b*d : (b+1)*d] {
				dot += v * va[i]
			}
			want := 0.0
			if a == b {
				want = 1
			}
			if math.Abs(dot-want) > orthonormalTol {
				return fmt.Errorf("models: base_vectors rows %d and %d have dot product %v, want %v (rows must be orthonormal)", a, b, dot, want)
			}
		}
	}
	return nil
}

// BasePrecisionWeights returns w_j = 1/(λ_j + σ0²) − 1/σ0² for each base
// direction: Σ⁻¹ = I/σ0² + Σ_j w_j·v_j·v_jᵀ.
func (s Spec) BasePrecisionWeights() []float64 {
	e := s.BaseStd * s.BaseStd
	w := make([]float64, len(s.BaseVariances))
	for j, l := range s.BaseVariances {
		w[j] = -l / (e * (l + e))
	}
	return w
}

// BaseSqrtWeights returns √(λ_j + σ0²) − σ0 for each base direction:
// Σ^{1/2} = σ0·I + Σ_j (√(λ_j + σ0²) − σ0)·v_j·v_jᵀ.
func (s Spec) BaseSqrtWeights() []float64 {
	e := s.BaseStd * s.BaseStd
	w := make([]float64, len(s.BaseVariances))
	for j, l := range s.BaseVariances {
		w[j] = math.Sqrt(l+e) - s.BaseStd
	}
	return w
}

// BaseLogZ is log ∫ exp(−½(x − μ0)ᵀΣ⁻¹(x − μ0)) dx = (d/2)·log 2π + ½·log det Σ,
// written (d/2)·log(2πσ0²) + ½·Σ_j log(1 + λ_j/σ0²) so that an isotropic base
// gives (d/2)·log(2πσ0²) exactly.
func (s Spec) BaseLogZ() float64 {
	e := s.BaseStd * s.BaseStd
	z := 0.5 * float64(s.Dim) * math.Log(2*math.Pi*e)
	for _, l := range s.BaseVariances {
		z += 0.5 * math.Log1p(l/e)
	}
	return z
}

// BaseSample writes μ0 + Σ^{1/2}·ξ into out (length Dim) for a standard
// normal ξ (length Dim): an exact sample of the base N(μ0, Σ). An isotropic
// base gives μ0 + σ0·ξ.
func (s Spec) BaseSample(xi, out []float64) {
	mu := s.Mu0()
	for i := range out {
		out[i] = mu[i] + s.BaseStd*xi[i]
	}
	d := s.Dim
	for j, w := range s.BaseSqrtWeights() {
		v := s.BaseVectors[j*d : (j+1)*d]
		c := 0.0
		for i, vi := range v {
			c += vi * xi[i]
		}
		c *= w
		for i, vi := range v {
			out[i] += c * vi
		}
	}
}

// baseEnergy is the base term ½(x − μ0)ᵀΣ⁻¹(x − μ0) of the mlp and conv
// families at x; when grad is non-nil (length Dim) it writes the term's
// gradient Σ⁻¹(x − μ0) into it.
func (s Spec) baseEnergy(x, grad []float64) (u float64) {
	mu := s.Mu0()
	inv := 1 / (s.BaseStd * s.BaseStd)
	for k := 0; k < s.Dim; k++ {
		t := x[k] - mu[k]
		u += 0.5 * t * t * inv
		if grad != nil {
			grad[k] = t * inv
		}
	}
	d := s.Dim
	for j, w := range s.BasePrecisionWeights() {
		v := s.BaseVectors[j*d : (j+1)*d]
		c := 0.0
		for i, vi := range v {
			c += vi * (x[i] - mu[i])
		}
		u += 0.5 * w * c * c
		if grad != nil {
			for i, vi := range v {
				grad[i] += w * c * vi
			}
		}
	}
	return u
}

// RandomOrthonormal returns k orthonormal rows of length d (k ≤ d), row j
// at [j·d, (j+1)·d): Gaussian draws from rng made orthonormal by
// Gram–Schmidt (two passes). They serve as random principal directions of a
// PCA base (Spec.BaseVectors), e.g. for checks against dense references.
func RandomOrthonormal(rng *rand.Rand, k, d int) []float64 {
	v := make([]float64, k*d)
	for j := 0; j < k; j++ {
		row := v[j*d : (j+1)*d]
		for i := range row {
			row[i] = rng.NormFloat64()
		}
		for pass := 0; pass < 2; pass++ {
			for b := 0; b < j; b++ {
				prev := v[b*d : (b+1)*d]
				dot := 0.0
				for i := range row {
					dot += row[i] * prev[i]
				}
				for i := range row {
					row[i] -= dot * prev[i]
				}
			}
		}
		n := 0.0
		for _, x := range row {
			n += x * x
		}
		for i := range row {
			row[i] /= math.Sqrt(n)
		}
	}
	return v
}
