package serve

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jarzyn/jarzyn/export"
	"github.com/jarzyn/jarzyn/internal/kernels"
	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// pcaParams is an MLP energy (hidden [8], SiLU, random weights) with a
// data-fitted base of rank k as model.base_fit pca fits one: random
// orthonormal rows by Gram–Schmidt, variances λ from 0.5 to 8, ε = 0.3²,
// μ0 ≠ 0. The last layer's weights are lastScale·N(0, 1) and its bias 0:
// lastScale 0 gives f = 0, U the base term alone and ρ = N(μ0, Σ).
func pcaParams(t testing.TB, d, k int, lastScale float64, seed uint64) *models.Params {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 41))
	v := models.RandomOrthonormal(rng, k, d)
	lam := make([]float64, k)
	for j := range lam {
		lam[j] = 0.5 + 7.5*rng.Float64()
	}
	mu := make([]float64, d)
	for i := range mu {
		mu[i] = 0.5 * rng.NormFloat64()
	}
	spec := models.Spec{Family: models.MLP, Dim: d, Hidden: []int{8}, Activation: models.SiLU, BaseStd: 0.3,
		BaseMean: mu, BaseVectors: v, BaseVariances: lam}
	p, err := models.InitMLP(spec, rng)
	if err != nil {
		t.Fatal(err)
	}
	for j := range p.Get("w0").Data {
		p.Get("w0").Data[j] = 0.5 * rng.NormFloat64()
	}
	for j := range p.Get("w1").Data {
		p.Get("w1").Data[j] = lastScale * rng.NormFloat64()
	}
	clear(p.Get("b1").Data)
	if err := p.Check(); err != nil {
		t.Fatal(err)
	}
	return p
}

// denseBase is the base of spec as dense d×d matrices, computed without
// package models' low-rank formulas: Σ = σ0²I + Σ_j λ_j·v_j·v_jᵀ, its
// Cholesky factor L (Σ = L·Lᵀ) and log Z0 = (d/2)·log 2π + Σ_i log L_ii.
type denseBase struct {
	d         int
	mu, sigma []float64
	chol      []float64
	logZ      float64
}

func newDenseBase(spec models.Spec) *denseBase {
	d := spec.Dim
	b := &denseBase{d: d, mu: spec.Mu0(), sigma: make([]float64, d*d), chol: make([]float64, d*d)}
	for i := 0; i < d; i++ {
		b.sigma[i*d+i] = spec.BaseStd * spec.BaseStd
	}
	for j, l := range spec.BaseVariances {
		v := spec.BaseVectors[j*d : (j+1)*d]
		for a := 0; a < d; a++ {
			for c := 0; c < d; c++ {
				b.sigma[a*d+c] += l * v[a] * v[c]
			}
		}
	}
	L := b.chol
	for i := 0; i < d; i++ {
		for j := 0; j <= i; j++ {
			s := b.sigma[i*d+j]
			for k := 0; k < j; k++ {
				s -= L[i*d+k] * L[j*d+k]
			}
			if i == j {
				L[i*d+i] = math.Sqrt(s)
			} else {
				L[i*d+j] = s / L[j*d+j]
			}
		}
	}
	b.logZ = 0.5 * float64(d) * math.Log(2*math.Pi)
	for i := 0; i < d; i++ {
		b.logZ += math.Log(L[i*d+i])
	}
	return b
}

// solve returns Σ⁻¹·t by forward and back substitution with L.
func (b *denseBase) solve(t []float64) []float64 {
	d, L := b.d, b.chol
	y := make([]float64, d)
	for i := 0; i < d; i++ {
		s := t[i]
		for k := 0; k < i; k++ {
			s -= L[i*d+k] * y[k]
		}
		y[i] = s / L[i*d+i]
	}
	x := make([]float64, d)
	for i := d - 1; i >= 0; i-- {
		s := y[i]
		for k := i + 1; k < d; k++ {
			s -= L[k*d+i] * x[k]
		}
		x[i] = s / L[i*d+i]
	}
	return x
}

