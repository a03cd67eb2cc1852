package blas

import "fmt"

// ScaleRowsSum writes out[i·ld + j] = T(c[i])·in[i·ld + j] for the n rows and
// w columns of a matrix with row stride ld, and adds each column's sum of the
// written values, taken over the rows in order, to sums[j]: the walker
// weights times the backprop signals of a layer and its weighted bias
// gradient in one pass (in C with cgo, in Go without; both round the same).
func ScaleRowsSum[T float32 | float64](c []float64, in []T, n, w, ld int, out, sums []T) {
	if n == 0 || w == 0 {
		return
	}
	if w > ld || len(c) < n || len(in) < (n-1)*ld+w || len(out) < (n-1)*ld+w || len(sums) < w {
		panic(fmt.Sprintf("blas: ScaleRowsSum of %d×%d (stride %d) with slices of %d, %d, %d, %d values", n, w, ld, len(c), len(in), len(out), len(sums)))
	}
	scaleRowsSum(c, in, n, w, ld, out, sums)
}

func scaleRowsSumGo[T float32 | float64](c []float64, in []T, n, w, ld int, out, sums []T) {
	sums = sums[:w]
	for i := 0; i < n; i++ {
		ci := T(c[i])
		src, dst := in[i*ld:i*ld+w], out[i*ld:i*ld+w]
		for j, v := range src {
			p := T(ci * v) // rounded here: never fused with the add
			dst[j] = p
			sums[j] += p
		}
	}
}
