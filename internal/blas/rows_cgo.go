//go:build cgo

package blas

/*
#cgo CFLAGS: -O3
// The loops over j vectorise: each column's sum still runs over the rows in
// order, and no multiply and add are fused (whatever CGO_CFLAGS allow), so
// they round as the Go loop.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
static void jz_scale_rows_sum_f32(const double *c, const float *restrict in, long n, long w, long ld,
                                  float *restrict out, float *restrict sums) {
	for (long i = 0; i < n; i++) {
		const float ci = (float)c[i], *src = in + i * ld;
		float *dst = out + i * ld;
		for (long j = 0; j < w; j++) {
			const float p = ci * src[j];
			dst[j] = p;
			sums[j] += p;
		}
	}
}

static void jz_scale_rows_sum_f64(const double *c, const double *restrict in, long n, long w, long ld,
                                  double *restrict out, double *restrict sums) {
	for (long i = 0; i < n; i++) {
		const double ci = c[i], *src = in + i * ld;
		double *dst = out + i * ld;
		for (long j = 0; j < w; j++) {
			const double p = ci * src[j];
			dst[j] = p;
			sums[j] += p;
		}
	}
}
*/
import "C"

import "unsafe"

func scaleRowsSum[T float32 | float64](c []float64, in []T, n, w, ld int, out, sums []T) {
	cc := (*C.double)(unsafe.Pointer(&c[0]))
	switch in := any(in).(type) {
	case []float32:
		C.jz_scale_rows_sum_f32(cc, f32(in), C.long(n), C.long(w), C.long(ld), f32(any(out).([]float32)), f32(any(sums).([]float32)))
	case []float64:
		C.jz_scale_rows_sum_f64(cc, f64(in), C.long(n), C.long(w), C.long(ld), f64(any(out).([]float64)), f64(any(sums).([]float64)))
	}
}
