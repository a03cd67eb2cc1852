package smc

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/jarzyn/jarzyn/models"
)

// randomPreconditioner returns M = ε·I + V·diag(λ)·Vᵀ with k random
// orthonormal rows (Gram–Schmidt) and λ_j in [0, lmax], and M as a dense
// d×d matrix.
func randomPreconditioner(t *testing.T, d, k int, eps, lmax float64, seed uint64) (*Preconditioner, []float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 99))
	v := models.RandomOrthonormal(rng, k, d)
	lam := make([]float64, k)
	for j := range lam {
		lam[j] = lmax * rng.Float64()
	}
	m, err := NewPreconditioner(d, eps, v, lam)
	if err != nil {
		t.Fatal(err)
	}
	dense := make([]float64, d*d)
	for i := 0; i < d; i++ {
		dense[i*d+i] = eps
	}
	for j, l := range lam {
		for a := 0; a < d; a++ {
			for b := 0; b < d; b++ {
				dense[a*d+b] += l * v[j*d+a] * v[j*d+b]
			}
		}
	}
	return m, dense
}

// invertSPD returns the inverse and log-determinant of a d×d SPD matrix by
// Gauss–Jordan elimination (brute force, float64).
func invertSPD(a []float64, d int) (inv []float64, logDet float64) {
	m := append([]float64(nil), a...)
	inv = make([]float64, d*d)
	for i := 0; i < d; i++ {
		inv[i*d+i] = 1
	}
	for c := 0; c < d; c++ {
		p := m[c*d+c]
		logDet += math.Log(p)
		for j := 0; j < d; j++ {
			m[c*d+j] /= p
			inv[c*d+j] /= p
		}
		for r := 0; r < d; r++ {
			if r == c {
				continue
			}
			f := m[r*d+c]
			for j := 0; j < d; j++ {
				m[r*d+j] -= f * m[c*d+j]
				inv[r*d+j] -= f * inv[c*d+j]
			}
		}
	}
	return inv, logDet
}

// logKernelM is log q(x→y) = log N(y; x − h·M·g(x), 2h·M), dense.
func logKernelM(h float64, mDense, mInv []float64, logDetM float64, x, y, gx []float64) float64 {
	d := len(x)
	r := make([]float64, d)
	for a := 0; a < d; a++ {
		mg := 0.0
		for b := 0; b < d; b++ {
			mg += mDense[a*d+b] * gx[b]
		}
		r[a] = y[a] - x[a] + h*mg
	}
	q := 0.0
	for a := 0; a < d; a++ {
		for b := 0; b < d; b++ {
			q += r[a] * mInv[a*d+b] * r[b]
		}
	}
	return -q/(4*h) - 0.5*float64(d)*math.Log(4*math.Pi*h) - 0.5*logDetM
}

