//go:build cuda

// Package cudashim makes gorgonia.org/cu/dnn v0.9.6 build and link against
// cuDNN 9 without touching the dependency: include/cudnn.h is the header
// cu/dnn compiles against (the project's own cuDNN 9 declarations, or the
// real header with -DJARZYN_SYSTEM_CUDNN), and cudnn_compat.c defines the
// cuDNN 8 entry points that cuDNN 9 removed. A -tags cuda binary imports this
// package (train does) so that those definitions are linked in; the build
// needs CGO_CFLAGS=-I<repo>/internal/cudashim/include (scripts/gpu/env.sh).
package cudashim

/*
#cgo CFLAGS: -I${SRCDIR}/include
#cgo LDFLAGS: -lcudnn
#include <cudnn.h>
*/
import "C"

// CUDNNVersion is the version of the cuDNN library loaded at run time
// (e.g. 90600 for 9.6.0), from cudnnGetVersion.
func CUDNNVersion() int { return int(C.cudnnGetVersion()) }

// CompatCalls is the number of calls so far into the removed-API shims;
// jarzyn's graphs make none.
func CompatCalls() int { return int(C.jarzyn_cudnn_compat_calls()) }
