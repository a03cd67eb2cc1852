package models

import (
	"math"
	"math/rand/v2"
	"testing"
)

// The latent energy reproduces U and ∇ₓU exactly (float64): U(x) = V(s) +
// |p|²/(2σ0²) and ∇ₓU(x) = ∇V(s)·Qᵀ + p/σ0², with Q orthonormal.
func TestLatentSplitsTheEnergy(t *testing.T) {
	cases := []struct {
		name   string
		spec   Spec
		deadW0 bool // zero some columns of W0 (rank-deficient)
	}{
		{"silu_d12_h4", Spec{Family: MLP, Dim: 12, Hidden: []int{4, 6}, Activation: SiLU, BaseStd: 1.3, BaseMean: seq(12, 0.1)}, false},
		{"tanh_d9_h8", Spec{Family: MLP, Dim: 9, Hidden: []int{8}, Activation: Tanh, BaseStd: 0.7}, false},
		{"softplus_rank_deficient", Spec{Family: MLP, Dim: 10, Hidden: []int{5, 5}, Activation: Softplus, BaseStd: 1}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			p, err := NewParams(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			for _, tn := range p.Tensors {
				for i := range tn.Data {
					tn.Data[i] = rng.NormFloat64() * 0.7
				}
			}
			h0 := c.spec.Hidden[0]
			if c.deadW0 {
				for k := 0; k < c.spec.Dim; k++ {
					p.Tensors[0].Data[k*h0+1] = 0
					p.Tensors[0].Data[k*h0+3] = 2 * p.Tensors[0].Data[k*h0+2]
				}
			}
			l, ok := p.Latent()
			if !ok {
				t.Fatal("no latent reduction")
			}
			d, r := l.Dim, l.Rank
			if d != c.spec.Dim || r != h0 || l.Params.Spec.Dim != r {
				t.Fatalf("dims d=%d r=%d latent spec dim %d", d, r, l.Params.Spec.Dim)
			}
			for a := 0; a < r; a++ {
				for b := 0; b < r; b++ {
					dot := 0.0
					for k := 0; k < d; k++ {
						dot += l.Basis[k*r+a] * l.Basis[k*r+b]
					}
					want := 0.0
					if a == b {
						want = 1
					}
					if math.Abs(dot-want) > 1e-12 {
						t.Fatalf("QᵀQ[%d,%d] = %v", a, b, dot)
					}
				}
			}
			mu := c.spec.Mu0()
			inv := 1 / (c.spec.BaseStd * c.spec.BaseStd)
			for trial := 0; trial < 20; trial++ {
				x := make([]float64, d)
				for k := range x {
					x[k] = mu[k] + 2*rng.NormFloat64()
				}
				g := make([]float64, d)
				u := p.Energy(x, g)
				s, pp := l.Split(x, mu)
				gs := make([]float64, r)
				v := l.Params.Energy(s, gs)
				pn := 0.0
				for _, t := range pp {
					pn += t * t
				}
				if e := math.Abs(u - (v + 0.5*inv*pn)); e > 1e-10*math.Max(1, math.Abs(u)) {
					t.Fatalf("U = %v, V + |p|²/2σ² = %v", u, v+0.5*inv*pn)
				}
				for k := 0; k < d; k++ {
					want := pp[k] * inv
					for a := 0; a < r; a++ {
						want += gs[a] * l.Basis[k*r+a]
					}
					if math.Abs(g[k]-want) > 1e-10*math.Max(1, math.Abs(g[k])) {
						t.Fatalf("∇U[%d] = %v, ∇V·Qᵀ + p/σ² = %v", k, g[k], want)
					}
				}
			}
		})
	}
}

func TestLatentOnlyWhereItSaves(t *testing.T) {
	for _, s := range []Spec{
		{Family: MLP, Dim: 4, Hidden: []int{4}, Activation: SiLU, BaseStd: 1},
		{Family: MLP, Dim: 2, Hidden: []int{32, 32}, Activation: SiLU, BaseStd: 1},
		{Family: GMM, Dim: 50, Modes: 2},
	} {
		p, err := NewParams(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := p.Latent(); ok {
			t.Errorf("%+v: latent reduction offered", s)
		}
	}
}

func seq(n int, step float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = step * float64(i)
	}
	return v
}

func TestLatentPath(t *testing.T) {
	for in, want := range map[string]string{"m/model.onnx": "m/model.latent.onnx", "x": "x.latent.onnx", "a.b/c.onnx": "a.b/c.latent.onnx"} {
		if got := LatentPath(in); got != want {
			t.Errorf("LatentPath(%q) = %q, want %q", in, got, want)
		}
	}
}
