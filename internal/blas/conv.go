package blas

import "fmt"

// ConvGeom is one convolution: input [C, H, W] (one sample, NCHW), a square
// kernel K, stride S, zero padding P, output Ho × Wo.
//
// The patch matrix of n samples ("im2col") has a row r = (c·K + kh)·K + kw
// per filter tap and a column per output pixel and sample, so that the
// convolution is one GEMM with the [Out, C·K·K] filters. Two column orders
// are kept: sample-major, column s·Ho·Wo + oh·Wo + ow, read from NCHW rows
// x [n, C·H·W] (Im2col, Col2im), and sample-minor, column
// (oh·Wo + ow)·n + s, read from the transposed xt [C·H·W, n] (Im2colT,
// Col2imT). In the second every move is a run of n contiguous values, which
// makes it the fast one for small images, whose image rows are only a few
// values wide.
type ConvGeom struct {
	C, H, W, K, S, P, Ho, Wo int
}

func (g ConvGeom) check(n, ld, lx, lc int) {
	pix, rows := g.Ho*g.Wo, g.C*g.K*g.K
	if g.C <= 0 || g.H <= 0 || g.W <= 0 || g.K <= 0 || g.S <= 0 || g.P < 0 || g.Ho <= 0 || g.Wo <= 0 ||
		(g.Ho-1)*g.S-g.P+g.K > g.H+g.P || (g.Wo-1)*g.S-g.P+g.K > g.W+g.P ||
		ld < n*pix || lx < n*g.C*g.H*g.W || lc < (rows-1)*ld+n*pix {
		panic(fmt.Sprintf("blas: convolution %+v with %d samples, ld %d, slices of %d and %d values do not fit", g, n, ld, lx, lc))
	}
}

// Im2col writes the patches of the n samples x (n × C·H·W, NCHW rows) into
// cols, a [C·K·K, ≥ n·Ho·Wo] matrix with row stride ld: row
// r = (c·K + kh)·K + kw, column s·Ho·Wo + oh·Wo + ow holds
// x[s, c, oh·S − P + kh, ow·S − P + kw], or 0 where that is padding.
// Columns from n·Ho·Wo to ld are left alone.
func Im2col[T float32 | float64](g ConvGeom, x []T, n int, cols []T, ld int) {
	if n == 0 {
		return
	}
	g.check(n, ld, len(x), len(cols))
	im2col(g, x, n, cols, ld)
}

// Col2im is Im2col's adjoint: it overwrites dx (n × C·H·W) with, for every
// input value, the sum of the entries of cols (laid out as Im2col writes
// them) that read it; the entries that read padding are dropped.
func Col2im[T float32 | float64](g ConvGeom, cols []T, ld, n int, dx []T) {
	if n == 0 {
		return
	}
	g.check(n, ld, len(dx), len(cols))
	col2im(g, cols, ld, n, dx)
}

// Im2colT is Im2col from the transposed samples xt [C·H·W, n] (row stride
// n) into the sample-minor order: column (oh·Wo + ow)·n + s.
func Im2colT[T float32 | float64](g ConvGeom, xt []T, n int, cols []T, ld int) {
	if n == 0 {
		return
	}
	g.check(n, ld, len(xt), len(cols))
	im2colT(g, xt, n, cols, ld)
}

// Col2imT is Im2colT's adjoint: it overwrites dxt [C·H·W, n] with the sums
// of the entries of cols (sample-minor) that read each input value.
func Col2imT[T float32 | float64](g ConvGeom, cols []T, ld, n int, dxt []T) {
	if n == 0 {
		return
	}
	g.check(n, ld, len(dxt), len(cols))
	col2imT(g, cols, ld, n, dxt)
}

// AddRows adds add[i] to every value of row i of y, a [rows, cols] matrix
// (row stride cols): a convolution's bias on its output laid out as
// [Out, Ho·Wo·n], which the sample-minor GEMM writes.
func AddRows[T float32 | float64](y []T, rows, cols int, add []T) {
	if rows == 0 || cols == 0 {
		return
	}
	if len(add) < rows || len(y) < rows*cols {
		panic(fmt.Sprintf("blas: AddRows of %d×%d with slices of %d and %d values", rows, cols, len(y), len(add)))
	}
	addRows(y, rows, cols, add)
}

