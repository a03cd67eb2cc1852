package kernels

import (
	"math"
	"sort"
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

// Normal32's draws are standard normal: moments, a Kolmogorov–Smirnov test
// against Φ, independence of neighbours, and determinism by key.
func TestNormal32(t *testing.T) {
	const n = 1 << 20
	x := make([]float32, n+5) // odd tail exercises the scalar path
	Normal32(x, 42)
	var m1, m2, m3, m4, lag float64
	for i, v := range x {
		f := float64(v)
		m1 += f
		m2 += f * f
		m3 += f * f * f
		m4 += f * f * f * f
		if i > 0 {
			lag += f * float64(x[i-1])
		}
	}
	N := float64(len(x))
	m1, m2, m3, m4, lag = m1/N, m2/N, m3/N, m4/N, lag/N
	se := 1 / math.Sqrt(N)
	if math.Abs(m1) > 5*se || math.Abs(m2-1) > 5*math.Sqrt2*se || math.Abs(m3) > 5*math.Sqrt(15)*se || math.Abs(m4-3) > 5*math.Sqrt(96)*se || math.Abs(lag) > 5*se {
		t.Fatalf("moments: mean %v var %v skew %v kurt %v lag-1 %v (%s)", m1, m2, m3, m4, lag, Implementation)
	}
	// KS on a sorted subsample
	sub := make([]float64, 20000)
	for i := range sub {
		sub[i] = float64(x[i*37])
	}
	sort.Float64s(sub)
	d := 0.0
	for i, v := range sub {
		cdf := 0.5 * math.Erfc(-v/math.Sqrt2)
		d = math.Max(d, math.Max(math.Abs(cdf-float64(i)/float64(len(sub))), math.Abs(cdf-float64(i+1)/float64(len(sub)))))
	}
	if d > 1.63/math.Sqrt(float64(len(sub))) { // 1 % level
		t.Fatalf("Kolmogorov–Smirnov distance %v", d)
	}
	y := make([]float32, n+5)
	Normal32(y, 42)
	for i := range x {
		if x[i] != y[i] {
			t.Fatalf("same key, different draw at %d", i)
		}
	}
	Normal32(y, 43)
	same := 0
	for i := range x {
		if x[i] == y[i] {
			same++
		}
	}
	if same > 10 {
		t.Fatalf("keys 42 and 43 share %d draws", same)
	}
}

func BenchmarkNormal32(b *testing.B) {
	x := make([]float32, 1<<20)
	b.SetBytes(4 << 20)
	for i := 0; i < b.N; i++ {
		Normal32(x, uint64(i))
	}
}
