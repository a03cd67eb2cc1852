package smc

import (
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
)

// quadEnergy is U(x) = |x − μ|²/(2s²) and its gradient.
func quadEnergy(mu, s float64, x, g []float64) float64 {
	u := 0.0
	for i, v := range x {
		t := v - mu
		u += t * t / (2 * s * s)
		if g != nil {
			g[i] = t / (s * s)
		}
	}
	return u
}

// logKernel is log q(x→y) for the ULA kernel N(x − h∇U(x), 2h I).
func logKernel(h float64, x, y, gx []float64) float64 {
	d := float64(len(x))
	s := 0.0
	for i := range x {
		t := y[i] - x[i] + h*gx[i]
		s += t * t
	}
	return -s/(4*h) - 0.5*d*math.Log(4*math.Pi*h)
}

// docs/METHOD.md §7.1: −α_{k+1}(y,x) + α_k(x,y) = log[e^{−U_{k+1}(y)} q_{k+1}(y→x)] − log[e^{−U_k(x)} q_k(x→y)].
func TestAlphaKernelIdentity(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const d = 7
	for trial := 0; trial < 200; trial++ {
		h := math.Exp(rng.Float64()*4 - 4)
		mu0, s0 := rng.NormFloat64(), 0.5+rng.Float64()
		mu1, s1 := rng.NormFloat64(), 0.5+rng.Float64()
		x, y := make([]float64, d), make([]float64, d)
		for i := range x {
			x[i], y[i] = rng.NormFloat64(), rng.NormFloat64()
		}
		gx, gy := make([]float64, d), make([]float64, d)
		ux := quadEnergy(mu0, s0, x, gx)
		uy := quadEnergy(mu1, s1, y, gy)
		lhs := -Alpha(h, uy, y, x, gy) + Alpha(h, ux, x, y, gx)
		rhs := (-uy + logKernel(h, y, x, gy)) - (-ux + logKernel(h, x, y, gx))
		inc := LogWeightIncrement(h, ux, uy, x, y, gx, gy)
		scale := math.Max(1, math.Abs(rhs))
		if e := math.Abs(lhs-rhs) / scale; e > 1e-12 {
			t.Fatalf("trial %d: α form %v vs kernel form %v (rel err %.3g)", trial, lhs, rhs, e)
		}
		if e := math.Abs(inc-rhs) / scale; e > 1e-12 {
			t.Fatalf("trial %d: LogWeightIncrement %v vs kernel form %v (rel err %.3g)", trial, inc, rhs, e)
		}
	}
}

// docs/METHOD.md §7.2: Jarzynski on a closed form. U_k(x) = |x − μ_k|²/(2 s_k²) along a
// fixed schedule; E[e^{A_K}] = Z_K/Z_0 = (s_K/s_0)^d and the weighted moments
// of X_K are μ_K and s_K², for any h, while plain ULA is biased at large h.
func TestJarzynskiClosedForm(t *testing.T) {
	const d, n, K = 2, 40000, 40
	for _, h := range []float64{0.01, 0.1, 1.0} {
		rng := rand.New(rand.NewPCG(7, uint64(h*1000)))
		mu := func(k int) float64 { return 1.5 * float64(k) / K }
		s := func(k int) float64 { return 1 + 0.5*float64(k)/K }
		x := make([]float64, n*d)
		for i := range x {
			x[i] = mu(0) + s(0)*rng.NormFloat64()
		}
		pop := NewPopulation(x, d, 0, 0)
		for i := 0; i < n; i++ {
			pop.U[i] = quadEnergy(mu(0), s(0), x[i*d:(i+1)*d], pop.G[i*d:(i+1)*d])
		}
		for k := 0; k < K; k++ {
			pop.Move(h, rng.Uint64())
			for i := 0; i < n; i++ {
				pop.U[i] = quadEnergy(mu(k+1), s(k+1), x[i*d:(i+1)*d], pop.G[i*d:(i+1)*d])
			}
			pop.Reweight(h)
		}
		A := pop.A
		logRatio := LogMeanExp(A)
		want := float64(d) * math.Log(s(K)/s(0))
		p := make([]float64, n)
		Normalize(A, p)
		ess := ESSFraction(A) * n
		var m, v, mPlain, vPlain float64
		for i := 0; i < n; i++ {
			xi := x[i*d]
			m += p[i] * xi
			mPlain += xi / n
		}
		for i := 0; i < n; i++ {
			xi := x[i*d]
			v += p[i] * (xi - m) * (xi - m)
			vPlain += (xi - mPlain) * (xi - mPlain) / n
		}
		// Monte-Carlo error of weighted estimates ≈ 1/sqrt(ESS)
		se := 1 / math.Sqrt(ess)
		if math.Abs(logRatio-want) > 5*se {
			t.Errorf("h=%v: log E[e^A] = %.4f, want log Z_K/Z_0 = %.4f (±%.4f)", h, logRatio, want, se)
		}
		if math.Abs(m-mu(K)) > 5*s(K)*se {
			t.Errorf("h=%v: weighted mean %.4f, want %.4f (±%.4f)", h, m, mu(K), s(K)*se)
		}
		if math.Abs(v-s(K)*s(K)) > 5*math.Sqrt2*s(K)*s(K)*se {
			t.Errorf("h=%v: weighted variance %.4f, want %.4f", h, v, s(K)*s(K))
		}
		t.Logf("h=%v: log ratio %.4f (want %.4f), weighted var %.4f, plain ULA var %.4f (want %.4f), ESS %.0f", h, logRatio, want, v, vPlain, s(K)*s(K), ess)
		if h == 1.0 && math.Abs(vPlain-s(K)*s(K)) < 0.3 {
			t.Errorf("h=%v: plain ULA variance %.4f should be visibly biased from %.4f", h, vPlain, s(K)*s(K))
		}
	}
}

