package models

import (
	"math"
	"math/rand/v2"
	"testing"
)

func randomParams(t *testing.T, spec Spec, seed uint64) *Params {
	t.Helper()
	p, err := NewParams(spec)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 0))
	for k := range p.Tensors {
		for i := range p.Tensors[k].Data {
			p.Tensors[k].Data[i] = 0.8 * rng.NormFloat64()
		}
	}
	return p
}

// docs/METHOD.md §7.3 for the reference implementation: ∇ₓU against central differences.
func TestEnergyGradientFiniteDifference(t *testing.T) {
	specs := []Spec{
		{Family: GMM, Dim: 3, Modes: 4},
		{Family: MLP, Dim: 3, Hidden: []int{5, 4}, Activation: SiLU, BaseStd: 1.3, BaseMean: []float64{1, 0, -1}},
		{Family: MLP, Dim: 2, Hidden: []int{6}, Activation: Softplus, BaseStd: 0.7},
		{Family: MLP, Dim: 2, Hidden: []int{3, 3, 3}, Activation: Tanh, BaseStd: 2},
	}
	for _, spec := range specs {
		t.Run(string(spec.Family)+"_"+string(spec.Activation), func(t *testing.T) {
			p := randomParams(t, spec, 4)
			rng := rand.New(rand.NewPCG(1, 1))
			x := make([]float64, spec.Dim)
			g := make([]float64, spec.Dim)
			for trial := 0; trial < 20; trial++ {
				for i := range x {
					x[i] = 1.5 * rng.NormFloat64()
				}
				p.Energy(x, g)
				for i := range x {
					const eps = 1e-5
					old := x[i]
					x[i] = old + eps
					up := p.Energy(x, nil)
					x[i] = old - eps
					dn := p.Energy(x, nil)
					x[i] = old
					fd := (up - dn) / (2 * eps)
					if math.Abs(fd-g[i]) > 1e-7*math.Max(1, math.Abs(fd)) {
						t.Fatalf("∂U/∂x%d = %v, finite difference %v", i, g[i], fd)
					}
				}
			}
		})
	}
}

// The GMM's log Z is (d/2) log 2π + log Σ e^{−z}: check by 2-D quadrature.
func TestGMMExactLogZByQuadrature(t *testing.T) {
	p := randomParams(t, Spec{Family: GMM, Dim: 2, Modes: 3}, 2)
	logZ, ok := p.ExactLogZ()
	if !ok {
		t.Fatal("GMM log Z should be known")
	}
	const n, lo, hi = 600, -9.0, 9.0
	dx := (hi - lo) / n
	vals := make([]float64, 0, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			vals = append(vals, -p.Energy([]float64{lo + (float64(i)+0.5)*dx, lo + (float64(j)+0.5)*dx}, nil))
		}
	}
	quad := LogSumExp(vals) + 2*math.Log(dx)
	if math.Abs(quad-logZ) > 1e-6 {
		t.Fatalf("quadrature log Z %v, closed form %v", quad, logZ)
	}
}

func TestMLPInitIsBaseGaussian(t *testing.T) {
	spec := Spec{Family: MLP, Dim: 3, Hidden: []int{4, 4}, Activation: SiLU, BaseStd: 2, BaseMean: []float64{1, 2, 3}}
	p, err := InitMLP(spec, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	logZ, ok := p.ExactLogZ()
	if !ok || math.Abs(logZ-1.5*math.Log(2*math.Pi*4)) > 1e-12 {
		t.Fatalf("log Z at init = %v (%v), want %v", logZ, ok, 1.5*math.Log(2*math.Pi*4))
	}
	x := []float64{0.5, 2.5, 3}
	want := (0.25 + 0.25 + 0) / 8
	if u := p.Energy(x, nil); math.Abs(u-want) > 1e-12 {
		t.Fatalf("U at init = %v, want the base %v", u, want)
	}
}

func TestContainerRejectsDamage(t *testing.T) {
	p := randomParams(t, Spec{Family: GMM, Dim: 2, Modes: 2}, 1)
	path := t.TempDir() + "/m.weights"
	if err := WriteParams(path, p, map[string]string{"method": "jarzynski"}); err != nil {
		t.Fatal(err)
	}
	q, meta, err := ReadParams(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["method"] != "jarzynski" || q.Tensors[0].Data[1] != p.Tensors[0].Data[1] {
		t.Fatalf("round trip lost data: %v %v", meta, q.Tensors[0].Data)
	}
	c := NewContainer("weights")
	c.PutParams(p)
	b, _ := c.Encode()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"truncated", b[:len(b)-10]},
		{"flipped", append(append([]byte{}, b[:40]...), append([]byte{b[40] ^ 1}, b[41:]...)...)},
		{"empty", nil},
		{"not ours", []byte("hello world, this is not a container file at all....")},
	} {
		if _, err := DecodeContainer(tc.data, tc.name); err == nil {
			t.Errorf("%s: damaged file was accepted", tc.name)
		}
	}
}

func FuzzDecodeContainer(f *testing.F) {
	c := NewContainer("weights")
	c.PutFloats("x", []float64{1, 2})
	b, _ := c.Encode()
	f.Add(b)
	f.Add([]byte("JARZYNC1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeContainer(data, "fuzz")
		if err == nil {
			c.Params() // must not panic
		}
	})
}
