package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// convTestGeoms cover strides 1–3, kernels 1–5, padding from none to K − 1,
// odd and non-square images, and the MNIST net's layers.
var convTestGeoms = []ConvGeom{
	{C: 1, H: 5, W: 5, K: 3, S: 1, P: 0},
	{C: 3, H: 7, W: 6, K: 3, S: 2, P: 1},
	{C: 2, H: 9, W: 9, K: 5, S: 2, P: 4},
	{C: 4, H: 4, W: 5, K: 2, S: 2, P: 0},
	{C: 2, H: 3, W: 3, K: 5, S: 1, P: 4},
	{C: 3, H: 8, W: 7, K: 4, S: 3, P: 1},
	{C: 2, H: 5, W: 3, K: 1, S: 1, P: 0},
	{C: 3, H: 6, W: 9, K: 3, S: 3, P: 2},
	{C: 1, H: 7, W: 4, K: 4, S: 2, P: 3},
	{C: 1, H: 28, W: 28, K: 5, S: 2, P: 4},
	{C: 16, H: 16, W: 16, K: 3, S: 2, P: 1},
	{C: 32, H: 8, W: 8, K: 3, S: 2, P: 1},
	{C: 64, H: 4, W: 4, K: 3, S: 2, P: 1},
}

func withOut(g ConvGeom) ConvGeom {
	g.Ho, g.Wo = (g.H+2*g.P-g.K)/g.S+1, (g.W+2*g.P-g.K)/g.S+1
	return g
}

// refPatch is the patch value of row r, output pixel (oh, ow) of sample s
// from the definition, or 0 in the padding.
func refPatch(g ConvGeom, x []float64, s, r, oh, ow int) float64 {
	c, kh, kw := r/(g.K*g.K), r/g.K%g.K, r%g.K
	ih, iw := oh*g.S-g.P+kh, ow*g.S-g.P+kw
	if ih < 0 || ih >= g.H || iw < 0 || iw >= g.W {
		return 0
	}
	return x[s*g.C*g.H*g.W+(c*g.H+ih)*g.W+iw]
}

type convImpl struct {
	name           string
	im2col, col2im func(g ConvGeom, a []float64, ld, n int, b []float64)
	minor          bool
}

// convImpls are the C loops (through the exported functions) and the Go
// loops, in both column orders; the col2im functions take (cols, dx) and
// the im2col functions (x, cols).
var convImpls = []convImpl{
	{"major", func(g ConvGeom, x []float64, ld, n int, c []float64) { Im2col(g, x, n, c, ld) }, func(g ConvGeom, c []float64, ld, n int, dx []float64) { Col2im(g, c, ld, n, dx) }, false},
	{"major/go", func(g ConvGeom, x []float64, ld, n int, c []float64) { im2colGo(g, x, n, c, ld) }, col2imGo[float64], false},
	{"minor", func(g ConvGeom, x []float64, ld, n int, c []float64) { Im2colT(g, x, n, c, ld) }, func(g ConvGeom, c []float64, ld, n int, dx []float64) { Col2imT(g, c, ld, n, dx) }, true},
	{"minor/go", func(g ConvGeom, x []float64, ld, n int, c []float64) { im2colTGo(g, x, n, c, ld) }, col2imTGo[float64], true},
}

