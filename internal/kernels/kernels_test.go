package kernels

import (
	"math"
	"slices"
	"sort"
	"testing"
)

func sigmoid(v float64) float64 { return 1 / (1 + math.Exp(-v)) }

func TestSiLUAgainstFloat64(t *testing.T) {
	forEachPath(t, testSiLUAgainstFloat64)
}

func testSiLUAgainstFloat64(t *testing.T) {
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
	// odd lengths exercise the vector loop and the scalar tail together
	fy, fd := make([]float32, n), make([]float32, n)
	SiLUDeriv(x, fy, fd)
	for i, v := range x {
		s := sigmoid(float64(v))
		if want := float64(v) * s; math.Abs(float64(fy[i])-want) > 2e-6*math.Max(1, math.Abs(want)) {
			t.Fatalf("SiLUDeriv(%v) y = %v, want %v (%s)", v, fy[i], want, Implementation)
		}
		if want := s * (1 + float64(v)*(1-s)); math.Abs(float64(fd[i])-want) > 3e-6*math.Max(1, math.Abs(want)) {
			t.Fatalf("SiLUDeriv(%v) d = %v, want %v (%s)", v, fd[i], want, Implementation)
		}
	}
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

func TestSiLUDerivDot(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, c := range []struct{ rows, cols int }{{1, 1}, {3, 7}, {5, 8}, {4, 131}, {64, 128}} {
			z, w := make([]float32, c.rows*c.cols), make([]float32, c.cols)
			for i := range z {
				z[i] = float32(math.Sin(float64(i)*1.7) * 12)
			}
			for j := range w {
				w[j] = float32(math.Cos(float64(j)*0.9)) - 0.2
			}
			d, f := make([]float32, len(z)), make([]float32, c.rows)
			SiLUDerivDot(z, w, d, f)
			for r := 0; r < c.rows; r++ {
				want, norm := 0.0, 0.0
				for j := 0; j < c.cols; j++ {
					v := float64(z[r*c.cols+j])
					s := sigmoid(v)
					want += v * s * float64(w[j])
					norm += math.Abs(v * s * float64(w[j]))
					if wd := s * (1 + v*(1-s)); math.Abs(float64(d[r*c.cols+j])-wd) > 3e-6*math.Max(1, math.Abs(wd)) {
						t.Fatalf("%dx%d: d[%d][%d] = %v, want %v (%s)", c.rows, c.cols, r, j, d[r*c.cols+j], wd, Implementation)
					}
				}
				if math.Abs(float64(f[r])-want) > 1e-6*math.Max(1, norm) {
					t.Fatalf("%dx%d: f[%d] = %v, want %v (%s)", c.rows, c.cols, r, f[r], want, Implementation)
				}
			}
		}
	})
}

// TestLinearSiLUDerivAndMulMatMulT checks both small-dimension kernels
// against float64 loops, over shapes that use the vector loops, their
// tails, and both.
func TestLinearSiLUDerivAndMulMatMulT(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, c := range []struct{ rows, k, cols int }{{1, 1, 1}, {3, 2, 8}, {5, 2, 13}, {4, 7, 128}, {2, 3, 5}} {
			val := func(n int, f float64) []float32 {
				v := make([]float32, n)
				for i := range v {
					v[i] = float32(math.Sin(float64(i)*f+0.3) * 3)
				}
				return v
			}
			x, w, b := val(c.rows*c.k, 1.3), val(c.k*c.cols, 0.7), val(c.cols, 2.1)
			y, d := make([]float32, c.rows*c.cols), make([]float32, c.rows*c.cols)
			LinearSiLUDeriv(x, w, b, y, d, c.k)
			for r := 0; r < c.rows; r++ {
				for j := 0; j < c.cols; j++ {
					z, norm := float64(b[j]), math.Abs(float64(b[j]))
					for q := 0; q < c.k; q++ {
						z += float64(x[r*c.k+q]) * float64(w[q*c.cols+j])
						norm += math.Abs(float64(x[r*c.k+q]) * float64(w[q*c.cols+j]))
					}
					s := sigmoid(z)
					// z itself is rounded to float32: allow for its error
					tol := 3e-6 * math.Max(1, norm)
					if got := float64(y[r*c.cols+j]); math.Abs(got-z*s) > tol*1.2 {
						t.Fatalf("%v: y[%d][%d] = %v, want %v (%s)", c, r, j, got, z*s, Implementation)
					}
					if got, want := float64(d[r*c.cols+j]), s*(1+z*(1-s)); math.Abs(got-want) > tol*1.2 {
						t.Fatalf("%v: d[%d][%d] = %v, want %v (%s)", c, r, j, got, want, Implementation)
					}
				}
			}
			// (y ⊙ d)·wᵀ + beta·x, with w read as k×cols (n = k)
			out := make([]float32, c.rows*c.k)
			MulMatMulT(y, d, w, x, 0.75, out, c.cols)
			for r := 0; r < c.rows; r++ {
				for i := 0; i < c.k; i++ {
					want, norm := 0.75*float64(x[r*c.k+i]), math.Abs(0.75*float64(x[r*c.k+i]))
					for j := 0; j < c.cols; j++ {
						v := float64(y[r*c.cols+j]) * float64(d[r*c.cols+j]) * float64(w[i*c.cols+j])
						want += v
						norm += math.Abs(v)
					}
					if got := float64(out[r*c.k+i]); math.Abs(got-want) > 1e-6*math.Max(1, norm) {
						t.Fatalf("%v: out[%d][%d] = %v, want %v (%s)", c, r, i, got, want, Implementation)
					}
				}
			}
		}
	})
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

