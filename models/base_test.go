package models

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

// withRandomBase returns spec with a random base of rank k: orthonormal
// rows by Gram–Schmidt, variances spread over three decades.
func withRandomBase(spec Spec, k int, seed uint64) Spec {
	rng := rand.New(rand.NewPCG(seed, 17))
	d := spec.Dim
	v := RandomOrthonormal(rng, k, d)
	lam := make([]float64, k)
	for j := range lam {
		lam[j] = math.Pow(10, 2*rng.Float64()-1)
	}
	spec.BaseVectors, spec.BaseVariances = v, lam
	return spec
}

// denseSigma is Σ = σ0²I + Σ_j λ_j v_j v_jᵀ as a d×d matrix.
func denseSigma(s Spec) []float64 {
	d := s.Dim
	m := make([]float64, d*d)
	for i := 0; i < d; i++ {
		m[i*d+i] = s.BaseStd * s.BaseStd
	}
	for j, l := range s.BaseVariances {
		v := s.BaseVectors[j*d : (j+1)*d]
		for a := 0; a < d; a++ {
			for b := 0; b < d; b++ {
				m[a*d+b] += l * v[a] * v[b]
			}
		}
	}
	return m
}

// cholesky returns the lower factor L of a (d×d, SPD), a = L·Lᵀ.
func cholesky(a []float64, d int) []float64 {
	l := make([]float64, d*d)
	for i := 0; i < d; i++ {
		for j := 0; j <= i; j++ {
			s := a[i*d+j]
			for k := 0; k < j; k++ {
				s -= l[i*d+k] * l[j*d+k]
			}
			if i == j {
				l[i*d+i] = math.Sqrt(s)
			} else {
				l[i*d+j] = s / l[j*d+j]
			}
		}
	}
	return l
}

// cholSolve solves L·Lᵀ·x = b.
func cholSolve(l, b []float64, d int) []float64 {
	y := make([]float64, d)
	for i := 0; i < d; i++ {
		s := b[i]
		for k := 0; k < i; k++ {
			s -= l[i*d+k] * y[k]
		}
		y[i] = s / l[i*d+i]
	}
	x := make([]float64, d)
	for i := d - 1; i >= 0; i-- {
		s := y[i]
		for k := i + 1; k < d; k++ {
			s -= l[k*d+i] * x[k]
		}
		x[i] = s / l[i*d+i]
	}
	return x
}

// The low-rank base against brute force in float64: log Z0 = (d/2)·log 2π +
// ½·log det Σ from a Cholesky factor, U at θ0 = ½rᵀΣ⁻¹r and ∇ₓU = Σ⁻¹r from
// dense solves, and Σ^{1/2}·Σ^{1/2} = Σ column by column.
func TestPCABaseAgainstDense(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec Spec
		k    int
	}{
		{"mlp", Spec{Family: MLP, Dim: 12, Hidden: []int{5}, Activation: SiLU, BaseStd: 0.3, BaseMean: seq(12, 0.1)}, 4},
		{"mlp_full_rank", Spec{Family: MLP, Dim: 6, Hidden: []int{3}, Activation: Tanh, BaseStd: 1.7}, 6},
		{"conv", convSpec([]int{1, 4, 4}, []ConvLayer{{Out: 2, Kernel: 3, Stride: 1, Pad: 1, Activation: SiLU}}, []int{3}, SiLU, 0), 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := withRandomBase(tc.spec, tc.k, 3)
			if s.BaseStd == 0 {
				s.BaseStd = 0.5
			}
			d := s.Dim
			p, err := NewParams(s) // f = 0: the model is the base
			if err != nil {
				t.Fatal(err)
			}
			sig := denseSigma(s)
			l := cholesky(sig, d)
			logDet := 0.0
			for i := 0; i < d; i++ {
				logDet += 2 * math.Log(l[i*d+i])
			}
			want := 0.5*float64(d)*math.Log(2*math.Pi) + 0.5*logDet
			got, ok := p.ExactLogZ()
			if !ok || math.Abs(got-want) > 1e-12*math.Abs(want) {
				t.Errorf("log Z0 = %v (ok %v), brute force %v", got, ok, want)
			}
			rng := rand.New(rand.NewPCG(9, 9))
			x, g := make([]float64, d), make([]float64, d)
			mu := s.Mu0()
			for trial := 0; trial < 10; trial++ {
				r := make([]float64, d)
				for i := range x {
					x[i] = mu[i] + rng.NormFloat64()
					r[i] = x[i] - mu[i]
				}
				u := p.Energy(x, g)
				sr := cholSolve(l, r, d)
				wantU := 0.0
				for i := range r {
					wantU += 0.5 * r[i] * sr[i]
				}
				if math.Abs(u-wantU) > 1e-10*math.Max(1, wantU) {
					t.Fatalf("U = %v, ½rᵀΣ⁻¹r = %v", u, wantU)
				}
				for i := range g {
					if math.Abs(g[i]-sr[i]) > 1e-10*math.Max(1, math.Abs(sr[i])) {
						t.Fatalf("∇ₓU[%d] = %v, Σ⁻¹r = %v", i, g[i], sr[i])
					}
				}
			}
			// Σ^{1/2} e_i, through BaseSample with μ0 = 0
			s0 := s
			s0.BaseMean = nil
			cols := make([][]float64, d)
			for i := range cols {
				e := make([]float64, d)
				e[i] = 1
				cols[i] = make([]float64, d)
				s0.BaseSample(e, cols[i])
			}
			for a := 0; a < d; a++ {
				for b := 0; b < d; b++ {
					v := 0.0
					for i := 0; i < d; i++ {
						v += cols[i][a] * cols[i][b] // Σ^{1/2} is symmetric
					}
					if math.Abs(v-sig[a*d+b]) > 1e-12*math.Max(1, math.Abs(sig[a*d+b])) {
						t.Fatalf("(Σ^{1/2})²[%d,%d] = %v, Σ = %v", a, b, v, sig[a*d+b])
					}
				}
			}
		})
	}
}

