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

func splitmix64(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func normal32(out []float32, key uint64) {
	a, b := splitmix64(&key), splitmix64(&key)
	s := [4]uint32{uint32(a), uint32(a >> 32), uint32(b), uint32(b >> 32)}
	if s == [4]uint32{} {
		s[0] = 1
	}
	rotl := func(x uint32, k int) uint32 { return x<<k | x>>(32-k) }
	next := func() uint32 {
		r := rotl(s[1]*5, 7) * 9
		t := s[1] << 9
		s[2] ^= s[0]
		s[3] ^= s[1]
		s[1] ^= s[2]
		s[0] ^= s[3]
		s[2] ^= t
		s[3] = rotl(s[3], 11)
		return r
	}
	for i := 0; i < len(out); i += 2 {
		u1 := (float64(next()>>8) + 1) / (1 << 24)
		u2 := float64(next()>>8) / (1 << 24)
		r, th := math.Sqrt(-2*math.Log(u1)), 2*math.Pi*u2
		out[i] = float32(r * math.Cos(th))
		if i+1 < len(out) {
			out[i+1] = float32(r * math.Sin(th))
		}
	}
}
