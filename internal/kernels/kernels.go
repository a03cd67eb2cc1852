// Package kernels holds elementwise float32 kernels for the MLP activations
// (SiLU, its derivative) that the training graphs run on every walker. With
// cgo they are C loops the compiler vectorises (AVX2 where the CPU has it,
// chosen at run time; SSE2 otherwise); without cgo, plain Go loops compute the
// same functions.
package kernels

// SiLU writes out[i] = x[i]·σ(x[i]).
func SiLU(x, out []float32) {
	if len(out) < len(x) {
		panic("kernels: output shorter than input")
	}
	silu(x, out[:len(x)])
}

// SiLUGrad writes out[i] = gy[i]·σ(x)(1 + x(1 − σ(x))), with σ(x) = y/x
// recovered from the forward output y = SiLU(x) away from 0.
func SiLUGrad(x, y, gy, out []float32) {
	if len(y) < len(x) || len(gy) < len(x) || len(out) < len(x) {
		panic("kernels: slices shorter than x")
	}
	siluGrad(x, y[:len(x)], gy[:len(x)], out[:len(x)])
}

// Normal32 fills out with independent standard normal draws from the stream
// named by key (xoshiro128** uniforms with 24-bit resolution, Box-Muller; the
// largest |draw| is about 5.8). The same key gives the same numbers on the
// same machine and build.
func Normal32(out []float32, key uint64) { normal32(out, key) }
