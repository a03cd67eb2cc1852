// Package kernels holds elementwise float32 kernels that run on every walker:
// the MLP activations (SiLU, its derivative) of the training graphs and the
// Gaussian noise of the Langevin move (Normal32, ULA32). With cgo they are C
// loops, AVX2 where the CPU has it (chosen at run time), scalar otherwise;
// without cgo, plain Go loops compute the same functions.
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

// SiLUDeriv writes y[i] = z[i]·σ(z[i]) and d[i] = σ(z)(1 + z(1 − σ(z))), the
// activation and its derivative, in one pass over z.
func SiLUDeriv(z, y, d []float32) {
	if len(y) < len(z) || len(d) < len(z) {
		panic("kernels: outputs shorter than input")
	}
	siluDeriv(z, y[:len(z)], d[:len(z)])
}

// SiLUDerivDot is SiLUDeriv on the rows×len(w) matrix z (row-major) keeping
// each row's activations only as their dot product with w:
// f[r] = Σ_j silu(z[r][j])·w[j], d = silu′(z).
func SiLUDerivDot(z, w, d, f []float32) {
	cols := len(w)
	if cols == 0 || len(z)%cols != 0 || len(d) < len(z) || len(f) < len(z)/cols {
		panic("kernels: SiLUDerivDot shapes do not match")
	}
	siluDerivDot(z, w, d[:len(z)], f[:len(z)/cols])
}

// LinearSiLUDeriv is SiLUDeriv on z = x·w + b (x rows×k, w k×cols, b cols,
// row-major) without storing z: y and d are rows×cols.
func LinearSiLUDeriv(x, w, b, y, d []float32, k int) {
	cols := len(b)
	if k <= 0 || cols == 0 || len(x)%k != 0 || len(w) != k*cols || len(y) < len(x)/k*cols || len(d) < len(x)/k*cols {
		panic("kernels: LinearSiLUDeriv shapes do not match")
	}
	linearSiLUDeriv(x, w, b, y, d, len(x)/k, k, cols)
}

// MulMatMulT sets out = (a ⊙ g)·wᵀ + beta·c for a and g rows×cols, w n×cols
// and c, out rows×n (row-major), with n = len(w)/cols.
func MulMatMulT(a, g, w, c []float32, beta float32, out []float32, cols int) {
	if cols <= 0 || len(a)%cols != 0 || len(g) < len(a) || len(w)%cols != 0 {
		panic("kernels: MulMatMulT shapes do not match")
	}
	rows, n := len(a)/cols, len(w)/cols
	if len(c) < rows*n || len(out) < rows*n {
		panic("kernels: MulMatMulT output shorter than rows×n")
	}
	mulMatMulT(a, g, w, c, beta, out, rows, cols, n)
}

// Normal32 fills out with independent standard normal draws from the stream
// named by key. The stream is eight xoshiro128** generators run side by side,
// lane j seeded from the splitmix64 outputs 2j and 2j+1 of key. Each block of
// 16 draws takes one 24-bit uniform u1 ∈ (0, 1] and then one u2 ∈ [0, 1) from
// every lane and applies Box-Muller: draw j is √(−2 ln u1_j)·cos 2πu2_j and
// draw 8+j the same with sin (the largest |draw| is about 5.8). A length that
// is not a multiple of 16 takes the first draws of one more block.
//
// Every implementation (AVX2, scalar C, pure Go) uses the same uniforms in
// the same order, but evaluates the transform differently (float32
// polynomials with AVX2, float64 libm or Go math otherwise), so draws may
// differ between them in the last bits (about 1e-6). The same key gives the
// same numbers on the same machine and build.
func Normal32(out []float32, key uint64) { normal32(out, key) }

// ULA32 moves x by one unadjusted Langevin step in a single pass:
// x[i] ← x[i] − h·g[i] + s·z[i], where z is the stream Normal32 draws for key
// (up to float32 rounding; the vectorised path uses FMAs). For the ULA move at
// step size δ, h = δ and s = √(2δ). It panics if g is shorter than x.
func ULA32(x, g []float32, h, s float32, key uint64) {
	if len(g) < len(x) {
		panic("kernels: gradient shorter than positions")
	}
	ula32(x, g[:len(x)], h, s, key)
}