// docs/METHOD.md §7.1 for the preconditioned kernel (M ≠ I):
// −α_{k+1}(y,x) + α_k(x,y) = log[e^{−U_{k+1}(y)} q_{k+1}(y→x)] − log[e^{−U_k(x)} q_k(x→y)]
// with q = N(·; x − hMg, 2hM) from a dense M⁻¹ and log det M; the
// population's batched increment (Reweight with Precond) gives the same.
func TestPreconditionedKernelIdentity(t *testing.T) {
	const d, k, n = 7, 3, 70 // n: two chunks, the second partial
	m, mDense := randomPreconditioner(t, d, k, 0.3, 4, 1)
	mInv, logDet := invertSPD(mDense, d)
	rng := rand.New(rand.NewPCG(1, 3))
	x, y := make([]float64, n*d), make([]float64, n*d)
	pop := NewPopulation(y, d, 0, 0)
	pop.Precond = m
	want := make([]float64, n)
	for trial := 0; trial < n; trial++ {
		h := math.Exp(rng.Float64()*4 - 4)
		if trial > 0 {
			h = 0.37 // one h for the population's batch
		}
		mu0, s0 := rng.NormFloat64(), 0.5+rng.Float64()
		mu1, s1 := rng.NormFloat64(), 0.5+rng.Float64()
		xi, yi := x[trial*d:(trial+1)*d], y[trial*d:(trial+1)*d]
		for i := range xi {
			xi[i], yi[i] = rng.NormFloat64(), rng.NormFloat64()
		}
		gx, gy := make([]float64, d), make([]float64, d)
		ux := quadEnergy(mu0, s0, xi, gx)
		uy := quadEnergy(mu1, s1, yi, gy)
		lhs := -PreconditionedAlpha(m, h, uy, yi, xi, gy) + PreconditionedAlpha(m, h, ux, xi, yi, gx)
		rhs := (-uy + logKernelM(h, mDense, mInv, logDet, yi, xi, gy)) - (-ux + logKernelM(h, mDense, mInv, logDet, xi, yi, gx))
		inc := PreconditionedIncrement(m, h, ux, uy, xi, yi, gx, gy)
		scale := math.Max(1, math.Abs(rhs))
		if e := math.Abs(lhs-rhs) / scale; e > 1e-12 {
			t.Fatalf("trial %d: α form %v vs kernel form %v (rel err %.3g)", trial, lhs, rhs, e)
		}
		if e := math.Abs(inc-rhs) / scale; e > 1e-12 {
			t.Fatalf("trial %d: PreconditionedIncrement %v vs kernel form %v (rel err %.3g)", trial, inc, rhs, e)
		}
		copy(pop.XPrev[trial*d:], xi)
		copy(pop.GPrev[trial*d:], gx)
		copy(pop.G[trial*d:], gy)
		pop.UPrev[trial], pop.U[trial], want[trial] = ux, uy, rhs
	}
	pop.Reweight(0.37)
	for i := 1; i < n; i++ {
		if e := math.Abs(pop.A[i]-want[i]) / math.Max(1, math.Abs(want[i])); e > 1e-12 {
			t.Fatalf("walker %d: Reweight with Precond %v vs kernel form %v (rel err %.3g)", i, pop.A[i], want[i], e)
		}
	}
	// M·g, M^{1/2}·(M^{1/2}·e_i) and gᵀMg against the dense M
	g, out, half := make([]float64, d), make([]float64, d), make([]float64, d)
	for i := range g {
		g[i] = rng.NormFloat64()
	}
	m.Apply(g, out)
	q := 0.0
	for a := 0; a < d; a++ {
		want := 0.0
		for b := 0; b < d; b++ {
			want += mDense[a*d+b] * g[b]
		}
		q += g[a] * want
		if math.Abs(out[a]-want) > 1e-12 {
			t.Errorf("(M·g)[%d] = %v, dense %v", a, out[a], want)
		}
	}
	if math.Abs(m.Quad(g)-q) > 1e-12*q {
		t.Errorf("gᵀMg = %v, dense %v", m.Quad(g), q)
	}
	for i := 0; i < d; i++ {
		e := make([]float64, d)
		e[i] = 1
		m.ApplySqrt(e, half)
		m.ApplySqrt(half, out)
		for a := 0; a < d; a++ {
			if math.Abs(out[a]-mDense[a*d+i]) > 1e-12 {
				t.Fatalf("(M^{1/2})²[%d,%d] = %v, M = %v", a, i, out[a], mDense[a*d+i])
			}
		}
	}
}

// closedFormRun runs K steps of a population along U_k(x) = |x − μ_k|²/(2s_k²)
// from exact samples of U_0, with ULA weights (mala false) or MALA with
// work-only weights (mala true), and returns it with the mean acceptance.
func closedFormRun(m *Preconditioner, d, n, K int, h float64, mala bool, mu, s func(int) float64, seed uint64) (*Population[float64], float64) {
	rng := rand.New(rand.NewPCG(seed, uint64(h*1e4)))
	x := make([]float64, n*d)
	for i := range x {
		x[i] = mu(0) + s(0)*rng.NormFloat64()
	}
	pop := NewPopulation(x, d, 0, 0)
	pop.Precond = m
	eval := func(k int) {
		for i := 0; i < n; i++ {
			pop.U[i] = quadEnergy(mu(k), s(k), x[i*d:(i+1)*d], pop.G[i*d:(i+1)*d])
		}
	}
	eval(0)
	accepted := 0
	before := make([]float64, n)
	for k := 0; k < K; k++ {
		if !mala {
			pop.Move(h, rng.Uint64())
			eval(k + 1)
			pop.Reweight(h)
			continue
		}
		copy(before, pop.U)
		eval(k + 1)
		pop.AddWork(before)
		pop.Move(h, rng.Uint64())
		eval(k + 1)
		accepted += pop.Accept(h, rng.Uint64(), nil)
	}
	return pop, float64(accepted) / float64(n*K)
}

// weightedMoments returns log mean e^A, the ESS, and the weighted and plain
// mean and variance of coordinate 0 of the walkers.
func weightedMoments(pop *Population[float64]) (logRatio, ess, m, v, mPlain, vPlain float64) {
	n, d := pop.N(), pop.Dim()
	p := pop.Weights()
	for i := 0; i < n; i++ {
		xi := pop.X[i*d]
		m += p[i] * xi
		mPlain += xi / float64(n)
	}
	for i := 0; i < n; i++ {
		xi := pop.X[i*d]
		v += p[i] * (xi - m) * (xi - m)
		vPlain += (xi - mPlain) * (xi - mPlain) / float64(n)
	}
	return LogMeanExp(pop.A), ESSFraction(pop.A) * float64(n), m, v, mPlain, vPlain
}