// eigenCov is the covariance V·diag(f(λ_j + ε))·Vᵀ + f(ε)·(I − V·Vᵀ): a
// function f of Σ, for the laws of Langevin walks on N(μ0, Σ).
func eigenCov(spec models.Spec, f func(s float64) float64) []float64 {
	d, eps := spec.Dim, spec.BaseStd*spec.BaseStd
	c := make([]float64, d*d)
	for i := 0; i < d; i++ {
		c[i*d+i] = f(eps)
	}
	for j, l := range spec.BaseVariances {
		v := spec.BaseVectors[j*d : (j+1)*d]
		w := f(l+eps) - f(eps)
		for a := 0; a < d; a++ {
			for b := 0; b < d; b++ {
				c[a*d+b] += w * v[a] * v[b]
			}
		}
	}
	return c
}

// whiten returns L⁻¹·t for the Cholesky factor L of Σ (forward
// substitution).
func (b *denseBase) whiten(t []float64) []float64 {
	d, L := b.d, b.chol
	y := make([]float64, d)
	for i := 0; i < d; i++ {
		s := t[i]
		for k := 0; k < i; k++ {
			s -= L[i*d+k] * y[k]
		}
		y[i] = s / L[i*d+i]
	}
	return y
}

// checkMoments compares the sample mean and covariance of n samples with
// mean mu and covariance c (d×d) in the coordinates z = L⁻¹(x − μ0) that
// whiten ref's Σ, where every direction has a comparable scale (the ε
// directions would hide under the λ ones in x), within k standard errors:
// sqrt(C_ii/n) for the mean, sqrt((C_ii·C_jj + C_ij²)/n) for the
// covariance C = L⁻¹·c·L⁻ᵀ.
func checkMoments(t *testing.T, ref *denseBase, x []float32, n int, mu, c []float64, k float64) {
	t.Helper()
	d := len(mu)
	z := make([]float32, n*d)
	tv := make([]float64, d)
	for i := 0; i < n; i++ {
		for j := range tv {
			tv[j] = float64(x[i*d+j]) - ref.mu[j]
		}
		for j, v := range ref.whiten(tv) {
			z[i*d+j] = float32(v)
		}
	}
	for j := range tv {
		tv[j] = mu[j] - ref.mu[j]
	}
	wmu := ref.whiten(tv)
	// C = L⁻¹·c·L⁻ᵀ: whiten the columns of c, then the rows of the result
	tmp, wc := make([]float64, d*d), make([]float64, d*d)
	col := make([]float64, d)
	for j := 0; j < d; j++ {
		for i := 0; i < d; i++ {
			col[i] = c[i*d+j]
		}
		for i, v := range ref.whiten(col) {
			tmp[i*d+j] = v
		}
	}
	for i := 0; i < d; i++ {
		copy(wc[i*d:(i+1)*d], ref.whiten(tmp[i*d:(i+1)*d]))
	}
	mean, cov, _ := moments(z, nil, n, d)
	bad := 0
	for i := 0; i < d && bad < 10; i++ {
		if se := math.Sqrt(wc[i*d+i] / float64(n)); math.Abs(mean[i]-wmu[i]) > k*se {
			t.Errorf("whitened mean[%d] = %.4f, want %.4f ± %.4f", i, mean[i], wmu[i], k*se)
			bad++
		}
		for j := 0; j < d; j++ {
			se := math.Sqrt((wc[i*d+i]*wc[j*d+j] + wc[i*d+j]*wc[i*d+j]) / float64(n))
			if math.Abs(cov[i][j]-wc[i*d+j]) > k*se {
				t.Errorf("whitened cov[%d][%d] = %.4f, want %.4f ± %.4f", i, j, cov[i][j], wc[i*d+j], k*se)
				bad++
			}
		}
	}
}

