//go:build cgo

package blas

/*
#cgo CFLAGS: -O3
#include "conv.h"
*/
import "C"

import "unsafe"

func cgeom(g ConvGeom) *C.jz_conv_geom {
	return &C.jz_conv_geom{C: C.long(g.C), H: C.long(g.H), W: C.long(g.W), K: C.long(g.K), S: C.long(g.S), P: C.long(g.P), Ho: C.long(g.Ho), Wo: C.long(g.Wo)}
}

func f32(v []float32) *C.float {
	if len(v) == 0 {
		return nil
	}
	return (*C.float)(unsafe.Pointer(&v[0]))
}

func f64(v []float64) *C.double {
	if len(v) == 0 {
		return nil
	}
	return (*C.double)(unsafe.Pointer(&v[0]))
}

func im2col[T float32 | float64](g ConvGeom, x []T, n int, cols []T, ld int) {
	switch x := any(x).(type) {
	case []float32:
		C.jz_im2col_f32(cgeom(g), f32(x), C.long(n), f32(any(cols).([]float32)), C.long(ld))
	case []float64:
		C.jz_im2col_f64(cgeom(g), f64(x), C.long(n), f64(any(cols).([]float64)), C.long(ld))
	}
}

func col2im[T float32 | float64](g ConvGeom, cols []T, ld, n int, dx []T) {
	switch c := any(cols).(type) {
	case []float32:
		C.jz_col2im_f32(cgeom(g), f32(c), C.long(ld), C.long(n), f32(any(dx).([]float32)))
	case []float64:
		C.jz_col2im_f64(cgeom(g), f64(c), C.long(ld), C.long(n), f64(any(dx).([]float64)))
	}
}

func im2colT[T float32 | float64](g ConvGeom, xt []T, n int, cols []T, ld int) {
	switch x := any(xt).(type) {
	case []float32:
		C.jz_im2col_sm_f32(cgeom(g), f32(x), C.long(n), f32(any(cols).([]float32)), C.long(ld))
	case []float64:
		C.jz_im2col_sm_f64(cgeom(g), f64(x), C.long(n), f64(any(cols).([]float64)), C.long(ld))
	}
}

func col2imT[T float32 | float64](g ConvGeom, cols []T, ld, n int, dxt []T) {
	switch c := any(cols).(type) {
	case []float32:
		C.jz_col2im_sm_f32(cgeom(g), f32(c), C.long(ld), C.long(n), f32(any(dxt).([]float32)))
	case []float64:
		C.jz_col2im_sm_f64(cgeom(g), f64(c), C.long(ld), C.long(n), f64(any(dxt).([]float64)))
	}
}

func transpose[T float32 | float64](in []T, rows, cols, ldi int, out []T, ldo int, scale, add []T, group int) {
	switch a := any(in).(type) {
	case []float32:
		C.jz_transpose_f32(f32(a), C.long(rows), C.long(cols), C.long(ldi), f32(any(out).([]float32)), C.long(ldo),
			f32(any(scale).([]float32)), f32(any(add).([]float32)), C.long(group))
	case []float64:
		C.jz_transpose_f64(f64(a), C.long(rows), C.long(cols), C.long(ldi), f64(any(out).([]float64)), C.long(ldo),
			f64(any(scale).([]float64)), f64(any(add).([]float64)), C.long(group))
	}
}

func addRows[T float32 | float64](y []T, rows, cols int, add []T) {
	switch a := any(y).(type) {
	case []float32:
		C.jz_add_rows_f32(f32(a), C.long(rows), C.long(cols), f32(any(add).([]float32)))
	case []float64:
		C.jz_add_rows_f64(f64(a), C.long(rows), C.long(cols), f64(any(add).([]float64)))
	}
}

func leaky[T float32 | float64](x, gy []T, slope T, out []T) {
	switch a := any(x).(type) {
	case []float32:
		C.jz_leaky_f32(f32(a), f32(any(gy).([]float32)), C.float(slope), f32(any(out).([]float32)), C.long(len(a)))
	case []float64:
		C.jz_leaky_f64(f64(a), f64(any(gy).([]float64)), C.double(slope), f64(any(out).([]float64)), C.long(len(a)))
	}
}

func transposeLeaky[T float32 | float64](in []T, rows, cols, ldi int, out []T, ldo int, scale, add []T, group int, slope T) {
	switch a := any(in).(type) {
	case []float32:
		C.jz_transpose_leaky_f32(f32(a), C.long(rows), C.long(cols), C.long(ldi), f32(any(out).([]float32)), C.long(ldo),
			f32(any(scale).([]float32)), f32(any(add).([]float32)), C.long(group), C.float(slope))
	case []float64:
		C.jz_transpose_leaky_f64(f64(a), C.long(rows), C.long(cols), C.long(ldi), f64(any(out).([]float64)), C.long(ldo),
			f64(any(scale).([]float64)), f64(any(add).([]float64)), C.long(group), C.double(slope))
	}
}
