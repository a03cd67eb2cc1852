//go:build openblas

package blas

/*
#cgo LDFLAGS: -lopenblas
*/
import "C"

import (
	"gonum.org/v1/netlib/blas/netlib"
	G "gorgonia.org/gorgonia"
)

// Name of the BLAS in use.
const Name = "openblas"

func init() { G.Use(netlib.Implementation{}) }