func addRowsGo[T float32 | float64](y []T, rows, cols int, add []T) {
	for i := 0; i < rows; i++ {
		a := add[i]
		r := y[i*cols : (i+1)*cols]
		for j := range r {
			r[j] += a
		}
	}
}

// Leaky writes LeakyReLU(x) (v for v ≥ 0, slope·v below) into out, or,
// with gy non-nil, gy ⊙ LeakyReLU'(x) (gy where v ≥ 0, slope·gy below).
func Leaky[T float32 | float64](x, gy []T, slope T, out []T) {
	if len(out) < len(x) || (gy != nil && len(gy) < len(x)) {
		panic(fmt.Sprintf("blas: Leaky of %d values with slices of %d and %d", len(x), len(gy), len(out)))
	}
	if len(x) == 0 {
		return
	}
	leaky(x, gy, slope, out)
}

func leakyGo[T float32 | float64](x, gy []T, slope T, out []T) {
	for i, v := range x {
		f := T(1)
		if v < 0 {
			f = slope
		}
		if gy == nil {
			out[i] = v * f
		} else {
			out[i] = gy[i] * f
		}
	}
}

// Transpose writes out[j·ldo + i] = in[i·ldi + j]·scale[i] + add[i/group]
// for i < rows, j < cols: a transpose that can scale each input row and add
// a value per group of input rows (a convolution's bias, one per channel of
// Ho·Wo pixels). scale and add may be nil (1 and 0).
func Transpose[T float32 | float64](in []T, rows, cols, ldi int, out []T, ldo int, scale, add []T, group int) {
	if rows == 0 || cols == 0 {
		return
	}
	checkTranspose(in, rows, cols, ldi, out, ldo, scale, add, group)
	transpose(in, rows, cols, ldi, out, ldo, scale, add, group)
}

func checkTranspose[T float32 | float64](in []T, rows, cols, ldi int, out []T, ldo int, scale, add []T, group int) {
	if ldi < cols || ldo < rows || len(in) < (rows-1)*ldi+cols || len(out) < (cols-1)*ldo+rows ||
		scale != nil && len(scale) < rows || add != nil && (group <= 0 || len(add) < (rows+group-1)/group) {
		panic(fmt.Sprintf("blas: transpose of %d×%d (ld %d, %d) with slices of %d, %d, %d, %d values (group %d) does not fit",
			rows, cols, ldi, ldo, len(in), len(out), len(scale), len(add), group))
	}
}

// span returns the outputs o ∈ [lo, hi) of n whose input o·S − P + k lies
// inside [0, size).
func span(n, s, p, k, size int) (lo, hi int) {
	a, b := p-k, size-1+p-k // o·S ∈ [a, b]
	if a > 0 {
		lo = (a + s - 1) / s
	}
	if b >= 0 {
		hi = min(n, b/s+1)
	}
	return min(lo, hi), hi
}

// The Go loops below are the same as conv.c's, for builds without cgo (and
// the tests' second implementation).

func im2colGo[T float32 | float64](g ConvGeom, x []T, n int, cols []T, ld int) {
	pix, in := g.Ho*g.Wo, g.C*g.H*g.W
	for s := 0; s < n; s++ {
		for c := 0; c < g.C; c++ {
			src := x[s*in+c*g.H*g.W:][:g.H*g.W]
			for kh := 0; kh < g.K; kh++ {
				h0, h1 := span(g.Ho, g.S, g.P, kh, g.H)
				for kw := 0; kw < g.K; kw++ {
					w0, w1 := span(g.Wo, g.S, g.P, kw, g.W)
					dst := cols[((c*g.K+kh)*g.K+kw)*ld+s*pix:][:pix]
					clear(dst[:h0*g.Wo])
					for oh := h0; oh < h1; oh++ {
						d := dst[oh*g.Wo:][:g.Wo]
						r := src[(oh*g.S-g.P+kh)*g.W:][:g.W]
						clear(d[:w0])
						for ow := w0; ow < w1; ow++ {
							d[ow] = r[ow*g.S-g.P+kw]
						}
						clear(d[w1:])
					}
					clear(dst[h1*g.Wo:])
				}
			}
		}
	}
}