// Every patch value against the definition, the columns past n·Ho·Wo left
// alone, and col2im as the adjoint: ⟨im2col(x), v⟩ = ⟨x, col2im(v)⟩ for
// random v, with col2im also checked entry by entry against sums taken
// from the definition.
func TestIm2colCol2im(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, g0 := range convTestGeoms {
		g := withOut(g0)
		for _, n := range []int{1, 3, 8} {
			for _, impl := range convImpls {
				t.Run(fmt.Sprintf("%s/%+v/n%d", impl.name, g0, n), func(t *testing.T) {
					in, pix, rows := g.C*g.H*g.W, g.Ho*g.Wo, g.C*g.K*g.K
					ld := n*pix + 3 // a gap that must stay untouched
					x := make([]float64, n*in)
					for i := range x {
						x[i] = rng.NormFloat64()
					}
					// col(s, p) is the column of sample s, pixel p
					col := func(s, p int) int { return s*pix + p }
					xin := x
					if impl.minor {
						col = func(s, p int) int { return p*n + s }
						xin = make([]float64, len(x)) // [C·H·W, n]
						for s := 0; s < n; s++ {
							for i := 0; i < in; i++ {
								xin[i*n+s] = x[s*in+i]
							}
						}
					}
					cols := make([]float64, rows*ld)
					for i := range cols {
						cols[i] = 99
					}
					impl.im2col(g, xin, ld, n, cols)
					for r := 0; r < rows; r++ {
						for s := 0; s < n; s++ {
							for p := 0; p < pix; p++ {
								if got, want := cols[r*ld+col(s, p)], refPatch(g, x, s, r, p/g.Wo, p%g.Wo); got != want {
									t.Fatalf("im2col row %d sample %d pixel %d: %v, want %v", r, s, p, got, want)
								}
							}
						}
						for j := n * pix; j < ld; j++ {
							if cols[r*ld+j] != 99 {
								t.Fatalf("im2col wrote column %d of row %d past the patches", j, r)
							}
						}
					}
					v := make([]float64, rows*ld)
					for i := range v {
						v[i] = rng.NormFloat64()
					}
					dx := make([]float64, n*in)
					for i := range dx {
						dx[i] = 99 // must be overwritten
					}
					impl.col2im(g, v, ld, n, dx)
					want := make([]float64, n*in)
					for r := 0; r < rows; r++ {
						c, kh, kw := r/(g.K*g.K), r/g.K%g.K, r%g.K
						for s := 0; s < n; s++ {
							for p := 0; p < pix; p++ {
								ih, iw := p/g.Wo*g.S-g.P+kh, p%g.Wo*g.S-g.P+kw
								if ih >= 0 && ih < g.H && iw >= 0 && iw < g.W {
									want[s*in+(c*g.H+ih)*g.W+iw] += v[r*ld+col(s, p)]
								}
							}
						}
					}
					for s := 0; s < n; s++ {
						for i := 0; i < in; i++ {
							got := dx[s*in+i]
							if impl.minor {
								got = dx[i*n+s]
							}
							if d := got - want[s*in+i]; d > 1e-12 || d < -1e-12 {
								t.Fatalf("col2im sample %d value %d: %v, want %v", s, i, got, want[s*in+i])
							}
						}
					}
				})
			}
		}
	}
}

// float32 takes the same loops as float64 (the C macros and the generic Go):
// one geometry per order is checked against the float64 result.
func TestIm2colFloat32(t *testing.T) {
	g := withOut(ConvGeom{C: 3, H: 7, W: 6, K: 3, S: 2, P: 1})
	n, in, pix, rows := 5, 3*7*6, g.Ho*g.Wo, 27
	ld := n * pix
	x64, x32 := make([]float64, n*in), make([]float32, n*in)
	for i := range x64 {
		x32[i] = float32(i%17) - 8
		x64[i] = float64(x32[i])
	}
	c64, c32 := make([]float64, rows*ld), make([]float32, rows*ld)
	d64, d32 := make([]float64, n*in), make([]float32, n*in)
	for _, minor := range []bool{false, true} {
		if minor {
			Im2colT(g, x64, n, c64, ld)
			Im2colT(g, x32, n, c32, ld)
			Col2imT(g, c64, ld, n, d64)
			Col2imT(g, c32, ld, n, d32)
		} else {
			Im2col(g, x64, n, c64, ld)
			Im2col(g, x32, n, c32, ld)
			Col2im(g, c64, ld, n, d64)
			Col2im(g, c32, ld, n, d32)
		}
		for i := range c64 {
			if float64(c32[i]) != c64[i] {
				t.Fatalf("minor %v: float32 patch %d = %v, float64 %v", minor, i, c32[i], c64[i])
			}
		}
		for i := range d64 {
			if float64(d32[i]) != d64[i] { // small integers: exact in both
				t.Fatalf("minor %v: float32 col2im %d = %v, float64 %v", minor, i, d32[i], d64[i])
			}
		}
	}
}

// Transpose against the definition for sizes around the 8×8 blocks of the
// vectorised path, with and without the row scales and group adds, in
// float32 (exact: one product and one sum, as the definition) and float64.
func TestTranspose(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, sh := range [][2]int{{1, 1}, {8, 8}, {7, 9}, {16, 24}, {17, 13}, {64, 32}, {3, 40}, {33, 5}} {
		rows, cols := sh[0], sh[1]
		for _, opt := range []struct {
			name       string
			scale, add bool
			group      int
		}{{"plain", false, false, 0}, {"scale", true, false, 0}, {"add", false, true, 4}, {"both", true, true, 3}} {
			t.Run(fmt.Sprintf("%dx%d/%s", rows, cols, opt.name), func(t *testing.T) {
				ldi, ldo := cols+2, rows+1
				in := make([]float32, rows*ldi)
				for i := range in {
					in[i] = float32(rng.NormFloat64())
				}
				var scale, add []float32
				if opt.scale {
					scale = make([]float32, rows)
					for i := range scale {
						scale[i] = float32(rng.NormFloat64())
					}
				}
				if opt.add {
					add = make([]float32, (rows+opt.group-1)/opt.group)
					for i := range add {
						add[i] = float32(rng.NormFloat64())
					}
				}
				out := make([]float32, cols*ldo)
				for i := range out {
					out[i] = 99
				}
				Transpose(in, rows, cols, ldi, out, ldo, scale, add, opt.group)
				out64 := make([]float64, cols*ldo)
				in64 := make([]float64, len(in))
				for i, v := range in {
					in64[i] = float64(v)
				}
				var scale64, add64 []float64
				for _, v := range scale {
					scale64 = append(scale64, float64(v))
				}
				for _, v := range add {
					add64 = append(add64, float64(v))
				}
				Transpose(in64, rows, cols, ldi, out64, ldo, scale64, add64, opt.group)
				for j := 0; j < cols; j++ {
					for i := 0; i < rows; i++ {
						want := in[i*ldi+j]
						if scale != nil {
							want *= scale[i]
						}
						if add != nil {
							want += add[i/opt.group]
						}
						if got := out[j*ldo+i]; got != want {
							t.Fatalf("out[%d, %d] = %v, want %v", j, i, got, want)
						}
						if got, w64 := out64[j*ldo+i], float64(want); float32(got) != want && (got-w64 > 1e-6 || w64-got > 1e-6) {
							t.Fatalf("float64 out[%d, %d] = %v, want %v", j, i, got, w64)
						}
					}
					if out[j*ldo+rows] != 99 {
						t.Fatalf("transpose wrote past row %d of the output", j)
					}
				}
			})
		}
	}
}