// path is one implementation the tests can select.
type path struct {
	name   string
	scalar bool // setScalar(true): the scalar C code under cgo
}

// paths lists the default implementation and, with cgo, the scalar C path.
func paths() []path {
	p := []path{{Implementation, false}}
	if Implementation == "c" {
		p = append(p, path{"c-scalar", true})
	}
	return p
}

// forEachPath runs f as a subtest once per implementation path.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	for _, p := range paths() {
		t.Run(p.name, func(t *testing.T) {
			setScalar(p.scalar)
			defer setScalar(false)
			f(t)
		})
	}
}

// Normal32's draws are standard normal: moments, neighbour correlations
// (within a block, and the same lane one block on), tail fractions, a
// Kolmogorov–Smirnov test against Φ over all draws, and determinism by key.
func TestNormal32(t *testing.T) {
	forEachPath(t, testNormal32)
}

func testNormal32(t *testing.T) {
	const n = 1 << 20
	x := make([]float32, n+5) // the tail takes part of one more block
	Normal32(x, 42)
	var m1, m2, m3, m4 float64
	for _, v := range x {
		f := float64(v)
		m1 += f
		m2 += f * f
		m3 += f * f * f
		m4 += f * f * f * f
	}
	N := float64(len(x))
	m1, m2, m3, m4 = m1/N, m2/N, m3/N, m4/N
	se := 1 / math.Sqrt(N)
	if math.Abs(m1) > 5*se || math.Abs(m2-1) > 5*math.Sqrt2*se || math.Abs(m3) > 5*math.Sqrt(15)*se || math.Abs(m4-3) > 5*math.Sqrt(96)*se {
		t.Fatalf("moments: mean %v var %v skew %v kurt %v", m1, m2, m3, m4)
	}
	for _, lag := range []int{1, 7, 8, 9, 16} {
		c := 0.0
		for i := lag; i < len(x); i++ {
			c += float64(x[i]) * float64(x[i-lag])
		}
		if c /= N; math.Abs(c) > 5*se {
			t.Errorf("lag-%d correlation %v", lag, c)
		}
	}
	for _, tail := range []float64{1, 2, 3, 4} {
		p := math.Erfc(tail / math.Sqrt2) // P(|z| > tail)
		k := 0
		for _, v := range x {
			if math.Abs(float64(v)) > tail {
				k++
			}
		}
		if sd := math.Sqrt(N * p * (1 - p)); math.Abs(float64(k)-N*p) > 5*sd {
			t.Errorf("P(|z| > %v) = %v, want %v", tail, float64(k)/N, p)
		}
	}
	sorted := make([]float64, len(x))
	for i, v := range x {
		sorted[i] = float64(v)
	}
	sort.Float64s(sorted)
	d := 0.0
	for i, v := range sorted {
		cdf := 0.5 * math.Erfc(-v/math.Sqrt2)
		d = math.Max(d, math.Max(math.Abs(cdf-float64(i)/N), math.Abs(cdf-float64(i+1)/N)))
	}
	if d > 1.63/math.Sqrt(N) { // 1 % level
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

// A prefix of the stream does not depend on the length asked for.
func TestNormal32Prefix(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		long := make([]float32, 100)
		Normal32(long, 7)
		for _, n := range []int{1, 8, 15, 16, 17, 33} {
			short := make([]float32, n)
			Normal32(short, 7)
			for i, v := range short {
				if v != long[i] {
					t.Fatalf("n=%d: draw %d is %v, want %v", n, i, v, long[i])
				}
			}
		}
	})
}

