// Package smc is the Jarzynski sequential Monte Carlo of docs/METHOD.md §2,
// shared by training and serving: a Population of Langevin walkers with
// log-weights, its log Ẑ and ESS, resampling that permutes every per-walker
// cache, the ULA move and the log-weight increment, one deterministic noise
// scheme that does not depend on the number of cores (Noise), and one way to
// spread work over cores (Pool, For). All weight arithmetic is in float64
// and in log space; positions may be float32 or float64.
package smc

import (
	"math"
	"math/rand/v2"

	"github.com/jarzyn/jarzyn/internal/kernels"
	"github.com/jarzyn/jarzyn/models"
)

// Float is the element type of walker positions and gradients.
type Float interface{ ~float32 | ~float64 }

// ULA moves x in place by one unadjusted Langevin step at step size h:
// x ← x − h·g + √(2h)·ξ, with ξ ~ N(0, I). For float64 positions ξ comes
// from rng.NormFloat64; for float32 positions the whole move is one pass of
// kernels.ULA32 (vectorised Box-Muller noise fused with the update), its noise
// stream keyed by one rng.Uint64 draw. Either way the result depends only on
// rng's state.
func ULA[T Float](x, g []T, h float64, rng *rand.Rand) {
	s := math.Sqrt(2 * h)
	if x32, ok := any(x).([]float32); ok {
		kernels.ULA32(x32, any(g).([]float32), float32(h), float32(s), rng.Uint64())
		return
	}
	for i := range x {
		x[i] = T(float64(x[i]) - h*float64(g[i]) + s*rng.NormFloat64())
	}
}

// LogWeightIncrement returns ΔA for one walker that moved from x0 to x1 while
// the energy changed from U_k to U_{k+1}:
//
//	ΔA = −[u1 − u0] + ½⟨x1 − x0, g0 + g1⟩ − (h/4)(|g1|² − |g0|²)
//
// with u0 = U_k(x0), g0 = ∇U_k(x0), u1 = U_{k+1}(x1), g1 = ∇U_{k+1}(x1).
// It equals −α_{k+1}(x1, x0) + α_k(x0, x1).
func LogWeightIncrement[T Float](h, u0, u1 float64, x0, x1, g0, g1 []T) float64 {
	var dot, n0, n1 float64
	for i := range x0 {
		a, b := float64(g0[i]), float64(g1[i])
		dot += (float64(x1[i]) - float64(x0[i])) * (a + b)
		n0 += a * a
		n1 += b * b
	}
	return -(u1 - u0) + 0.5*dot - 0.25*h*(n1-n0)
}

// Alpha is α(x, y) = U(x) + ½⟨y − x, ∇U(x)⟩ + (h/4)|∇U(x)|² for u = U(x), g = ∇U(x).
func Alpha[T Float](h, u float64, x, y, g []T) float64 {
	var dot, n float64
	for i := range x {
		gi := float64(g[i])
		dot += (float64(y[i]) - float64(x[i])) * gi
		n += gi * gi
	}
	return u + 0.5*dot + 0.25*h*n
}

// LogMeanExp is log((1/n) Σ exp(a)).
func LogMeanExp(a []float64) float64 {
	return models.LogSumExp(a) - math.Log(float64(len(a)))
}

// Normalize writes p = softmax(a) into p (same length) and returns log Σ e^a.
func Normalize(a, p []float64) float64 {
	lse := models.LogSumExp(a)
	for i, v := range a {
		p[i] = math.Exp(v - lse)
	}
	return lse
}

// ESSFraction is (Σe^a)²/(n Σe^{2a}) in [1/n, 1], computed in log space.
func ESSFraction(a []float64) float64 {
	if len(a) == 0 {
		return 0
	}
	m := math.Inf(-1)
	for _, v := range a {
		if v > m {
			m = v
		}
	}
	var s1, s2 float64
	for _, v := range a {
		e := math.Exp(v - m)
		s1 += e
		s2 += e * e
	}
	return s1 * s1 / (float64(len(a)) * s2)
}

// Scheme selects a resampling scheme.
type Scheme string

const (
	// Systematic resampling: one uniform, n evenly spaced pointers (low variance).
	Systematic Scheme = "systematic"
	// Multinomial resampling: n independent draws.
	Multinomial Scheme = "multinomial"
)

// Resample writes into idx (length n) the ancestor index of each new walker,
// drawn ∝ p (normalized weights, length n), in non-decreasing order.
func Resample(scheme Scheme, p []float64, idx []int, rng *rand.Rand) {
	n := len(idx)
	switch scheme {
	case Multinomial:
		u := make([]float64, n)
		// sorted uniforms by the exponential-spacings method: O(n), no sort
		acc := 0.0
		for i := range u {
			acc += -math.Log(1 - rng.Float64())
			u[i] = acc
		}
		total := acc - math.Log(1-rng.Float64())
		for i := range u {
			u[i] /= total
		}
		walkPointers(p, u, idx)
	default:
		u0 := rng.Float64()
		u := make([]float64, n)
		for i := range u {
			u[i] = (float64(i) + u0) / float64(n)
		}
		walkPointers(p, u, idx)
	}
}

// walkPointers maps sorted pointers in [0,1) to indices of the cumulative sum of p.
func walkPointers(p, u []float64, idx []int) {
	j, c := 0, p[0]
	last := len(p) - 1
	for i, ui := range u {
		for ui >= c && j < last {
			j++
			c += p[j]
		}
		idx[i] = j
	}
}

// Gather permutes rows of a (row length w) by idx: a[i] ← old a[idx[i]].
// tmp must hold len(a) elements.
func Gather[T any](a []T, w int, idx []int, tmp []T) {
	copy(tmp, a)
	for i, j := range idx {
		copy(a[i*w:(i+1)*w], tmp[j*w:(j+1)*w])
	}
}