func col2imGo[T float32 | float64](g ConvGeom, cols []T, ld, n int, dx []T) {
	pix, in := g.Ho*g.Wo, g.C*g.H*g.W
	clear(dx[:n*in])
	for s := 0; s < n; s++ {
		for c := 0; c < g.C; c++ {
			dst := dx[s*in+c*g.H*g.W:][:g.H*g.W]
			for kh := 0; kh < g.K; kh++ {
				h0, h1 := span(g.Ho, g.S, g.P, kh, g.H)
				for kw := 0; kw < g.K; kw++ {
					w0, w1 := span(g.Wo, g.S, g.P, kw, g.W)
					src := cols[((c*g.K+kh)*g.K+kw)*ld+s*pix:][:pix]
					for oh := h0; oh < h1; oh++ {
						q := src[oh*g.Wo:][:g.Wo]
						r := dst[(oh*g.S-g.P+kh)*g.W:][:g.W]
						for ow := w0; ow < w1; ow++ {
							r[ow*g.S-g.P+kw] += q[ow]
						}
					}
				}
			}
		}
	}
}

func im2colTGo[T float32 | float64](g ConvGeom, xt []T, n int, cols []T, ld int) {
	row := g.Wo * n
	for c := 0; c < g.C; c++ {
		for kh := 0; kh < g.K; kh++ {
			h0, h1 := span(g.Ho, g.S, g.P, kh, g.H)
			for kw := 0; kw < g.K; kw++ {
				w0, w1 := span(g.Wo, g.S, g.P, kw, g.W)
				dst := cols[((c*g.K+kh)*g.K+kw)*ld:][:g.Ho*row]
				clear(dst[:h0*row])
				for oh := h0; oh < h1; oh++ {
					d := dst[oh*row:][:row]
					r := xt[(c*g.H+oh*g.S-g.P+kh)*g.W*n:][:g.W*n]
					clear(d[:w0*n])
					for ow := w0; ow < w1; ow++ {
						copy(d[ow*n:][:n], r[(ow*g.S-g.P+kw)*n:])
					}
					clear(d[w1*n:])
				}
				clear(dst[h1*row:])
			}
		}
	}
}

func col2imTGo[T float32 | float64](g ConvGeom, cols []T, ld, n int, dxt []T) {
	row := g.Wo * n
	clear(dxt[:g.C*g.H*g.W*n])
	for c := 0; c < g.C; c++ {
		for kh := 0; kh < g.K; kh++ {
			h0, h1 := span(g.Ho, g.S, g.P, kh, g.H)
			for kw := 0; kw < g.K; kw++ {
				w0, w1 := span(g.Wo, g.S, g.P, kw, g.W)
				src := cols[((c*g.K+kh)*g.K+kw)*ld:][:g.Ho*row]
				for oh := h0; oh < h1; oh++ {
					q := src[oh*row:][:row]
					r := dxt[(c*g.H+oh*g.S-g.P+kh)*g.W*n:][:g.W*n]
					for ow := w0; ow < w1; ow++ {
						rr, qq := r[(ow*g.S-g.P+kw)*n:][:n], q[ow*n:][:n]
						for s, v := range qq {
							rr[s] += v
						}
					}
				}
			}
		}
	}
}

// TransposeLeaky is Transpose followed by LeakyReLU in the same pass: out
// gets z·slope where the transposed value z < 0, z elsewhere.
func TransposeLeaky[T float32 | float64](in []T, rows, cols, ldi int, out []T, ldo int, scale, add []T, group int, slope T) {
	if rows == 0 || cols == 0 {
		return
	}
	checkTranspose(in, rows, cols, ldi, out, ldo, scale, add, group)
	transposeLeaky(in, rows, cols, ldi, out, ldo, scale, add, group, slope)
}

func transposeLeakyGo[T float32 | float64](in []T, rows, cols, ldi int, out []T, ldo int, scale, add []T, group int, slope T) {
	transposeGo(in, rows, cols, ldi, out, ldo, scale, add, group)
	for j := 0; j < cols; j++ {
		o := out[j*ldo : j*ldo+rows]
		leakyGo(o, nil, slope, o)
	}
}

func transposeGo[T float32 | float64](in []T, rows, cols, ldi int, out []T, ldo int, scale, add []T, group int) {
	for i := 0; i < rows; i++ {
		sc, ad := T(1), T(0)
		if scale != nil {
			sc = scale[i]
		}
		if add != nil {
			ad = add[i/group]
		}
		for j, v := range in[i*ldi:][:cols] {
			out[j*ldo+i] = v*sc + ad
		}
	}
}