// The generator words of every path equal the Go reference lanes, and the
// reference follows its definition: lane j starts from splitmix64 outputs 2j
// and 2j+1, and different keys give different words.
func TestStreamMatchesReference(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, key := range []uint64{0, 1, 42, 1<<63 + 12345, math.MaxUint64} {
			const blocks = 50
			got := make([]uint32, 16*blocks)
			streamBits(got, key)
			r := newLanes(key)
			var w [8]uint32
			for i := 0; i < 2*blocks; i++ {
				r.next(&w)
				for j, v := range w {
					if got[8*i+j] != v {
						t.Fatalf("key %d: word %d (lane %d) is %#x, want %#x", key, 8*i+j, j, got[8*i+j], v)
					}
				}
			}
		}
	})
	k := uint64(99)
	r := newLanes(99)
	var w [8]uint32
	r.next(&w)
	for j := range w {
		a := splitmix64(&k)
		splitmix64(&k)
		if want := rotl(uint32(a>>32)*5, 7) * 9; w[j] != want {
			t.Fatalf("lane %d: first word %#x, want %#x", j, w[j], want)
		}
	}
	if laneState(0, 0) != [4]uint32{1, 0, 0, 0} {
		t.Fatalf("all-zero lane state not replaced: %v", laneState(0, 0))
	}
	a, b := make([]uint32, 16), make([]uint32, 16)
	streamBits(a, 5)
	streamBits(b, 6)
	if slices.Equal(a, b) {
		t.Fatal("keys 5 and 6 give the same words")
	}
}

// Every path's draws equal the Go reference transform (float64) on the same
// words up to the float32 evaluation of log and sincos (about 5e-7 at most
// with AVX2, one float32 rounding with libm).
func TestNormal32MatchesReference(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		for _, key := range []uint64{3, 1 << 40} {
			got := make([]float32, 16*4096+9)
			Normal32(got, key)
			r := newLanes(key)
			var z [16]float32
			for i := 0; i < len(got); i += 16 {
				r.normalBlock(&z)
				for j, v := range got[i:min(i+16, len(got))] {
					if math.Abs(float64(v-z[j])) > 2e-6 {
						t.Fatalf("key %d: draw %d is %v, reference %v", key, i+j, v, z[j])
					}
				}
			}
		}
	})
}

// ULA32 is x − h·g + s·Normal32(key) elementwise, to float32 rounding, and
// leaves the rest of a longer g alone.
func TestULA32(t *testing.T) {
	forEachPath(t, func(t *testing.T) {
		tests := []struct {
			n    int
			h, s float32
			key  uint64
		}{
			{0, 0.1, 0.5, 1},
			{1, 0.1, 0.5, 2},
			{15, 0.01, float32(math.Sqrt(0.02)), 3},
			{16, 1, 1, 4},
			{17, 1e-3, 0.05, 5},
			{1000, 0.25, float32(math.Sqrt(0.5)), 6},
		}
		for _, tc := range tests {
			x, g := make([]float32, tc.n), make([]float32, tc.n+3)
			for i := range x {
				x[i] = float32(math.Sin(float64(i))) * 3
				g[i] = float32(math.Cos(float64(3*i))) * 10
			}
			x0 := slices.Clone(x)
			z := make([]float32, tc.n)
			Normal32(z, tc.key)
			ULA32(x, g, tc.h, tc.s, tc.key)
			for i := range x {
				a, b, c := float64(x0[i]), float64(tc.h)*float64(g[i]), float64(tc.s)*float64(z[i])
				want := a - b + c
				if tol := 1e-6 * (math.Abs(a) + math.Abs(b) + math.Abs(c)); math.Abs(float64(x[i])-want) > tol {
					t.Fatalf("n=%d: x[%d] = %v, want %v", tc.n, i, x[i], want)
				}
			}
		}
	})
}

func TestULA32ShortGradientPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	ULA32(make([]float32, 4), make([]float32, 3), 0.1, 0.1, 1)
}

func BenchmarkNormal32(b *testing.B) {
	x := make([]float32, 1<<20)
	b.SetBytes(4 << 20)
	for i := 0; i < b.N; i++ {
		Normal32(x, uint64(i))
	}
}

// BenchmarkULA32 is one Langevin move of 64 walkers in d = 784.
func BenchmarkULA32(b *testing.B) {
	n := 64 * 784
	x, g := make([]float32, n), make([]float32, n)
	for i := range g {
		g[i] = float32(i%7) - 3
	}
	b.SetBytes(int64(4 * n))
	for i := 0; i < b.N; i++ {
		ULA32(x, g, 0.01, 0.1414, uint64(i))
	}
}
