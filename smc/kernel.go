package smc

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// Dgemm is the BLAS matrix product the preconditioner runs on, with the
// signature of gonum's blas.Float64Level3.Dgemm.
type Dgemm func(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int)

// Preconditioner is the fixed symmetric positive-definite matrix of the
// preconditioned Langevin kernel (docs/METHOD.md §8, "Preconditioned ULA"),
// in low-rank-plus-scalar form
//
//	M = ε·I + V·diag(λ)·Vᵀ,  M^{1/2} = √ε·I + V·diag(√(λ + ε) − √ε)·Vᵀ,
//
// V having k orthonormal columns (held as the k rows v_j of a k×d matrix)
// and λ_j ≥ 0. Mg, M^{1/2}ξ and gᵀMg cost O(d·k) per walker: one product
// with V for a chunk of walkers at a time.
type Preconditioner struct {
	eps, sqrtEps float64
	v            []float64 // k×d
	lambda       []float64 // λ_j
	sqrtW        []float64 // √(λ_j + ε) − √ε
	d, k         int
	gemm         Dgemm
}

// NewPreconditioner returns M = ε·I + Σ_j λ_j·v_j·v_jᵀ in d dimensions for
// the k = len(lambda) rows v_j of v (k×d, row-major, orthonormal: the
// caller's responsibility; models.Spec.Validate checks a base's). The
// matrix products run on gonum's BLAS unless SetGemm names another.
func NewPreconditioner(d int, eps float64, v, lambda []float64) (*Preconditioner, error) {
	k := len(lambda)
	if d <= 0 || !(eps > 0) || math.IsInf(eps, 0) {
		return nil, fmt.Errorf("smc: preconditioner needs d > 0 and a finite ε > 0, got d=%d ε=%v", d, eps)
	}
	if len(v) != k*d {
		return nil, fmt.Errorf("smc: preconditioner vectors have %d values, want %d×%d", len(v), k, d)
	}
	m := &Preconditioner{eps: eps, sqrtEps: math.Sqrt(eps), v: v, lambda: lambda, sqrtW: make([]float64, k), d: d, k: k, gemm: gonum.Implementation{}.Dgemm}
	for j, l := range lambda {
		if !(l >= 0) || math.IsInf(l, 0) {
			return nil, fmt.Errorf("smc: preconditioner λ[%d] must be finite and ≥ 0, got %v", j, l)
		}
		m.sqrtW[j] = math.Sqrt(l+eps) - m.sqrtEps
	}
	return m, nil
}

// SetGemm makes the preconditioner's products run on f (for example the
// BLAS the trainer links); it is called once per chunk of walkers, from
// several goroutines at once.
func (m *Preconditioner) SetGemm(f Dgemm) { m.gemm = f }

// Dim is d.
func (m *Preconditioner) Dim() int { return m.d }

// Apply writes M·g into out (both length d).
func (m *Preconditioner) Apply(g, out []float64) {
	c := make([]float64, m.k)
	m.project(g, 1, c)
	for i, v := range g {
		out[i] = m.eps * v
	}
	for j, cj := range c {
		a := m.lambda[j] * cj
		for i, vi := range m.v[j*m.d : (j+1)*m.d] {
			out[i] += a * vi
		}
	}
}

// ApplySqrt writes M^{1/2}·ξ into out (both length d).
func (m *Preconditioner) ApplySqrt(xi, out []float64) {
	c := make([]float64, m.k)
	m.project(xi, 1, c)
	for i, v := range xi {
		out[i] = m.sqrtEps * v
	}
	for j, cj := range c {
		a := m.sqrtW[j] * cj
		for i, vi := range m.v[j*m.d : (j+1)*m.d] {
			out[i] += a * vi
		}
	}
}

// Quad is gᵀMg = ε|g|² + Σ_j λ_j⟨v_j, g⟩².
func (m *Preconditioner) Quad(g []float64) float64 {
	c := make([]float64, m.k)
	m.project(g, 1, c)
	return m.quad(g, c)
}

func (m *Preconditioner) quad(g, c []float64) float64 {
	s := 0.0
	for _, v := range g {
		s += v * v
	}
	s *= m.eps
	for j, cj := range c {
		s += m.lambda[j] * cj * cj
	}
	return s
}

// project writes C = R·Vᵀ (rows×k) for rows×d values R.
func (m *Preconditioner) project(r []float64, rows int, c []float64) {
	if m.k == 0 || rows == 0 {
		return
	}
	m.gemm(blas.NoTrans, blas.Trans, rows, m.k, m.d, 1, r, m.d, m.v, m.d, 0, c, m.k)
}

// pcScratch is one chunk's working memory for the preconditioned kernel.
type pcScratch struct {
	r []float64 // 2·ChunkWalkers×d: gradients (or g0) then noise (or g1)
	c []float64 // 2·ChunkWalkers×k: their projections
	a []float64 // ChunkWalkers×k: low-rank coefficients of the move
	y []float64 // ChunkWalkers×d: the low-rank part of the move
}

