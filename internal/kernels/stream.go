package kernels

import "math"

// lanes is the eight-lane xoshiro128** generator behind Normal32 and ULA32,
// the reference for the C paths: s[k][j] is word k of lane j.
type lanes struct{ s [4][8]uint32 }

// newLanes seeds lane j from the splitmix64 outputs 2j and 2j+1 of key.
func newLanes(key uint64) *lanes {
	r := new(lanes)
	for j := 0; j < 8; j++ {
		a, b := splitmix64(&key), splitmix64(&key)
		st := laneState(a, b)
		for k := range st {
			r.s[k][j] = st[k]
		}
	}
	return r
}

// laneState is one lane's xoshiro128** state from two splitmix64 outputs,
// low words first; the forbidden all-zero state becomes s[0] = 1.
func laneState(a, b uint64) [4]uint32 {
	s := [4]uint32{uint32(a), uint32(a >> 32), uint32(b), uint32(b >> 32)}
	if s == [4]uint32{} {
		s[0] = 1
	}
	return s
}

// splitmix64 advances the SplitMix64 state *x and returns its output.
func splitmix64(x *uint64) uint64 {
	v := SplitMix64(*x)
	*x += 0x9e3779b97f4a7c15
	return v
}

// SplitMix64 is the output of one SplitMix64 step from state x: a bijective
// mix of x + 0x9e3779b97f4a7c15, the project's one way of deriving
// independent seeds from a seed and a counter.
func SplitMix64(x uint64) uint64 {
	z := x + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func rotl(x uint32, k int) uint32 { return x<<k | x>>(32-k) }

// next advances every lane by one xoshiro128** step, lane j's output in out[j].
func (r *lanes) next(out *[8]uint32) {
	for j := range out {
		s0, s1, s2, s3 := r.s[0][j], r.s[1][j], r.s[2][j], r.s[3][j]
		out[j] = rotl(s1*5, 7) * 9
		t := s1 << 9
		s2 ^= s0
		s3 ^= s1
		s1 ^= s2
		s0 ^= s3
		s2 ^= t
		s3 = rotl(s3, 11)
		r.s[0][j], r.s[1][j], r.s[2][j], r.s[3][j] = s0, s1, s2, s3
	}
}

// normalBlock writes the next 16 normals: z[j] = rad_j·cos θ_j and
// z[8+j] = rad_j·sin θ_j, with rad = √(−2 ln u1), θ = 2π·u2, u1 ∈ (0, 1] from
// the first draw of lane j and u2 ∈ [0, 1) from its second (24-bit
// resolution), evaluated in float64.
func (r *lanes) normalBlock(z *[16]float32) {
	var a, b [8]uint32
	r.next(&a)
	r.next(&b)
	for j := range a {
		u1 := (float64(a[j]>>8) + 1) / (1 << 24)
		u2 := float64(b[j]>>8) / (1 << 24)
		rad := math.Sqrt(-2 * math.Log(u1))
		sin, cos := math.Sincos(2 * math.Pi * u2)
		z[j] = float32(rad * cos)
		z[j+8] = float32(rad * sin)
	}
}
