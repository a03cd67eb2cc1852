//go:build openblas

package blas

import (
	"fmt"
	"testing"

	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
)

// BenchmarkSgemm times the training GEMM shapes (d=784, H=256, N=4096) with
// the row-split wrapper and with plain single-threaded OpenBLAS.
func BenchmarkSgemm(b *testing.B) {
	shapes := []struct {
		name    string
		tA, tB  gblas.Transpose
		m, n, k int
	}{
		{"forward_x_W0", gblas.NoTrans, gblas.NoTrans, 4096, 256, 784},
		{"backward_d_W0T", gblas.NoTrans, gblas.Trans, 4096, 784, 256},
		{"weightgrad_XT_d", gblas.Trans, gblas.NoTrans, 784, 256, 4096},
	}
	for _, sh := range shapes {
		for _, impl := range []struct {
			name string
			f    func(tA, tB gblas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
		}{{"split", parallel{}.Sgemm}, {"openblas1", netlib.Implementation{}.Sgemm}} {
			b.Run(fmt.Sprintf("%s/%s", sh.name, impl.name), func(b *testing.B) {
				a := make([]float32, sh.m*sh.k)
				bb := make([]float32, sh.k*sh.n)
				c := make([]float32, sh.m*sh.n)
				for i := range a {
					a[i] = float32(i%7) * 0.1
				}
				for i := range bb {
					bb[i] = float32(i%5) * 0.1
				}
				lda, ldb := sh.k, sh.n
				if sh.tA == gblas.Trans {
					lda = sh.m
				}
				if sh.tB == gblas.Trans {
					ldb = sh.k
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					impl.f(sh.tA, sh.tB, sh.m, sh.n, sh.k, 1, a, lda, bb, ldb, 0, c, sh.n)
				}
				b.ReportMetric(2*float64(sh.m*sh.n*sh.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
