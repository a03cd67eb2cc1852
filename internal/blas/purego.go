//go:build !openblas

package blas

import (
	"gonum.org/v1/gonum/blas/gonum"
	G "gorgonia.org/gorgonia"
)

// Name of the BLAS in use.
const Name = "gonum (pure Go)"

// Serial is the BLAS without the goroutine split, for callers that already
// run one GEMM per core (the convolution kernels of package train).
func Serial() G.BLAS { return gonum.Implementation{} }

// Core is the name of the kernels in use.
func Core() string { return "gonum" }
