//go:build openblas

package blas

import (
	"math"
	"math/rand/v2"
	"testing"

	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// The row/column-split GEMM equals gonum's reference for every transpose
// combination and for shapes that split by rows and by columns.
func TestParallelGemmMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var ref gonum.Implementation
	for _, sh := range [][3]int{{300, 40, 500}, {40, 300, 500}, {7, 5, 3}, {1024, 1024, 2}} {
		m, n, k := sh[0], sh[1], sh[2]
		for _, tA := range []gblas.Transpose{gblas.NoTrans, gblas.Trans} {
			for _, tB := range []gblas.Transpose{gblas.NoTrans, gblas.Trans} {
				a, b := make([]float64, m*k), make([]float64, k*n)
				for i := range a {
					a[i] = rng.NormFloat64()
				}
				for i := range b {
					b[i] = rng.NormFloat64()
				}
				lda, ldb := k, n
				if tA == gblas.Trans {
					lda = m
				}
				if tB == gblas.Trans {
					ldb = k
				}
				c1, c2 := make([]float64, m*n), make([]float64, m*n)
				for i := range c1 {
					c1[i] = rng.NormFloat64()
					c2[i] = c1[i]
				}
				parallel{}.Dgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, c1, n)
				ref.Dgemm(tA, tB, m, n, k, 0.7, a, lda, b, ldb, 0.3, c2, n)
				for i := range c1 {
					if math.Abs(c1[i]-c2[i]) > 1e-9*math.Max(1, math.Abs(c2[i])) {
						t.Fatalf("%v %v %dx%dx%d: C[%d] = %v, reference %v", tA, tB, m, n, k, i, c1[i], c2[i])
					}
				}
				a32, b32 := make([]float32, len(a)), make([]float32, len(b))
				for i := range a {
					a32[i] = float32(a[i])
				}
				for i := range b {
					b32[i] = float32(b[i])
				}
				s := make([]float32, m*n)
				parallel{}.Sgemm(tA, tB, m, n, k, 1, a32, lda, b32, ldb, 0, s, n)
				ref.Dgemm(tA, tB, m, n, k, 1, a, lda, b, ldb, 0, c2, n)
				for i := range s {
					if math.Abs(float64(s[i])-c2[i]) > 1e-3*math.Max(1, math.Abs(c2[i])) {
						t.Fatalf("sgemm %v %v %dx%dx%d: C[%d] = %v, reference %v", tA, tB, m, n, k, i, s[i], c2[i])
					}
				}
			}
		}
	}
}
