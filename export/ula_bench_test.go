package export

import (
	"fmt"
	"math/rand/v2"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/jarzyn/jarzyn/models"
	"github.com/jarzyn/jarzyn/smc"
)

// BenchmarkULA compares K Langevin steps with Jarzynski increments done
//   - stepwise: K runs of the Build model, the move and ΔA in Go (smc), and
//   - fused: one run of the BuildULA model (noise drawn in Go, ΔA summed in Go),
//
// both on one ONNX Runtime thread, with preallocated tensors, noise
// generation included. It reports ns per walker-step.
//
//	go test ./export -run '^$' -bench ULA -benchtime 20x
func BenchmarkULA(b *testing.B) {
	needORT(b)
	const k = 16
	mlp := testMLP(b, models.SiLU, 2, []int{64, 64}, 1)
	models := []struct {
		name string
		p    *models.Params
	}{
		{"gmm-d2-m3", testGMM(b, 2, 3, 1)},
		{"gmm-d50-m2", testGMM(b, 50, 2, 2)},
		{"mlp-d2-64x64", mlp},
	}
	for _, m := range models {
		for _, n := range []int{1024, 8192} {
			b.Run(fmt.Sprintf("%s/n=%d/stepwise", m.name, n), func(b *testing.B) { benchStepwise(b, m.p, n, k) })
			b.Run(fmt.Sprintf("%s/n=%d/fused", m.name, n), func(b *testing.B) { benchFused(b, m.p, n, k) })
		}
	}
}

func oneThread(b *testing.B) *ort.SessionOptions {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		b.Fatal(err)
	}
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		b.Fatal(err)
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		b.Fatal(err)
	}
	return opts
}

func tensor[T ort.TensorData](b *testing.B, data []T, shape ...int64) *ort.Tensor[T] {
	t, err := ort.NewTensor(ort.NewShape(shape...), data)
	if err != nil {
		b.Fatal(err)
	}
	return t
}

func benchStepwise(b *testing.B, p *models.Params, n, k int) {
	model, err := Build(p, Info{})
	if err != nil {
		b.Fatal(err)
	}
	opts := oneThread(b)
	defer opts.Destroy()
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{InputX}, []string{OutputEnergy, OutputGrad}, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Destroy()
	d := p.Spec.Dim
	const h = 0.01
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	x0, g0, u0 := make([]float32, n*d), make([]float32, n*d), make([]float32, n)
	u, g := make([]float32, n), make([]float32, n*d)
	xt, ut, gt := tensor(b, x, int64(n), int64(d)), tensor(b, u, int64(n)), tensor(b, g, int64(n), int64(d))
	defer xt.Destroy()
	defer ut.Destroy()
	defer gt.Destroy()
	eval := func() {
		if err := s.Run([]ort.Value{xt}, []ort.Value{ut, gt}); err != nil {
			b.Fatal(err)
		}
	}
	logW := make([]float64, n)
	eval()
	b.ReportAllocs()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for j := 0; j < k; j++ {
			copy(x0, x)
			copy(g0, g)
			copy(u0, u)
			smc.ULA(x, g, h, rng)
			eval()
			for i := 0; i < n; i++ {
				r := i * d
				logW[i] += smc.LogWeightIncrement(h, float64(u0[i]), float64(u[i]), x0[r:r+d], x[r:r+d], g0[r:r+d], g[r:r+d])
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k*n), "ns/walker-step")
}

func benchFused(b *testing.B, p *models.Params, n, k int) {
	model, err := BuildULA(p, Info{})
	if err != nil {
		b.Fatal(err)
	}
	opts := oneThread(b)
	defer opts.Destroy()
	s, err := ort.NewDynamicAdvancedSessionWithONNXData(model, []string{InputX, InputNoise, InputStepSize},
		[]string{OutputX, OutputEnergy, OutputGrad, OutputLogW}, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Destroy()
	d := p.Spec.Dim
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*d)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	noise := make([]float32, k*n*d)
	xo, u, g, dA := make([]float32, n*d), make([]float32, n), make([]float32, n*d), make([]float32, k*n)
	xt, nt := tensor(b, x, int64(n), int64(d)), tensor(b, noise, int64(k), int64(n), int64(d))
	xot, ut, gt, at := tensor(b, xo, int64(n), int64(d)), tensor(b, u, int64(n)), tensor(b, g, int64(n), int64(d)), tensor(b, dA, int64(k), int64(n))
	ht, err := ort.NewScalar(float32(0.01))
	if err != nil {
		b.Fatal(err)
	}
	for _, t := range []ort.Value{xt, nt, xot, ut, gt, at, ht} {
		defer t.Destroy()
	}
	logW := make([]float64, n)
	b.ReportAllocs()
	b.ResetTimer()
	for it := 0; it < b.N; it++ {
		for i := range noise {
			noise[i] = float32(rng.NormFloat64())
		}
		if err := s.Run([]ort.Value{xt, nt, ht}, []ort.Value{xot, ut, gt, at}); err != nil {
			b.Fatal(err)
		}
		for j := 0; j < k; j++ {
			for i := 0; i < n; i++ {
				logW[i] += float64(dA[j*n+i])
			}
		}
		copy(x, xo)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*k*n), "ns/walker-step")
}