// AddRows and Leaky against their definitions, in both precisions, with
// lengths around the vector widths; Leaky's values are exact products, so
// they must agree bit for bit, the signed zeros and a NaN included.
func TestAddRowsLeaky(t *testing.T) {
	for _, n := range []int{1, 7, 8, 9, 33, 256} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			checkAddRowsLeaky[float32](t, n)
			checkAddRowsLeaky[float64](t, n)
		})
	}
}

func checkAddRowsLeaky[T float32 | float64](t *testing.T, n int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(5, uint64(n)))
	const rows = 3
	y, add := make([]T, rows*n), make([]T, rows)
	for i := range y {
		y[i] = T(rng.NormFloat64())
	}
	for i := range add {
		add[i] = T(rng.NormFloat64())
	}
	want := append([]T(nil), y...)
	for i := range want {
		want[i] += add[i/n]
	}
	AddRows(y, rows, n, add)
	for i := range y {
		if y[i] != want[i] {
			t.Fatalf("AddRows[%d] = %v, want %v", i, y[i], want[i])
		}
	}
	x, gy := make([]T, n), make([]T, n)
	for i := range x {
		x[i], gy[i] = T(rng.NormFloat64()), T(rng.NormFloat64())
	}
	x[0] = T(negZero)
	if n > 2 {
		x[1], x[2] = 0, T(nan)
	}
	const slope = 0.2
	for _, grad := range []bool{false, true} {
		out := make([]T, n)
		var g []T
		if grad {
			g = gy
		}
		Leaky(x, g, slope, out)
		for i, v := range x {
			f := T(1)
			if v < 0 {
				f = slope
			}
			w := v * f
			if grad {
				w = gy[i] * f
			}
			if math.Float64bits(float64(out[i])) != math.Float64bits(float64(w)) {
				t.Fatalf("Leaky(grad %v)[%d] of %v = %v, want %v", grad, i, v, out[i], w)
			}
		}
	}
}

var (
	negZero = math.Copysign(0, -1)
	nan     = math.NaN()
)

// TransposeLeaky against Transpose followed by Leaky, bit for bit, on the
// AVX2 blocks and the ragged edges, with and without the bias.
func TestTransposeLeaky(t *testing.T) {
	for _, sh := range [][2]int{{1, 1}, {8, 8}, {7, 9}, {80, 9}, {17, 13}, {64, 32}} {
		for _, withAdd := range []bool{false, true} {
			t.Run(fmt.Sprintf("%dx%d/add%v", sh[0], sh[1], withAdd), func(t *testing.T) {
				checkTransposeLeaky[float32](t, sh[0], sh[1], withAdd)
				checkTransposeLeaky[float64](t, sh[0], sh[1], withAdd)
			})
		}
	}
}

func checkTransposeLeaky[T float32 | float64](t *testing.T, rows, cols int, withAdd bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
	const group, slope = 4, 0.2
	ldi, ldo := cols+1, rows+2
	in := make([]T, rows*ldi)
	for i := range in {
		in[i] = T(rng.NormFloat64())
	}
	var add []T
	if withAdd {
		add = make([]T, (rows+group-1)/group)
		for i := range add {
			add[i] = T(rng.NormFloat64())
		}
	}
	got, want := make([]T, cols*ldo), make([]T, cols*ldo)
	for i := range got {
		got[i], want[i] = 99, 99
	}
	TransposeLeaky(in, rows, cols, ldi, got, ldo, nil, add, group, slope)
	Transpose(in, rows, cols, ldi, want, ldo, nil, add, group)
	for j := 0; j < cols; j++ {
		o := want[j*ldo : j*ldo+rows]
		Leaky(o, nil, slope, o)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("out[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}