// The base's low-rank forms agree with dense linear algebra: U_base and
// Σ⁻¹(x − μ0) with a Cholesky solve, log Z0 with log det Σ from the factor;
// and the preconditioned move is x − h·Σ·g + √(2h)·(√ε·ξ + V·(√λ ⊙ η)).
func TestPCABaseMatchesDense(t *testing.T) {
	for _, tc := range []struct{ d, k, n int }{{6, 2, 64}, {20, 3, 100}} {
		spec := pcaParams(t, tc.d, tc.k, 0, uint64(tc.d)).Spec
		base, err := newPCABase(&spec)
		if err != nil {
			t.Fatal(err)
		}
		ref := newDenseBase(spec)
		if math.Abs(base.logZ-ref.logZ) > 1e-12*math.Abs(ref.logZ) {
			t.Errorf("d=%d: log Z0 %v, dense %v", tc.d, base.logZ, ref.logZ)
		}
		d, n := tc.d, tc.n
		rng := rand.New(rand.NewPCG(3, uint64(d)))
		x := make([]float32, n*d)
		for i := range x {
			x[i] = float32(2 * rng.NormFloat64())
		}
		for c := 0; c < smc.Chunks(n); c++ {
			lo, hi := smc.ChunkWalkerRange(c, n)
			s := base.getScratch()
			u := make([]float64, hi-lo)
			base.energy(s, x[lo*d:hi*d], u)
			for i := lo; i < hi; i++ {
				tv := make([]float64, d)
				for k := range tv {
					tv[k] = float64(x[i*d+k]) - ref.mu[k]
				}
				g := ref.solve(tv)
				want := 0.0
				for k := range tv {
					want += 0.5 * tv[k] * g[k]
				}
				if math.Abs(u[i-lo]-want) > 1e-10*(1+math.Abs(want)) {
					t.Errorf("d=%d walker %d: U_base %v, dense %v", d, i, u[i-lo], want)
				}
				for k := range g {
					if got := s.y[(i-lo)*d+k]; math.Abs(got-g[k]) > 1e-10*(1+math.Abs(g[k])) {
						t.Fatalf("d=%d walker %d: ∇U_base[%d] %v, dense %v", d, i, k, got, g[k])
					}
				}
			}
			base.putScratch(s)
		}

		// the preconditioned move against x − h·Σ·g + √(2h)·(√ε·ξ + V·(√λ ⊙ η))
		// in float64 with dense Σ, from the same draws: ξ the Normal32
		// stream of the chunk's first Uint64, then η row by row
		g := make([]float32, n*d)
		for i := range g {
			g[i] = float32(3 * rng.NormFloat64())
		}
		const h, key = 0.37, 12345
		got := slices.Clone(x)
		noise := smc.NewNoise(n)
		ref2 := smc.NewNoise(n)
		eps := spec.BaseStd * spec.BaseStd
		worst := 0.0
		for c := 0; c < smc.Chunks(n); c++ {
			lo, hi := smc.ChunkWalkerRange(c, n)
			base.move(got[lo*d:hi*d], g[lo*d:hi*d], h, noise.Chunk(key, c))
			r := ref2.Chunk(key, c)
			xi := make([]float32, (hi-lo)*d)
			kernels.Normal32(xi, r.Uint64())
			for i := lo; i < hi; i++ {
				eta := make([]float64, tc.k)
				for j := range eta {
					eta[j] = r.NormFloat64()
				}
				for a := 0; a < d; a++ {
					want := float64(x[i*d+a]) + math.Sqrt(2*h*eps)*float64(xi[(i-lo)*d+a])
					for b := 0; b < d; b++ {
						want -= h * ref.sigma[a*d+b] * float64(g[i*d+b])
					}
					for j, l := range spec.BaseVariances {
						want += math.Sqrt(2*h) * math.Sqrt(l) * eta[j] * spec.BaseVectors[j*d+a]
					}
					worst = max(worst, math.Abs(float64(got[i*d+a])-want)/(1+math.Abs(want)))
				}
			}
		}
		if worst > 1e-5 {
			t.Errorf("d=%d: the preconditioned move differs from the dense formula by %.3g (relative)", d, worst)
		}
		t.Logf("d=%d: preconditioned move vs dense float64: %.2g", d, worst)
	}
}

