package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// ScaleRowsSum against a float64 reference written from its definition,
// and the C loops against the Go ones bit for bit, for both element types,
// on matrices with and without padding between rows; the values outside
// the n×w block are left alone and the sums are added to what is there.
func TestScaleRowsSum(t *testing.T) {
	t.Run("float32", func(t *testing.T) { testScaleRowsSum[float32](t, 1e-5) })
	t.Run("float64", func(t *testing.T) { testScaleRowsSum[float64](t, 1e-13) })
}

func testScaleRowsSum[T float32 | float64](t *testing.T, tol float64) {
	rng := rand.New(rand.NewPCG(21, 22))
	for _, sh := range []struct{ n, w, ld int }{{1, 1, 1}, {3, 5, 5}, {7, 1, 3}, {17, 33, 40}, {256, 128, 128}, {100, 19, 64}} {
		t.Run(fmt.Sprintf("%dx%d_ld%d", sh.n, sh.w, sh.ld), func(t *testing.T) {
			size := (sh.n-1)*sh.ld + sh.w
			c, in := make([]float64, sh.n), make([]T, size)
			for i := range c {
				c[i] = rng.NormFloat64()
			}
			for i := range in {
				in[i] = T(rng.NormFloat64())
			}
			sums0 := make([]T, sh.w)
			for j := range sums0 {
				sums0[j] = T(j) - 2
			}
			out, sums := make([]T, size), append([]T(nil), sums0...)
			for i := range out {
				out[i] = -7
			}
			ScaleRowsSum(c, in, sh.n, sh.w, sh.ld, out, sums)
			for i := 0; i < sh.n; i++ {
				for j := 0; j < sh.ld && i*sh.ld+j < size; j++ {
					k := i*sh.ld + j
					want := -7.0
					if j < sh.w {
						want = c[i] * float64(in[k])
					}
					if math.Abs(float64(out[k])-want) > tol*math.Max(1, math.Abs(want)) {
						t.Fatalf("out[%d][%d] = %v, want %v", i, j, out[k], want)
					}
				}
			}
			for j := 0; j < sh.w; j++ {
				want, scale := float64(sums0[j]), 1.0
				for i := 0; i < sh.n; i++ {
					want += c[i] * float64(in[i*sh.ld+j])
					scale += math.Abs(c[i] * float64(in[i*sh.ld+j]))
				}
				if math.Abs(float64(sums[j])-want) > tol*scale {
					t.Fatalf("sums[%d] = %v, want %v", j, sums[j], want)
				}
			}
			gout, gsums := make([]T, size), append([]T(nil), sums0...)
			for i := range gout {
				gout[i] = -7
			}
			scaleRowsSumGo(c, in, sh.n, sh.w, sh.ld, gout, gsums)
			for i := range out {
				if out[i] != gout[i] {
					t.Fatalf("out[%d]: %v here, %v from the Go loop", i, out[i], gout[i])
				}
			}
			for j := range sums {
				if sums[j] != gsums[j] {
					t.Fatalf("sums[%d]: %v here, %v from the Go loop", j, sums[j], gsums[j])
				}
			}
		})
	}
}

// A block that does not fit its slices is refused.
func TestScaleRowsSumRefusesShortSlices(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a 3×4 block in 11 values")
		}
	}()
	ScaleRowsSum(make([]float64, 3), make([]float32, 11), 3, 4, 4, make([]float32, 12), make([]float32, 4))
}
