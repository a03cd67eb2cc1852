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

func silu(x, out []float32) {
	for i, v := range x {
		a := v
		if a < 0 {
			a = -a
		}
		e := expNeg(a)
		s := 1 / (1 + e)
		if v < 0 {
			s *= e
		}
		out[i] = v * s
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