// --init base on a model with a data-fitted base draws μ0 + Σ^{1/2}·ξ: row
// for row what models.Spec.BaseSample makes of the same standard normal
// draws, with the mean and covariance of N(μ0, Σ).
func TestPCABaseDraws(t *testing.T) {
	const d, k, n, seed = 8, 3, 20000, 5
	p := pcaParams(t, d, k, 0.3, 1)
	m := loadParams(t, p, LoadOptions{Name: "pca", Version: "1", Threads: 1})
	res, err := Sample(context.Background(), m, SampleConfig{N: n, Steps: 0, Seed: seed})
	if err != nil {
		t.Fatal(err)
	}
	spec := p.Spec
	noise := smc.NewNoise(n)
	xi := make([]float32, smc.ChunkWalkers*d)
	x64, out := make([]float64, d), make([]float64, d)
	worst := 0.0
	for c := 0; c < smc.Chunks(n); c++ {
		lo, hi := smc.ChunkWalkerRange(c, n)
		kernels.Normal32(xi[:(hi-lo)*d], noise.Chunk(smc.DrawKey(seed, 0), c).Uint64())
		for i := lo; i < hi; i++ {
			for j := range x64 {
				x64[j] = float64(xi[(i-lo)*d+j])
			}
			spec.BaseSample(x64, out)
			for j, v := range out {
				worst = max(worst, math.Abs(float64(res.Samples[i*d+j])-v)/(1+math.Abs(v)))
			}
		}
	}
	if worst > 1e-6 {
		t.Errorf("base draws differ from Spec.BaseSample of the same noise by %.3g (relative)", worst)
	}
	ref := newDenseBase(spec)
	checkMoments(t, ref, res.Samples, n, ref.mu, ref.sigma, 5)
}

// Plain ULA on the Gaussian model U = U_base (f = 0, ρ = N(μ0, Σ)) has its
// law in closed form along each eigendirection of Σ (variance s): with
// M = Σ every direction contracts by a = 1 − h and tends to the variance
// s/(1 − h/2); with M = I, a = 1 − h/s and the variance s/(1 − h/(2s)).
// From an exact base sample the variance after K steps is
// a^{2K}·s + v∞·(1 − a^{2K}); from uniform starts a^K ≈ 0 leaves v∞ and
// the mean μ0. The sample moments match it.
func TestPreconditionedULAStationary(t *testing.T) {
	const d, k, n = 6, 2, 20000
	p := pcaParams(t, d, k, 0, 2)
	m := loadParams(t, p, LoadOptions{Name: "gauss-pca", Version: "1", Threads: 1})
	spec := p.Spec
	for _, tc := range []struct {
		name  string
		pre   Precondition
		init  Init
		h     float64
		steps int
	}{
		{"base M=Σ from uniform", "", InitUniform, 0.2, 150},
		{"base M=Σ from the base", PreconditionBase, InitBase, 0.4, 3},
		{"M=I from the base", PreconditionNone, InitBase, 0.03, 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Sample(context.Background(), m, SampleConfig{N: n, Steps: tc.steps, StepSize: tc.h, Seed: 11, Init: tc.init, Precondition: tc.pre})
			if err != nil {
				t.Fatal(err)
			}
			want := PreconditionBase
			if tc.pre == PreconditionNone {
				want = PreconditionNone
			}
			if res.Precondition != want {
				t.Errorf("ran with precondition %q, want %q", res.Precondition, want)
			}
			h, K := tc.h, float64(tc.steps)
			cov := eigenCov(spec, func(s float64) float64 {
				a, vinf := 1-h, s/(1-h/2)
				if tc.pre == PreconditionNone {
					a, vinf = 1-h/s, s/(1-h/(2*s))
				}
				a2K := math.Pow(a, 2*K)
				if tc.init == InitUniform {
					if a2K > 1e-12 {
						t.Fatalf("a^2K = %g: not converged from a uniform start", a2K)
					}
					return vinf
				}
				return a2K*s + vinf*(1-a2K)
			})
			checkMoments(t, newDenseBase(spec), res.Samples, n, spec.Mu0(), cov, 5)
			// the closed form must tell the step from an exact one: Σ itself fails
			if tc.pre != PreconditionNone {
				_, got, _ := moments(res.Samples, nil, n, d)
				exact := newDenseBase(spec).sigma
				far := 0
				for i := 0; i < d; i++ {
					if se := exact[i*d+i] * math.Sqrt(2/float64(n)); math.Abs(got[i][i]-exact[i*d+i]) > 5*se {
						far++
					}
				}
				if far == 0 {
					t.Errorf("the sample variances match Σ itself: h=%g does not show the step's bias", h)
				}
			}
		})
	}
}

