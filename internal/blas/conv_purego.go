//go:build !cgo

package blas

func im2col[T float32 | float64](g ConvGeom, x []T, n int, cols []T, ld int) {
	im2colGo(g, x, n, cols, ld)
}

func col2im[T float32 | float64](g ConvGeom, cols []T, ld, n int, dx []T) {
	col2imGo(g, cols, ld, n, dx)
}

func im2colT[T float32 | float64](g ConvGeom, xt []T, n int, cols []T, ld int) {
	im2colTGo(g, xt, n, cols, ld)
}

func col2imT[T float32 | float64](g ConvGeom, cols []T, ld, n int, dxt []T) {
	col2imTGo(g, cols, ld, n, dxt)
}

func transpose[T float32 | float64](in []T, rows, cols, ldi int, out []T, ldo int, scale, add []T, group int) {
	transposeGo(in, rows, cols, ldi, out, ldo, scale, add, group)
}

func addRows[T float32 | float64](y []T, rows, cols int, add []T) { addRowsGo(y, rows, cols, add) }

func leaky[T float32 | float64](x, gy []T, slope T, out []T) { leakyGo(x, gy, slope, out) }

func transposeLeaky[T float32 | float64](in []T, rows, cols, ldi int, out []T, ldo int, scale, add []T, group int, slope T) {
	transposeLeakyGo(in, rows, cols, ldi, out, ldo, scale, add, group, slope)
}
