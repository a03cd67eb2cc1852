//go:build !cgo

package kernels

import "math"

// Implementation names the kernels in use.
const Implementation = "go"

func expNeg(a float32) float32 {
	if a > 87 {
		a = 87
	}
	x := -a
	k := int32(x*1.442695041 - 0.5)
	kf := float32(k)
	r := x - kf*0.693359375 + kf*2.12194440e-4
	p := ((((float32(1.9875691500e-4)*r+1.3981999507e-3)*r+8.3334519073e-3)*r+4.1665795894e-2)*r+1.6666665459e-1)*r + 5.0000001201e-1
	return (p*r*r + r + 1) * math.Float32frombits(uint32(k+127)<<23)
}

// sigmoid32 is σ(v) from e^{−|v|}, so that no argument overflows.
func sigmoid32(v float32) float32 {
	a := v
	if a < 0 {
		a = -a
	}
	e := expNeg(a)
	s := 1 / (1 + e)
	if v < 0 {
		s *= e
	}
	return s
}

func silu(x, out []float32) {
	for i, v := range x {
		out[i] = v * sigmoid32(v)
	}
}

func siluDeriv(z, y, d []float32) {
	for i, v := range z {
		s := sigmoid32(v)
		y[i] = v * s
		d[i] = s * (1 + v*(1-s))
	}
}

func siluDerivDot(z, w, d, f []float32) {
	cols := len(w)
	y := make([]float32, cols)
	for r := range f {
		siluDeriv(z[r*cols:(r+1)*cols], y, d[r*cols:(r+1)*cols])
		var acc float32
		for j, v := range y {
			acc += v * w[j]
		}
		f[r] = acc
	}
}

func linearSiLUDeriv(x, w, b, y, d []float32, rows, k, cols int) {
	z := make([]float32, cols)
	for r := 0; r < rows; r++ {
		copy(z, b)
		for q := 0; q < k; q++ {
			xv := x[r*k+q]
			for j := range z {
				z[j] += xv * w[q*cols+j]
			}
		}
		siluDeriv(z, y[r*cols:(r+1)*cols], d[r*cols:(r+1)*cols])
	}
}

func mulMatMulT(a, g, w, c []float32, beta float32, out []float32, rows, cols, n int) {
	for r := 0; r < rows; r++ {
		for i := 0; i < n; i++ {
			var acc float32
			for j := 0; j < cols; j++ {
				acc += a[r*cols+j] * g[r*cols+j] * w[i*cols+j]
			}
			out[r*n+i] = acc + beta*c[r*n+i]
		}
	}
}

func siluGrad(x, y, gy, out []float32) {
	for i, v := range x {
		var s float32
		if v > 1e-3 || v < -1e-3 {
			s = y[i] / v
		} else {
			s = 0.5 + 0.25*v
		}
		out[i] = gy[i] * s * (1 + v*(1-s))
	}
}

func normal32(out []float32, key uint64) {
	r := newLanes(key)
	var z [16]float32
	for i := 0; i < len(out); i += 16 {
		r.normalBlock(&z)
		copy(out[i:], z[:])
	}
}

func ula32(x, g []float32, h, s float32, key uint64) {
	r := newLanes(key)
	var z [16]float32
	for i := 0; i < len(x); i += 16 {
		r.normalBlock(&z)
		for j, v := range x[i:min(i+16, len(x))] {
			x[i+j] = v - h*g[i+j] + s*z[j]
		}
	}
}

// setScalar has no effect: the Go kernels have one path.
func setScalar(bool) {}

// streamBits writes len(out)/16 blocks of the raw generator output (see
// lanes): per block, the eight lanes' words for u1, then those for u2.
func streamBits(out []uint32, key uint64) {
	r := newLanes(key)
	for i := 0; i+16 <= len(out); i += 16 {
		r.next((*[8]uint32)(out[i : i+8]))
		r.next((*[8]uint32)(out[i+8 : i+16]))
	}
}