// logZReference is log Z of p by importance sampling from its base in
// float64: Z = E_{x∼N(μ0, Σ)}[e^{−U(x)}/q(x)], x = μ0 + L·ξ (dense
// Cholesky factor), log q(x) = −|ξ|²/2 − log Z0. It returns the estimate
// and its standard error.
func logZReference(p *models.Params, samples int, seed uint64) (logZ, se float64) {
	ref := newDenseBase(p.Spec)
	d := p.Spec.Dim
	rng := rand.New(rand.NewPCG(seed, 77))
	lw := make([]float64, samples)
	xi, x := make([]float64, d), make([]float64, d)
	for s := range lw {
		q := 0.0
		for i := range xi {
			xi[i] = rng.NormFloat64()
			q += xi[i] * xi[i]
		}
		for i := 0; i < d; i++ {
			x[i] = ref.mu[i]
			for j := 0; j <= i; j++ {
				x[i] += ref.chol[i*d+j] * xi[j]
			}
		}
		lw[s] = -p.Energy(x, nil) + 0.5*q + ref.logZ
	}
	logZ = smc.LogMeanExp(lw)
	mean, m2 := 0.0, 0.0
	for _, v := range lw {
		w := math.Exp(v - logZ)
		mean += w
		m2 += w * w
	}
	mean /= float64(samples)
	m2 /= float64(samples)
	return logZ, math.Sqrt((m2-mean*mean)/float64(samples)) / mean
}

// Weighted annealing from a data-fitted base: at f = 0 (U = U_base) log Ẑ is
// log Z0 = (d/2)·log 2π + ½·log det Σ; with a non-trivial f it matches a
// brute-force float64 importance-sampling estimate; with M = Σ at steps
// far beyond M = I's stability limit (h < 2ε = 0.18) as with M = I at a
// small step. Tolerance: 5 standard errors of each estimate (the sampler's
// from its ESS) plus float32 round-off of the energies.
func TestPCAWeightedLogZ(t *testing.T) {
	const d, k = 10, 3
	for _, tc := range []struct {
		name      string
		lastScale float64
		pre       Precondition
		h         float64
		steps     int
		kernel    Kernel
	}{
		{"f=0 M=Σ", 0, PreconditionBase, 0.3, 20, ""},
		{"f=0 M=I", 0, PreconditionNone, 0.02, 20, ""},
		{"mlp M=Σ", 0.6, "", 0.1, 60, ""},
		{"mlp M=I", 0.6, PreconditionNone, 0.02, 60, ""},
		{"mlp M=Σ mala", 0.6, "", 0.8, 60, KernelMALA},
		{"mlp M=I mala", 0.6, PreconditionNone, 0.05, 60, KernelMALA},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := pcaParams(t, d, k, tc.lastScale, 3)
			want, wantSE := newDenseBase(p.Spec).logZ, 0.0
			if tc.lastScale != 0 {
				want, wantSE = logZReference(p, 400000, 9)
			}
			m := loadParams(t, p, LoadOptions{Name: "pca", Version: "1", Threads: 1})
			const n = 4000
			res, err := Sample(context.Background(), m, SampleConfig{N: n, Steps: tc.steps, StepSize: tc.h, Seed: 21,
				Weighted: true, ResampleThreshold: 0.5, Precondition: tc.pre, Kernel: tc.kernel})
			if err != nil {
				t.Fatal(err)
			}
			se := math.Sqrt((1/res.ESSFraction-1)/n) * math.Sqrt(float64(1+res.Resamplings))
			tol := 5*math.Hypot(se, wantSE) + 1e-3
			t.Logf("log Ẑ %.5f, reference %.5f ± %.5f, ESS/N %.3f, %d resamplings, tolerance %.4f, acceptance %.3f", res.LogZ, want, wantSE, res.ESSFraction, res.Resamplings, tol, res.Accept)
			if tc.kernel == KernelMALA && !(res.Accept > 0.2 && res.Accept < 0.999) {
				t.Errorf("MALA acceptance %v: the test does not exercise the accept/reject step", res.Accept)
			}
			if math.Abs(res.LogZ-want) > tol {
				t.Errorf("log Ẑ = %.5f, want %.5f ± %.4f", res.LogZ, want, tol)
			}
			if tc.lastScale != 0 && math.Abs(want-newDenseBase(p.Spec).logZ) < 10*tol {
				t.Errorf("f moves log Z by only %.4f from log Z0: the test would not see a wrong path", want-newDenseBase(p.Spec).logZ)
			}
		})
	}
}

