//go:build openblas

package blas

/*
#cgo LDFLAGS: -lopenblas
#include <stdlib.h>
#include <string.h>

void openblas_set_num_threads(int);
char *openblas_get_corename(void);
// Present only in DYNAMIC_ARCH builds (Debian's); weak, so that other builds
// still link and jz_fix_coretype leaves them alone.
void gotoblas_dynamic_init(void) __attribute__((weak));
void gotoblas_dynamic_quit(void) __attribute__((weak));

// jz_fix_coretype re-runs OpenBLAS's kernel selection (DYNAMIC_ARCH builds)
// when it fell back to the generic SSE3 "Prescott" kernels on a CPU that has
// AVX-512 or AVX2 with FMA: OpenBLAS 0.3.21 does not know every CPU model a
// virtual machine reports and then leaves 3–5× of GEMM speed unused. It does
// nothing when OPENBLAS_CORETYPE is set or another core was chosen, and
// returns 1 when it switched.
static int jz_fix_coretype(void) {
	const char *name, *want = NULL;
	if (getenv("OPENBLAS_CORETYPE") != NULL || gotoblas_dynamic_init == NULL || gotoblas_dynamic_quit == NULL) return 0;
	name = openblas_get_corename();
	if (name == NULL || strcmp(name, "Prescott") != 0) return 0;
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")) {
		want = "SkylakeX";
	} else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
		want = "Haswell";
	} else {
		return 0;
	}
	setenv("OPENBLAS_CORETYPE", want, 1);
	gotoblas_dynamic_quit();
	gotoblas_dynamic_init();
	unsetenv("OPENBLAS_CORETYPE");
	return 1;
}
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
	C.jz_fix_coretype()
	C.openblas_set_num_threads(1)
	G.Use(parallel{})
}

// Core is the name of the OpenBLAS kernels in use ("SkylakeX", "Haswell", …).
func Core() string { return C.GoString(C.openblas_get_corename()) }

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

// Serial is the BLAS without the goroutine split, for callers that already
// run one GEMM per core (the convolution kernels of package train).
func Serial() G.BLAS { return netlib.Implementation{} }
