//go:build !cgo

package blas

func scaleRowsSum[T float32 | float64](c []float64, in []T, n, w, ld int, out, sums []T) {
	scaleRowsSumGo(c, in, n, w, ld, out, sums)
}