// The samples of a data-fitted base model (plain ULA with M = Σ and M = I,
// weighted annealing with M = Σ) do not depend on the workers or the run
// batch, and a request stepped in the continuous batcher's shared batch
// equals the solo run within float32 round-off.
func TestPCAIndependentOfWorkersAndBatching(t *testing.T) {
	p := pcaParams(t, 12, 2, 0.5, 4)
	m := loadParams(t, p, LoadOptions{Name: "pca", Version: "1", Threads: 1})
	cases := []SampleConfig{
		{N: 300, Steps: 30, StepSize: 0.2, Seed: 1},
		{N: 130, Steps: 12, StepSize: 0.02, Seed: 2, Precondition: PreconditionNone},
		{N: 250, Steps: 25, StepSize: 0.15, Seed: 3, Weighted: true, ResampleThreshold: 0.8},
		{N: 70, Steps: 20, StepSize: 0.1, Seed: 4, Init: InitUniform},
		{N: 200, Steps: 20, ExtraSteps: 3, StepSize: 0.4, Seed: 5, Weighted: true, ResampleThreshold: 0.9, Kernel: KernelMALA},
	}
	solo := make([]*Result, len(cases))
	for i, c := range cases {
		var first *Result
		for _, run := range []struct{ workers, runBatch int }{{1, 0}, {2, 64}, {3, 128}, {2, 1000}} {
			cfg := c
			cfg.Workers, cfg.RunBatch = run.workers, run.runBatch
			res, err := Sample(context.Background(), m, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if first == nil {
				first = res
				continue
			}
			if !slices.Equal(res.Samples, first.Samples) || !slices.Equal(res.LogWeights, first.LogWeights) || res.Accept != first.Accept {
				t.Errorf("case %d: workers %d, run batch %d gave other samples or weights than one worker", i, run.workers, run.runBatch)
			}
		}
		solo[i] = first
	}

	bt := NewBatcher(m, BatcherConfig{MaxWalkers: 4096, MaxQueue: 16})
	defer bt.Close()
	got := make([]*Result, len(cases))
	errs := make([]error, len(cases))
	var wg sync.WaitGroup
	start := func(i int, c SampleConfig) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], errs[i] = bt.Sample(context.Background(), c)
		}()
	}
	lead := cases[0]
	lead.Progress = func(done, total int) { // the others join a running batch
		if i := done / 3; done%3 == 0 && i >= 1 && i < len(cases) {
			start(i, cases[i])
		}
	}
	start(0, lead)
	wg.Wait()
	steps := 0
	for i := range cases {
		if errs[i] != nil {
			t.Fatalf("case %d batched: %v", i, errs[i])
		}
		steps += cases[i].TotalSteps()
		compareResults(t, i, got[i], solo[i], false)
	}
	if st := bt.Stats(); st.Evals >= int64(steps) {
		t.Errorf("%d shared evaluations for %d request steps: the requests did not share steps", st.Evals, steps)
	}
}