func newPCScratch(d, k int) *pcScratch {
	return &pcScratch{r: make([]float64, 2*ChunkWalkers*d), c: make([]float64, 2*ChunkWalkers*k),
		a: make([]float64, ChunkWalkers*k), y: make([]float64, ChunkWalkers*d)}
}

// moveRows moves n walkers (rows of x, cached gradients g) by one
// preconditioned ULA step
//
//	x ← x − h·M·g + √(2h)·M^{1/2}·ξ
//	  = x − hε·g + √(2hε)·ξ + V·[−h·λ ⊙ (Vᵀg) + √(2h)·(√(λ + ε) − √ε) ⊙ (Vᵀξ)],
//
// ξ drawn row by row from rng.NormFloat64.
func moveRows[T Float](m *Preconditioner, x, g []T, n int, h float64, rng *rand.Rand, s *pcScratch) {
	d, k := m.d, m.k
	gr, xi := s.r[:n*d], s.r[n*d:2*n*d]
	for i, v := range g[:n*d] {
		gr[i] = float64(v)
	}
	for i := range xi {
		xi[i] = rng.NormFloat64()
	}
	s2h := math.Sqrt(2 * h)
	if k > 0 {
		c := s.c[:2*n*k]
		m.project(s.r[:2*n*d], 2*n, c)
		cg, cx := c[:n*k], c[n*k:]
		a := s.a[:n*k]
		for i := 0; i < n; i++ {
			for j := 0; j < k; j++ {
				a[i*k+j] = -h*m.lambda[j]*cg[i*k+j] + s2h*m.sqrtW[j]*cx[i*k+j]
			}
		}
		m.gemm(blas.NoTrans, blas.NoTrans, n, d, k, 1, a, k, m.v, d, 0, s.y[:n*d], d)
	}
	he, se := h*m.eps, s2h*m.sqrtEps
	for i := range gr {
		v := float64(x[i]) - he*gr[i] + se*xi[i]
		if k > 0 {
			v += s.y[i]
		}
		x[i] = T(v)
	}
}

// logRatioRows writes, for n walkers, the log-weight increment of the
// preconditioned kernel (PreconditionedIncrement) into out, from the rows
// of x0, x1, g0, g1 and the energies u0, u1.
func logRatioRows[T Float](m *Preconditioner, h float64, u0, u1 []float64, x0, x1, g0, g1 []T, n int, s *pcScratch, out []float64) {
	d, k := m.d, m.k
	r0, r1 := s.r[:n*d], s.r[n*d:2*n*d]
	for i := 0; i < n*d; i++ {
		r0[i], r1[i] = float64(g0[i]), float64(g1[i])
	}
	c := s.c[:2*n*k]
	m.project(s.r[:2*n*d], 2*n, c)
	for i := 0; i < n; i++ {
		a, b := r0[i*d:(i+1)*d], r1[i*d:(i+1)*d]
		dot := 0.0
		for j := range a {
			dot += (float64(x1[i*d+j]) - float64(x0[i*d+j])) * (a[j] + b[j])
		}
		q0, q1 := m.quad(a, c[i*k:(i+1)*k]), m.quad(b, c[(n+i)*k:(n+i+1)*k])
		out[i] = -(u1[i] - u0[i]) + 0.5*dot - 0.25*h*(q1-q0)
	}
}

// PreconditionedAlpha is α(x, y) = U(x) + ½⟨y − x, g⟩ + (h/4)·gᵀMg for
// u = U(x), g = ∇U(x): the α of docs/METHOD.md §2 with |g|² → gᵀMg (§8).
func PreconditionedAlpha(m *Preconditioner, h, u float64, x, y, g []float64) float64 {
	dot := 0.0
	for i := range x {
		dot += (y[i] - x[i]) * g[i]
	}
	return u + 0.5*dot + 0.25*h*m.Quad(g)
}

// PreconditionedIncrement is the log-weight increment of one preconditioned
// ULA step from x0 to x1 while the energy changed from U_k to U_{k+1}:
//
//	ΔA = −[u1 − u0] + ½⟨x1 − x0, g0 + g1⟩ − (h/4)(g1ᵀMg1 − g0ᵀMg0)
//	   = −α_{k+1}(x1, x0) + α_k(x0, x1).
//
// With U_{k+1} = U_k it is the log Metropolis–Hastings ratio of the move.
// A nil m is M = I (LogWeightIncrement).
func PreconditionedIncrement(m *Preconditioner, h, u0, u1 float64, x0, x1, g0, g1 []float64) float64 {
	if m == nil {
		return LogWeightIncrement(h, u0, u1, x0, x1, g0, g1)
	}
	return -PreconditionedAlpha(m, h, u1, x1, x0, g1) + PreconditionedAlpha(m, h, u0, x0, x1, g0)
}
