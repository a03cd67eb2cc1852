package kernels

import (
	"math"
	"testing"
)

func sigmoid(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

func TestSiLUAgainstFloat64(t *testing.T) {
	n := 20001
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(-100 + 200*float64(i)/float64(n-1))
	}
	x[n/2] = 0
	y, g, gy := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range gy {
		gy[i] = 1.5
	}
	SiLU(x, y)
	SiLUGrad(x, y, gy, g)
	for i, v := range x {
		s := sigmoid(float64(v))
		want := float64(v) * s
		if math.Abs(float64(y[i])-want) > 2e-6*math.Max(1, math.Abs(want)) {
			t.Fatalf("SiLU(%v) = %v, want %v (%s)", v, y[i], want, Implementation)
		}
		wg := 1.5 * s * (1 + float64(v)*(1-s))
		if math.Abs(float64(g[i])-wg) > 3e-6*math.Max(1, math.Abs(wg)) {
			t.Fatalf("SiLUGrad(%v) = %v, want %v (%s)", v, g[i], wg, Implementation)
		}
	}
}

func BenchmarkSiLU(b *testing.B) {
	x := make([]float32, 1<<20)
	out := make([]float32, len(x))
	for i := range x {
		x[i] = float32(i%1000)/100 - 5
	}
	b.SetBytes(int64(4 * len(x)))
	for i := 0; i < b.N; i++ {
		SiLU(x, out)
	}
}