// What stays refused: precondition base for a model whose base is
// isotropic (and any other value than auto, none, base); a data-fitted
// base model now samples from its base, weighted or not.
func TestPCABaseSettings(t *testing.T) {
	pca := loadParams(t, pcaParams(t, 6, 2, 0.3, 5), LoadOptions{Name: "pca", Version: "1", Threads: 1})
	iso := loadGaussian(t, testGaussian)
	for _, tc := range []struct {
		m     *Model
		cfg   SampleConfig
		field string
	}{
		{iso, SampleConfig{N: 8, Steps: 3, Precondition: PreconditionBase}, "precondition"},
		{iso, SampleConfig{N: 8, Steps: 3, Weighted: true, Precondition: PreconditionBase}, "precondition"},
		{pca, SampleConfig{N: 8, Steps: 3, Precondition: "sigma"}, "precondition"},
		{pca, SampleConfig{N: 8, Steps: 3, Precondition: "BASE"}, "precondition"},
	} {
		_, err := Sample(context.Background(), tc.m, tc.cfg)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%s %+v: error %v, want a FieldError for %s", tc.m.Name, tc.cfg, err, tc.field)
		}
	}
	for _, tc := range []struct {
		m    *Model
		cfg  SampleConfig
		want Precondition
	}{
		{pca, SampleConfig{N: 8, Steps: 3}, PreconditionBase},
		{pca, SampleConfig{N: 8, Steps: 3, Weighted: true, Precondition: PreconditionAuto}, PreconditionBase},
		{pca, SampleConfig{N: 8, Steps: 3, Weighted: true, Precondition: PreconditionNone, StepSize: 0.01}, PreconditionNone},
		{pca, SampleConfig{N: 8, Steps: 3, Init: InitUniform}, PreconditionBase},
		{iso, SampleConfig{N: 8, Steps: 3}, PreconditionNone},
		{iso, SampleConfig{N: 8, Steps: 3, Weighted: true, Precondition: PreconditionAuto}, PreconditionNone},
	} {
		res, err := Sample(context.Background(), tc.m, tc.cfg)
		if err != nil {
			t.Errorf("%s %+v: %v", tc.m.Name, tc.cfg, err)
			continue
		}
		if res.Precondition != tc.want {
			t.Errorf("%s %+v: precondition %q, want %q", tc.m.Name, tc.cfg, res.Precondition, tc.want)
		}
	}
	// a base the sampler cannot use (ε = σ0² overflows) is refused, not
	// drawn from
	huge := *pca.Info.Spec
	huge.BaseStd = 1e200
	var fe *FieldError
	if err := checkBase(ModelInfo{ONNXMeta: models.ONNXMeta{Spec: &huge}}, SampleConfig{}); !errors.As(err, &fe) || fe.Field != "model" || !strings.Contains(fe.Msg, "base_std 1e+200") {
		t.Errorf("σ0 = 1e200: %v, want a FieldError for model naming base_std", err)
	}
	var sb strings.Builder
	pca.Describe(&sb)
	if s := sb.String(); !strings.Contains(s, "2 principal directions, ε 0.09") || len(s) > 300 {
		t.Errorf("Describe: %q, want a one-line summary of the rank-2 base", s)
	}
}