// Exact base draws X0 = μ0 + Σ^{1/2}ξ have mean μ0 and covariance Σ within
// Monte-Carlo error.
func TestPCABaseSampleMoments(t *testing.T) {
	s := withRandomBase(Spec{Family: MLP, Dim: 5, Hidden: []int{3}, Activation: SiLU, BaseStd: 0.4, BaseMean: []float64{1, -1, 0, 2, 0.5}}, 2, 5)
	const n = 40000
	d := s.Dim
	rng := rand.New(rand.NewPCG(4, 4))
	xi, x := make([]float64, d), make([]float64, d)
	mean := make([]float64, d)
	cov := make([]float64, d*d)
	mu := s.Mu0()
	for i := 0; i < n; i++ {
		for k := range xi {
			xi[k] = rng.NormFloat64()
		}
		s.BaseSample(xi, x)
		for a := 0; a < d; a++ {
			mean[a] += x[a] / n
			for b := 0; b < d; b++ {
				cov[a*d+b] += (x[a] - mu[a]) * (x[b] - mu[b]) / n
			}
		}
	}
	sig := denseSigma(s)
	for a := 0; a < d; a++ {
		if se := math.Sqrt(sig[a*d+a] / n); math.Abs(mean[a]-mu[a]) > 5*se {
			t.Errorf("mean[%d] = %v, want %v ± %v", a, mean[a], mu[a], se)
		}
		for b := 0; b < d; b++ {
			se := math.Sqrt((sig[a*d+a]*sig[b*d+b] + sig[a*d+b]*sig[a*d+b]) / n)
			if math.Abs(cov[a*d+b]-sig[a*d+b]) > 5*se {
				t.Errorf("cov[%d,%d] = %v, want Σ = %v ± %v", a, b, cov[a*d+b], sig[a*d+b], se)
			}
		}
	}
}

// docs/METHOD.md §7.3 with the base: ∇ₓU of MLP and conv energies with a
// low-rank base and random parameters against central differences.
func TestPCABaseGradientFiniteDifference(t *testing.T) {
	for _, spec := range []Spec{
		withRandomBase(Spec{Family: MLP, Dim: 7, Hidden: []int{5, 4}, Activation: SiLU, BaseStd: 0.6, BaseMean: seq(7, 0.2)}, 3, 8),
		withRandomBase(func() Spec {
			s := convSpec([]int{1, 5, 5}, []ConvLayer{{Out: 3, Kernel: 3, Stride: 2, Pad: 1, Activation: SiLU}}, []int{4}, Tanh, 0)
			s.BaseStd = 0.5
			return s
		}(), 4, 9),
	} {
		t.Run(string(spec.Family), func(t *testing.T) {
			p := randomParams(t, spec, 6)
			rng := rand.New(rand.NewPCG(2, 2))
			x, g := make([]float64, spec.Dim), make([]float64, spec.Dim)
			for trial := 0; trial < 5; trial++ {
				for i := range x {
					x[i] = rng.NormFloat64()
				}
				p.Energy(x, g)
				for i := range x {
					fd := centralDiff(&x[i], 1e-5, func() float64 { return p.Energy(x, nil) })
					if math.Abs(fd-g[i]) > 1e-7*math.Max(1, math.Abs(fd)) {
						t.Fatalf("∂U/∂x%d = %v, finite difference %v", i, g[i], fd)
					}
				}
			}
		})
	}
}

func TestPCABaseValidate(t *testing.T) {
	good := withRandomBase(Spec{Family: MLP, Dim: 4, Hidden: []int{2}, Activation: SiLU, BaseStd: 1}, 2, 1)
	if err := good.Validate(); err != nil {
		t.Fatalf("valid base refused: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		edit       func(*Spec)
	}{
		{"short vectors", "base_vectors must have", func(s *Spec) { s.BaseVectors = s.BaseVectors[:7] }},
		{"negative variance", "base_variances[1]", func(s *Spec) { s.BaseVariances = []float64{1, -1} }},
		{"not orthonormal", "orthonormal", func(s *Spec) { s.BaseVectors = append([]float64(nil), s.BaseVectors...); s.BaseVectors[0] += 0.01 }},
		{"nan entry", "base_vectors[3]", func(s *Spec) { s.BaseVectors = append([]float64(nil), s.BaseVectors...); s.BaseVectors[3] = math.NaN() }},
		{"gmm", "not gmm", func(s *Spec) { s.Family, s.Modes = GMM, 2 }},
	} {
		s := good
		tc.edit(&s)
		if err := s.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate = %v, want an error containing %q", tc.name, err, tc.want)
		}
	}
}
