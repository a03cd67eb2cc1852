// Package ortops registers jarzyn's own operators with ONNX Runtime, in the
// domain "io.github.jarzyn", for the CPU execution provider:
//
//	SiLUDeriv(z) -> (y, d):  y = z·σ(z), d = σ(z)(1 + z(1 − σ(z)))
//
// elementwise on a float32 tensor of any shape. ONNX Runtime computes the same
// pair with five operators (Sigmoid, Mul, Sub, Mul, Add), five passes over
// memory; the fused kernel (internal/kernels, AVX2 where the CPU has it) makes
// one. Only graphs built for this process use the domain (export.BuildFused);
// exported .onnx files never do.
//
// The operators use the custom-operator interface of C API version 16
// (ONNX Runtime ≥ 1.16): a kernel given inputs of the wrong shapes fails the
// Run with a message naming the operator, never writes past a tensor.
package ortops

/*
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "ortops.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	_ "github.com/jarzyn/jarzyn/internal/kernels" // the C kernels the operators call
)

// Domain is the operator domain of the fused operators.
const Domain = "io.github.jarzyn"

// OpSiLUDeriv names the fused SiLU operator.
const OpSiLUDeriv = "SiLUDeriv"

var (
	mu     sync.Mutex
	inited bool // the domain exists (a failed attempt is retried)
)

// Register adds the operators to so, a session's options. lib is the path of
// the ONNX Runtime library the process loaded (ortlib.Init's result).
func Register(so *ort.SessionOptions, lib string) error {
	mu.Lock()
	defer mu.Unlock()
	if !inited {
		if err := initOps(lib); err != nil {
			return err
		}
		inited = true
	}
	h, err := optionsHandle(so)
	if err != nil {
		return err
	}
	var msg [512]C.char
	if C.jz_ortops_add(h, &msg[0], C.size_t(len(msg))) != 0 {
		return fmt.Errorf("ortops: adding the %s operators: %s", Domain, C.GoString(&msg[0]))
	}
	return nil
}

func initOps(lib string) error {
	if lib == "" {
		return errors.New("ortops: no ONNX Runtime library path")
	}
	cs := C.CString(lib)
	defer C.free(unsafe.Pointer(cs))
	var msg [512]C.char
	if C.jz_ortops_init(cs, &msg[0], C.size_t(len(msg))) != 0 {
		return fmt.Errorf("ortops: %s", C.GoString(&msg[0]))
	}
	return nil
}

// optionsHandle returns the OrtSessionOptions pointer inside so. The
// onnxruntime_go version this module requires keeps it as the struct's only
// field; any other layout is an error here, never a wrong pointer.
func optionsHandle(so *ort.SessionOptions) (unsafe.Pointer, error) {
	t := reflect.TypeOf(*so)
	if t.NumField() != 1 || t.Field(0).Type.Kind() != reflect.Pointer || t.Size() != unsafe.Sizeof(uintptr(0)) {
		return nil, errors.New("ortops: onnxruntime_go's SessionOptions has an unexpected layout; fused operators are unavailable")
	}
	h := *(*unsafe.Pointer)(unsafe.Pointer(so))
	if h == nil {
		return nil, errors.New("ortops: session options already destroyed")
	}
	return h, nil
}

// LibraryVersion returns the version of the ONNX Runtime library the
// operators were registered with ("" before the first Register).
func LibraryVersion() string { return C.GoString(C.jz_ortops_version()) }