// Over HTTP and on the command line: /v1/sample takes "precondition"
// (refused when it does not apply, with the field named), a data-fitted
// base model samples weighted from its base with batching on and off, and
// its model metadata summarises the base (rank, ε) instead of carrying its
// k×d vectors; `sample --precondition` likewise, with exit status 2 for a
// value the model cannot take.
func TestPCABaseHTTPAndCLI(t *testing.T) {
	needORT(t)
	p := pcaParams(t, 16, 3, 0.3, 6)
	b, err := export.Build(p, models.TrainingInfo{Method: "test", StepSize: 0.05, LogZEstimate: math.NaN(), DataMin: -1, DataMax: 1})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pcaFile := writeFile(t, dir, "pca/1/model.onnx", b)
	writeFile(t, dir, "gauss/1/model.onnx", testGaussian.build(t))
	for _, batching := range []string{BatchingOn, BatchingOff} {
		t.Run("batching "+batching, func(t *testing.T) {
			reg, err := LoadDir(dir, LoadOptions{Threads: 1, Logger: quietLog})
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(NewServer(reg, ServerConfig{MaxN: 5000, MaxSteps: 100_000, MaxWalkerSteps: 2_000_000,
				MaxInferBatch: 100, MaxBodyBytes: 1 << 16, Timeout: 20 * time.Second, Logger: quietLog, Batching: batching}))
			defer func() {
				ts.Close()
				reg.Close()
			}()
			for _, tc := range []struct {
				body string
				code int
				want string
			}{
				{`{"model":"pca","n":100,"steps":10,"weighted":true}`, 200, `"log_z":`},
				{`{"model":"pca","n":100,"steps":10,"precondition":"none","h":0.01}`, 200, `"samples":`},
				{`{"model":"pca","n":100,"steps":10,"precondition":"base","init":"uniform"}`, 200, `"samples":`},
				{`{"model":"pca","n":10,"steps":1,"precondition":"bogus"}`, 400, `"error":"precondition: must be auto, none or base, got \"bogus\""`},
				{`{"model":"gauss","n":10,"steps":1,"precondition":"base"}`, 400, `"error":"precondition: base needs a model with a data-fitted base`},
				{`{"model":"gauss","n":10,"steps":1,"weighted":true,"precondition":"auto"}`, 200, `"log_z":`},
				{`{"model":"pca","n":100,"steps":10,"weighted":true,"kernel":"mala","h":0.5}`, 200, `"accept":`},
				{`{"model":"gauss","n":64,"steps":5,"weighted":true,"kernel":"mala"}`, 200, `"accept":`},
				{`{"model":"pca","n":10,"steps":2,"kernel":"mala"}`, 400, `"error":"kernel: only applies to weighted sampling"`},
				{`{"model":"pca","n":10,"steps":2,"weighted":true,"kernel":"hmc"}`, 400, `"error":"kernel: must be ula or mala, got \"hmc\""`},
			} {
				code, body := call(t, "POST", ts.URL+"/v1/sample", tc.body, nil)
				if code != tc.code || !strings.Contains(body, tc.want) {
					t.Errorf("POST %s: %d %.300s, want %d containing %s", tc.body, code, body, tc.code, tc.want)
				}
			}
			var md ModelMetadataResponse
			code, body := call(t, "GET", ts.URL+"/v2/models/pca", "", &md)
			if code != 200 {
				t.Fatalf("metadata: %d %s", code, body)
			}
			base, _ := md.Parameters["base"].(map[string]any)
			spec, _ := md.Parameters["spec"].(map[string]any)
			if base["rank"] != 3.0 || math.Abs(base["eps"].(float64)-0.09) > 1e-15 || spec == nil || spec["base_vectors"] != nil ||
				len(spec["base_variances"].([]any)) != 3 || strings.Contains(body, "base_vectors") {
				t.Errorf("metadata parameters: base %v, spec %v", base, spec)
			}
			if len(body) > 2000 {
				t.Errorf("metadata of a d=16 model is %d bytes", len(body))
			}
		})
	}

	out := filepath.Join(t.TempDir(), "s.csv")
	sum, _ := runSample(t, out, "--model", pcaFile, "--n", "200", "--steps", "10", "--weighted")
	if sum.Precondition != "base" || sum.LogZ == nil {
		t.Errorf("weighted sample of a data-fitted base: %+v", sum)
	}
	sum, _ = runSample(t, out, "--model", pcaFile, "--n", "200", "--steps", "10", "--weighted", "--kernel", "mala", "--h", "0.5")
	if sum.Kernel != "mala" || sum.Accept == nil || !(*sum.Accept > 0 && *sum.Accept <= 1) || sum.LogZ == nil {
		t.Errorf("--weighted --kernel mala: %+v", sum)
	}
	if code, _, stderr := runMain(t, context.Background(), "sample", "--out", out, "--model", pcaFile, "--n", "10", "--steps", "1", "--kernel", "mala"); code != ExitUsage || !strings.Contains(stderr, "--kernel: only applies to weighted sampling") {
		t.Errorf("--kernel without --weighted: exit %d, %s", code, stderr)
	}
	sum, _ = runSample(t, out, "--model", pcaFile, "--n", "200", "--steps", "10", "--precondition", "none", "--h", "0.01")
	if sum.Precondition != "none" {
		t.Errorf("--precondition none: %+v", sum)
	}
	for _, tc := range []struct {
		model, value, want string
	}{
		{filepath.Join(dir, "gauss/1/model.onnx"), "base", "--precondition: base needs a model with a data-fitted base"},
		{pcaFile, "sigma", "--precondition: must be auto, none or base"},
	} {
		code, _, stderr := runMain(t, context.Background(), "sample", "--out", out, "--model", tc.model, "--n", "10", "--steps", "1", "--precondition", tc.value)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("--precondition %s: exit %d, %q; want 2 and %q", tc.value, code, stderr, tc.want)
		}
	}
}
