// Package smc holds the Jarzynski sequential-Monte-Carlo arithmetic shared by
// training and serving: the ULA move, the log-weight increment of SPEC §2,
// effective sample size, log-mean-exp and resampling. All weight arithmetic is
// in float64 and in log space; positions may be float32 or float64.
package smc

import (
	"github.com/jarzyn/jarzyn/internal/kernels"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
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

// LogSumExp is log Σ exp(a), −Inf for empty input or all −Inf.
func LogSumExp(a []float64) float64 {
	m := math.Inf(-1)
	for _, v := range a {
		if v > m {
			m = v
		}
	}
	if math.IsInf(m, 0) {
		return m
	}
	s := 0.0
	for _, v := range a {
		s += math.Exp(v - m)
	}
	return m + math.Log(s)
}

// LogMeanExp is log((1/n) Σ exp(a)).
func LogMeanExp(a []float64) float64 {
	return LogSumExp(a) - math.Log(float64(len(a)))
}

// Normalize writes p = softmax(a) into p (same length) and returns log Σ e^a.
func Normalize(a, p []float64) float64 {
	lse := LogSumExp(a)
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

// noiseChunk is the number of rows whose noise comes from one derived stream.
const noiseChunk = 256

// ULAParallel is ULA over n rows of length d, with the noise drawn in fixed
// chunks of rows from PCG streams seeded by rng, in parallel goroutines. The
// result depends only on rng's state, never on GOMAXPROCS.
func ULAParallel[T Float](x, g []T, d int, h float64, rng *rand.Rand) {
	n := len(x) / d
	chunks := (n + noiseChunk - 1) / noiseChunk
	seeds := make([]uint64, chunks)
	for i := range seeds {
		seeds[i] = rng.Uint64()
	}
	parallelFor(chunks, func(c int) {
		r := rand.New(rand.NewPCG(seeds[c], uint64(c)))
		lo, hi := c*noiseChunk*d, min((c+1)*noiseChunk*d, len(x))
		ULA(x[lo:hi], g[lo:hi], h, r)
	})
}

// parallelFor runs f(0..n-1) on up to GOMAXPROCS goroutines.
func parallelFor(n int, f func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := 0; i < n; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// UpdateLogWeights adds the Jarzynski increment of every walker to a:
// a[i] += LogWeightIncrement(h, u0[i], u1[i], rows i of x0, x1, g0, g1).
func UpdateLogWeights[T Float](a []float64, h float64, d int, u0, u1 []float64, x0, x1, g0, g1 []T) {
	n := len(a)
	chunks := (n + noiseChunk - 1) / noiseChunk
	parallelFor(chunks, func(c int) {
		for i := c * noiseChunk; i < min((c+1)*noiseChunk, n); i++ {
			r := i * d
			a[i] += LogWeightIncrement(h, u0[i], u1[i], x0[r:r+d], x1[r:r+d], g0[r:r+d], g1[r:r+d])
		}
	})
}
