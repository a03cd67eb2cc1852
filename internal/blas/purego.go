//go:build !openblas

package blas

// Name of the BLAS in use.
const Name = "gonum (pure Go)"