// docs/METHOD.md §7.2 for the preconditioned ULA (M ≠ I) and for MALA with
// work-only weights (preconditioned and not): on U_k = |x − μ_k|²/(2s_k²)
// along a fixed schedule, mean e^{A_K} matches (s_K/s_0)^d and the
// weighted mean and variance match μ_K and s_K² within Monte-Carlo error,
// for several h; at the largest h the unweighted preconditioned ULA is
// visibly biased.
func TestPreconditionedJarzynskiClosedForm(t *testing.T) {
	const d, n, K = 4, 20000, 30
	m, _ := randomPreconditioner(t, d, 2, 0.5, 1, 2)
	mu := func(k int) float64 { return 1.5 * float64(k) / K }
	s := func(k int) float64 { return 1 + 0.5*float64(k)/K }
	for _, tc := range []struct {
		kernel string
		m      *Preconditioner
		mala   bool
		h      float64
	}{
		{"pula", m, false, 0.05}, {"pula", m, false, 0.2}, {"pula", m, false, 0.7},
		{"mala", nil, true, 0.1}, {"mala", nil, true, 1.5},
		{"pmala", m, true, 0.2}, {"pmala", m, true, 1.5},
	} {
		t.Run(fmt.Sprintf("%s_h%g", tc.kernel, tc.h), func(t *testing.T) {
			pop, acc := closedFormRun(tc.m, d, n, K, tc.h, tc.mala, mu, s, 11)
			logRatio, ess, wm, wv, _, vPlain := weightedMoments(pop)
			want := float64(d) * math.Log(s(K)/s(0))
			se := 1 / math.Sqrt(ess)
			if math.Abs(logRatio-want) > 5*se {
				t.Errorf("log E[e^A] = %.4f, want log Z_K/Z_0 = %.4f (±%.4f)", logRatio, want, se)
			}
			if math.Abs(wm-mu(K)) > 5*s(K)*se {
				t.Errorf("weighted mean %.4f, want %.4f (±%.4f)", wm, mu(K), s(K)*se)
			}
			if math.Abs(wv-s(K)*s(K)) > 5*math.Sqrt2*s(K)*s(K)*se {
				t.Errorf("weighted variance %.4f, want %.4f", wv, s(K)*s(K))
			}
			t.Logf("log ratio %.4f (want %.4f), weighted var %.4f, unweighted var %.4f (want %.4f), ESS %.0f, acceptance %.3f",
				logRatio, want, wv, vPlain, s(K)*s(K), ess, acc)
			if tc.kernel == "pula" && tc.h > 0.5 && math.Abs(vPlain-s(K)*s(K)) < 0.1 {
				t.Errorf("unweighted preconditioned ULA variance %.4f should be visibly biased from %.4f", vPlain, s(K)*s(K))
			}
			if tc.mala && tc.h > 1 && !(acc < 0.95) {
				t.Errorf("MALA acceptance %.3f at h=%g, want < 0.95 (the test needs rejections)", acc, tc.h)
			}
		})
	}
}

// MALA leaves the target invariant: from exact samples of a fixed Gaussian,
// 40 steps at a large h (with and without M) reject a good share of the
// proposals yet keep the mean and variance, and never touch the weights.
func TestMALALeavesGaussianInvariant(t *testing.T) {
	const d, n, K = 3, 20000, 40
	m, _ := randomPreconditioner(t, d, 1, 0.8, 2, 4)
	for _, tc := range []struct {
		name string
		m    *Preconditioner
		h    float64
	}{{"plain", nil, 1.6}, {"preconditioned", m, 1.2}} {
		t.Run(tc.name, func(t *testing.T) {
			const mu0, s0 = 0.7, 1.3
			pop, acc := closedFormRun(tc.m, d, n, K, tc.h, true, func(int) float64 { return mu0 }, func(int) float64 { return s0 }, 21)
			for i, a := range pop.A {
				if a != 0 {
					t.Fatalf("walker %d: log-weight %v, want 0 (no parameter change, no work)", i, a)
				}
			}
			if !(acc < 0.9) || !(acc > 0.05) {
				t.Errorf("acceptance %.3f, want rejections but not a frozen chain", acc)
			}
			for c := 0; c < d; c++ {
				mean, v := 0.0, 0.0
				for i := 0; i < n; i++ {
					mean += pop.X[i*d+c] / n
				}
				for i := 0; i < n; i++ {
					t := pop.X[i*d+c] - mean
					v += t * t / n
				}
				// walkers are independent; each is exactly N(μ, s²)
				if se := s0 / math.Sqrt(n); math.Abs(mean-mu0) > 5*se {
					t.Errorf("coordinate %d: mean %.4f, want %.4f ± %.4f", c, mean, mu0, se)
				}
				if se := math.Sqrt2 * s0 * s0 / math.Sqrt(n); math.Abs(v-s0*s0) > 5*se {
					t.Errorf("coordinate %d: variance %.4f, want %.4f ± %.4f", c, v, s0*s0, se)
				}
			}
			t.Logf("h=%g: acceptance %.3f", tc.h, acc)
		})
	}
}