func TestESSAndLogMeanExp(t *testing.T) {
	tests := []struct {
		a   []float64
		ess float64
		lme float64
	}{
		{[]float64{0, 0, 0, 0}, 1, 0},
		{[]float64{0, math.Inf(-1), math.Inf(-1), math.Inf(-1)}, 0.25, -math.Log(4)},
		{[]float64{1000, 1000}, 1, 1000},
		{[]float64{-1000, -1000 + math.Log(3)}, 16.0 / 20, -1000 + math.Log(2)},
	}
	for _, tc := range tests {
		if got := ESSFraction(tc.a); math.Abs(got-tc.ess) > 1e-12 {
			t.Errorf("ESSFraction(%v) = %v, want %v", tc.a, got, tc.ess)
		}
		if got := LogMeanExp(tc.a); math.Abs(got-tc.lme) > 1e-9 {
			t.Errorf("LogMeanExp(%v) = %v, want %v", tc.a, got, tc.lme)
		}
	}
}

func TestResampleProportions(t *testing.T) {
	classW := []float64{0.1, 0.0, 0.6, 0.3}
	for _, scheme := range []Scheme{Systematic, Multinomial} {
		rng := rand.New(rand.NewPCG(3, 3))
		const n, reps = 1000, 50
		idx := make([]int, n)
		w := make([]float64, n)
		var got, want [4]float64
		for r := 0; r < reps; r++ {
			s := 0.0
			for i := range w {
				w[i] = classW[i%4] * rng.ExpFloat64()
				s += w[i]
			}
			for i := range w {
				w[i] /= s
				want[i%4] += w[i] * n
			}
			Resample(scheme, w, idx, rng)
			for i, j := range idx {
				if i > 0 && j < idx[i-1] {
					t.Fatalf("%s: indices not sorted", scheme)
				}
				if w[j] == 0 {
					t.Fatalf("%s: a zero-weight walker was selected", scheme)
				}
				got[j%4]++
			}
		}
		for j := range got {
			if d := math.Abs(got[j]-want[j]) / (n * reps); d > 0.01 {
				t.Errorf("%s: class %d drew %.0f offspring, expected %.0f", scheme, j, got[j], want[j])
			}
		}
	}
}

// The population's moves, weights and resampling depend only on the seed:
// never on GOMAXPROCS (the number of goroutines that share the chunks).
func TestPopulationIndependentOfCores(t *testing.T) {
	const n, d = 1000, 3 // not a multiple of ChunkWalkers
	run := func(procs int) *Population[float32] {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		rng := rand.New(rand.NewPCG(5, 5))
		pop := NewPopulation(make([]float32, n*d), d, 0, 0)
		for k := 0; k < 5; k++ {
			for i := 0; i < n; i++ {
				x, g := pop.X[i*d:(i+1)*d], pop.G[i*d:(i+1)*d]
				pop.U[i] = 0
				for j := range x {
					g[j] = 2 * x[j] * float32(k+1)
					pop.U[i] += float64(x[j]*x[j]) * float64(k+1)
				}
			}
			if k > 0 {
				pop.Reweight(0.05)
			}
			if k == 3 {
				pop.Resample(Systematic, rng)
			}
			pop.Move(0.05, rng.Uint64())
		}
		return pop
	}
	want := run(1)
	for _, procs := range []int{2, 3, 8} {
		got := run(procs)
		if !slices.Equal(got.X, want.X) || !slices.Equal(got.A, want.A) || got.LogZ() != want.LogZ() {
			t.Errorf("GOMAXPROCS=%d: positions, weights or log Ẑ differ from GOMAXPROCS=1", procs)
		}
	}
	if slices.Equal(want.X, run(1).X) && want.Resamplings == 1 {
		return
	}
	t.Errorf("two runs at GOMAXPROCS=1 differ, or the run did not resample")
}
