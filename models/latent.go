package models

import (
	"math"
	"path/filepath"
	"strings"
)

// LatentPath is where the latent model of the energy model file at path is
// written and looked for: model.onnx → model.latent.onnx.
func LatentPath(path string) string {
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".latent.onnx"
}

// Latent is the exact reduction of an MLP energy whose first layer is
// narrower than its input (H0 < d). The perceptron sees x only through
// x·W0, so with Q [d, r] an orthonormal basis of a space that holds the
// range of W0 (r = H0) and the split
//
//	x = μ0 + s·Qᵀ + p,  s = (x − μ0)·Q ∈ ℝʳ,  p·Q = 0,
//
// the energy separates:
//
//	U(x) = V(s) + |p|²/(2σ0²),  V(s) = |s|²/(2σ0²) + f̃(s),
//	∇ₓU(x) = ∇V(s)·Qᵀ + p/σ0²,
//
// where f̃ is the same perceptron with first layer R = Qᵀ·W0 [r, H0] and bias
// b0 + μ0·W0. One ULA step on x is then exactly one ULA step on s with V
// (noise ξ·Q, standard normal in ℝʳ) plus an independent linear step on p,
// p ← (1 − h/σ0²)·p + √(2h)·ξ⊥, whose K-step law is Gaussian in closed form:
// sampling in ℝʳ gives the same distribution as sampling in ℝᵈ, at a cost
// per step that no longer depends on d.
type Latent struct {
	// Params is the latent energy V: an MLP in dim r with base mean 0, the
	// same σ0, hidden widths and activation.
	Params *Params
	// Basis is Q, d×r row-major, with orthonormal columns.
	Basis []float64
	// Dim is d and Rank is r.
	Dim, Rank int
}

// Latent returns the reduction of an MLP whose first hidden layer is
// narrower than its input; ok is false for other models (mixtures, or
// H0 ≥ d, where nothing is saved, or a base with its own directions,
// Spec.BaseVectors, which does not separate along range(W0)).
func (p *Params) Latent() (l *Latent, ok bool) {
	s := p.Spec
	if s.Family != MLP || len(s.Hidden) == 0 || s.Hidden[0] >= s.Dim || s.BaseRank() > 0 {
		return nil, false
	}
	d, h := s.Dim, s.Hidden[0]
	w0, b0 := p.Tensors[0].Data, p.Tensors[1].Data
	q := orthonormalBasis(w0, d, h)
	r := h
	ls := s
	ls.Dim = r
	ls.BaseMean = nil
	lp, err := NewParams(ls)
	if err != nil {
		return nil, false
	}
	for i := 2; i < len(p.Tensors); i++ {
		copy(lp.Tensors[i].Data, p.Tensors[i].Data)
	}
	// R = Qᵀ·W0
	rw := lp.Tensors[0].Data
	for a := 0; a < r; a++ {
		for j := 0; j < h; j++ {
			sum := 0.0
			for k := 0; k < d; k++ {
				sum += q[k*r+a] * w0[k*h+j]
			}
			rw[a*h+j] = sum
		}
	}
	// b0 + μ0·W0
	mu := s.Mu0()
	rb := lp.Tensors[1].Data
	for j := 0; j < h; j++ {
		sum := b0[j]
		for k := 0; k < d; k++ {
			sum += mu[k] * w0[k*h+j]
		}
		rb[j] = sum
	}
	return &Latent{Params: lp, Basis: q, Dim: d, Rank: r}, true
}

// Split returns s = (x − μ0)·Q and p = x − μ0 − s·Qᵀ for one point x of the
// full model with base mean mu.
func (l *Latent) Split(x, mu []float64) (s, p []float64) {
	d, r := l.Dim, l.Rank
	s, p = make([]float64, r), make([]float64, d)
	for k := 0; k < d; k++ {
		p[k] = x[k] - mu[k]
	}
	for a := 0; a < r; a++ {
		sum := 0.0
		for k := 0; k < d; k++ {
			sum += p[k] * l.Basis[k*r+a]
		}
		s[a] = sum
	}
	for k := 0; k < d; k++ {
		sum := 0.0
		for a := 0; a < r; a++ {
			sum += s[a] * l.Basis[k*r+a]
		}
		p[k] -= sum
	}
	return s, p
}

// orthonormalBasis returns Q [d, n] (row-major) with orthonormal columns
// whose span holds the range of a [d, n] (row-major, n ≤ d): the first n
// columns of the product of Householder reflections that triangularise a.
// A rank-deficient a still gives n orthonormal columns.
func orthonormalBasis(a []float64, d, n int) []float64 {
	w := append([]float64(nil), a...)
	vs := make([][]float64, n)
	for k := 0; k < n; k++ {
		norm := 0.0
		for i := k; i < d; i++ {
			norm += w[i*n+k] * w[i*n+k]
		}
		norm = math.Sqrt(norm)
		v := make([]float64, d-k)
		if norm == 0 {
			// zero column: any reflection keeps the others triangular; use
			// the one that swaps nothing but keeps Q orthonormal
			v[0] = 1
		} else {
			alpha := -norm
			if w[k*n+k] < 0 {
				alpha = norm
			}
			for i := k; i < d; i++ {
				v[i-k] = w[i*n+k]
			}
			v[0] -= alpha
		}
		vn := 0.0
		for _, t := range v {
			vn += t * t
		}
		vn = math.Sqrt(vn)
		for i := range v {
			v[i] /= vn
		}
		vs[k] = v
		// w[k:, k:] −= 2 v (vᵀ w[k:, k:])
		for j := k; j < n; j++ {
			dot := 0.0
			for i := k; i < d; i++ {
				dot += v[i-k] * w[i*n+j]
			}
			for i := k; i < d; i++ {
				w[i*n+j] -= 2 * v[i-k] * dot
			}
		}
	}
	// Q = H_0 ⋯ H_{n−1} · I[:, :n]
	q := make([]float64, d*n)
	for j := 0; j < n; j++ {
		q[j*n+j] = 1
	}
	for k := n - 1; k >= 0; k-- {
		v := vs[k]
		for j := 0; j < n; j++ {
			dot := 0.0
			for i := k; i < d; i++ {
				dot += v[i-k] * q[i*n+j]
			}
			for i := k; i < d; i++ {
				q[i*n+j] -= 2 * v[i-k] * dot
			}
		}
	}
	return q
}
