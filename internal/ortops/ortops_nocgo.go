//go:build !cgo

package ortops

import (
	"errors"

	ort "github.com/yalue/onnxruntime_go"
)

// Domain is the operator domain of the fused operators.
const Domain = "io.github.jarzyn"

// OpSiLUDeriv names the fused SiLU operator.
const OpSiLUDeriv = "SiLUDeriv"

// Available reports whether this build can register the operators (cgo).
const Available = false

// Register fails without cgo: the operators are C code.
func Register(so *ort.SessionOptions, lib string) error {
	return errors.New("ortops: fused operators need a cgo build")
}

// LibraryVersion returns "" without cgo.
func LibraryVersion() string { return "" }
