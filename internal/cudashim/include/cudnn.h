/*
 * jarzyn: cudnn.h as gorgonia.org/cu/dnn v0.9.6 sees it in a -tags cuda
 * build. The build puts this folder first on the include path
 * (CGO_CFLAGS=-I.../internal/cudashim/include, see scripts/gpu/env.sh).
 *
 * By default it declares the cuDNN 9 API from the project's own
 * declarations (jarzyn_cudnn9_types.h, jarzyn_cudnn9_funcs.h), so the build
 * needs no cuDNN headers; with -DJARZYN_SYSTEM_CUDNN it includes the real
 * cudnn.h found further down the include path instead. Either way it then
 * declares the entry points cuDNN 9 removed (jarzyn_cudnn_compat.h), which
 * internal/cudashim defines.
 */
#ifndef JARZYN_CUDNN_SHIM_H
#define JARZYN_CUDNN_SHIM_H

#ifdef JARZYN_SYSTEM_CUDNN
#include_next <cudnn.h>
#else
#if defined(__cplusplus)
extern "C" {
#endif
#include "jarzyn_cudnn9_types.h"
#include "jarzyn_cudnn9_funcs.h"
#if defined(__cplusplus)
}
#endif
#endif

#include "jarzyn_cudnn_compat.h"

#endif /* JARZYN_CUDNN_SHIM_H */
