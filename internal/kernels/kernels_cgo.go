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

func siluDeriv(z, y, d []float32) {
	if len(z) == 0 {
		return
	}
	C.jz_silu_deriv_f32((*C.float)(unsafe.Pointer(&z[0])), (*C.float)(unsafe.Pointer(&y[0])),
		(*C.float)(unsafe.Pointer(&d[0])), C.long(len(z)))
}

func siluDerivDot(z, w, d, f []float32) {
	if len(z) == 0 {
		return
	}
	C.jz_silu_deriv_dot_f32((*C.float)(unsafe.Pointer(&z[0])), (*C.float)(unsafe.Pointer(&w[0])),
		(*C.float)(unsafe.Pointer(&d[0])), (*C.float)(unsafe.Pointer(&f[0])), C.long(len(f)), C.long(len(w)))
}

func linearSiLUDeriv(x, w, b, y, d []float32, rows, k, cols int) {
	if rows == 0 {
		return
	}
	C.jz_linear_silu_deriv_f32((*C.float)(unsafe.Pointer(&x[0])), (*C.float)(unsafe.Pointer(&w[0])), (*C.float)(unsafe.Pointer(&b[0])),
		(*C.float)(unsafe.Pointer(&y[0])), (*C.float)(unsafe.Pointer(&d[0])), C.long(rows), C.long(k), C.long(cols))
}

func mulMatMulT(a, g, w, c []float32, beta float32, out []float32, rows, cols, n int) {
	if rows == 0 || n == 0 {
		return
	}
	C.jz_mul_matmul_t_f32((*C.float)(unsafe.Pointer(&a[0])), (*C.float)(unsafe.Pointer(&g[0])), (*C.float)(unsafe.Pointer(&w[0])),
		(*C.float)(unsafe.Pointer(&c[0])), C.float(beta), (*C.float)(unsafe.Pointer(&out[0])), C.long(rows), C.long(cols), C.long(n))
}

func normal32(out []float32, key uint64) {
	if len(out) == 0 {
		return
	}
	C.jz_normal_f32((*C.float)(unsafe.Pointer(&out[0])), C.long(len(out)), C.ulonglong(key))
}

func ula32(x, g []float32, h, s float32, key uint64) {
	if len(x) == 0 {
		return
	}
	C.jz_ula_f32((*C.float)(unsafe.Pointer(&x[0])), (*C.float)(unsafe.Pointer(&g[0])), C.long(len(x)),
		C.float(h), C.float(s), C.ulonglong(key))
}

// setScalar makes the C kernels take their scalar paths (on) or the
// vectorised ones where the CPU has them (off), for tests.
func setScalar(on bool) {
	v := 0
	if on {
		v = 1
	}
	C.jz_set_scalar(C.int(v))
}

// streamBits writes len(out)/16 blocks of the raw generator output behind
// Normal32 (see lanes): per block, the eight lanes' words for u1, then those
// for u2.
func streamBits(out []uint32, key uint64) {
	if len(out) < 16 {
		return
	}
	C.jz_stream_u32((*C.uint)(unsafe.Pointer(&out[0])), C.long(len(out)/16), C.ulonglong(key))
}
