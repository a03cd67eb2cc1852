//go:build cgo

package kernels

/*
#cgo CFLAGS: -O3
#cgo LDFLAGS: -lm
#include "kernels.h"
*/
import "C"

import "unsafe"

// Implementation names the kernels in use.
const Implementation = "c"

func silu(x, out []float32) {
	if len(x) == 0 {
		return
	}
	C.jz_silu_f32((*C.float)(unsafe.Pointer(&x[0])), (*C.float)(unsafe.Pointer(&out[0])), C.long(len(x)))
}

func siluGrad(x, y, gy, out []float32) {
	if len(x) == 0 {
		return
	}
	C.jz_silu_grad_f32((*C.float)(unsafe.Pointer(&x[0])), (*C.float)(unsafe.Pointer(&y[0])),
		(*C.float)(unsafe.Pointer(&gy[0])), (*C.float)(unsafe.Pointer(&out[0])), C.long(len(x)))
}

func normal32(out []float32, key uint64) {
	if len(out) == 0 {
		return
	}
	C.jz_normal_f32((*C.float)(unsafe.Pointer(&out[0])), C.long(len(out)), C.ulonglong(key))
}
