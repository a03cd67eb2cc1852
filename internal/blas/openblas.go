//go:build openblas

package blas

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int);
*/
import "C"

import (
	"runtime"
	"sync"

	gblas "gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// Name of the BLAS in use.
const Name = "openblas (row-split GEMM across GOMAXPROCS goroutines)"

// parallel is OpenBLAS with its own threads off and large GEMMs split into
// row (or column) blocks run on separate goroutines. OpenBLAS's threads
// busy-wait between calls and then compete with the trainer's goroutines for
// the two cores; Go's scheduler shares them instead.
type parallel struct{ netlib.Implementation }

func init() {
	C.openblas_set_num_threads(1)
	G.Use(parallel{})
}

// minSplitFlops: below this a GEMM runs on one goroutine.
const minSplitFlops = 1 << 22

func (p parallel) Sgemm(tA, tB gblas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	split(m, n, k, func(i0, i1, j0, j1 int) {
		p.Implementation.Sgemm(tA, tB, i1-i0, j1-j0, k, alpha, offA(a, tA, i0, lda), lda, offB(b, tB, j0, ldb), ldb, beta, c[i0*ldc+j0:], ldc)
	})
}

func (p parallel) Dgemm(tA, tB gblas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	split(m, n, k, func(i0, i1, j0, j1 int) {
		p.Implementation.Dgemm(tA, tB, i1-i0, j1-j0, k, alpha, offA(a, tA, i0, lda), lda, offB(b, tB, j0, ldb), ldb, beta, c[i0*ldc+j0:], ldc)
	})
}

// offA is op(A) from row i0: A is m×k (NoTrans) or k×m (Trans), row-major.
func offA[T float32 | float64](a []T, t gblas.Transpose, i0, lda int) []T {
	if i0 == 0 {
		return a
	}
	if t == gblas.NoTrans {
		return a[i0*lda:]
	}
	return a[i0:]
}

// offB is op(B) from column j0: B is k×n (NoTrans) or n×k (Trans), row-major.
func offB[T float32 | float64](b []T, t gblas.Transpose, j0, ldb int) []T {
	if j0 == 0 {
		return b
	}
	if t == gblas.NoTrans {
		return b[j0:]
	}
	return b[j0*ldb:]
}

// split runs f over blocks of C: rows when m ≥ n, columns otherwise, one
// block per goroutine (GOMAXPROCS of them) for large products.
func split(m, n, k int, f func(i0, i1, j0, j1 int)) {
	w := runtime.GOMAXPROCS(0)
	if w < 2 || 2*m*n*k < minSplitFlops || (m < 2*w && n < 2*w) {
		f(0, m, 0, n)
		return
	}
	var wg sync.WaitGroup
	byRows := m >= n
	size := n
	if byRows {
		size = m
	}
	for t := 0; t < w; t++ {
		lo, hi := t*size/w, (t+1)*size/w
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if byRows {
				f(lo, hi, 0, n)
			} else {
				f(0, m, lo, hi)
			}
		}()
	}
	wg.Wait()
}
