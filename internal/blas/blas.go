// Package blas selects the BLAS behind gorgonia: OpenBLAS through gonum's
// netlib bindings when built with -tags openblas (Debian libopenblas-dev),
// gonum's pure-Go BLAS otherwise. Import it for its side effect.
//
// It also lays convolutions out for those GEMMs (ConvGeom: Im2col, Col2im,
// their sample-minor forms Im2colT, Col2imT, and Transpose), in C with cgo
// and in Go without.
package blas
