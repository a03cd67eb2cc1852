// Package blas selects the BLAS behind gorgonia: OpenBLAS through gonum's
// netlib bindings when built with -tags openblas (Debian libopenblas-dev),
// gonum's pure-Go BLAS otherwise. Import it for its side effect.
package blas
