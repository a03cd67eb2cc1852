// ONNX Runtime custom operators, registered through the C API's custom
// operator interface. The C API is reached through the library's exported
// OrtGetApiBase; the declarations below are the parts of the ABI this file
// uses: the function table's positions (the table only grows, so version-1
// entries keep their places) and the OrtCustomOp layout up to API version 11.
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ortops.h"
#include "../kernels/kernels.h"

typedef struct OrtStatus OrtStatus;
typedef struct OrtValue OrtValue;
typedef struct OrtKernelContext OrtKernelContext;
typedef struct OrtKernelInfo OrtKernelInfo;
typedef struct OrtTensorTypeAndShapeInfo OrtTensorTypeAndShapeInfo;
typedef struct OrtCustomOpDomain OrtCustomOpDomain;
typedef struct OrtSessionOptions OrtSessionOptions;

typedef struct {
	const void *const *(*GetApi)(uint32_t version);
	const char *(*GetVersionString)(void);
} api_base;

// Positions of the functions used here in the OrtApi table.
enum {
	fn_get_error_message = 2,
	fn_create_custom_op_domain = 26,
	fn_custom_op_domain_add = 27,
	fn_add_custom_op_domain = 28,
	fn_get_tensor_mutable_data = 51,
	fn_get_tensor_element_type = 60,
	fn_get_dimensions_count = 61,
	fn_get_dimensions = 62,
	fn_get_tensor_shape_element_count = 64,
	fn_get_tensor_type_and_shape = 65,
	fn_kernel_context_get_input = 90,
	fn_kernel_context_get_output = 91,
	fn_release_status = 93,
	fn_release_tensor_type_and_shape_info = 99,
};

// The API version this file is written against: it decides which OrtCustomOp
// members ONNX Runtime reads (those up to GetOutputCharacteristic).
#define OP_API_VERSION 11

enum { elem_float = 1, io_required = 0 };

typedef struct custom_op custom_op;
struct custom_op {
	uint32_t version;
	void *(*CreateKernel)(const custom_op *op, const void *api, const OrtKernelInfo *info);
	const char *(*GetName)(const custom_op *op);
	const char *(*GetExecutionProviderType)(const custom_op *op);
	int (*GetInputType)(const custom_op *op, size_t index);
	size_t (*GetInputTypeCount)(const custom_op *op);
	int (*GetOutputType)(const custom_op *op, size_t index);
	size_t (*GetOutputTypeCount)(const custom_op *op);
	void (*KernelCompute)(void *kernel, OrtKernelContext *ctx);
	void (*KernelDestroy)(void *kernel);
	int (*GetInputCharacteristic)(const custom_op *op, size_t index);
	int (*GetOutputCharacteristic)(const custom_op *op, size_t index);
	// members of later API versions, never read at OP_API_VERSION
	void *later[14];
};

// An operator with float inputs and outputs, evaluated by compute.
typedef struct {
	custom_op base;
	const char *name;
	size_t inputs, outputs;
	void (*compute)(void *kernel, OrtKernelContext *ctx);
} fused_op;

static const void *const *api;
static const char *api_version = "";
static OrtCustomOpDomain *domain;

#define CALL(idx, type) ((type)api[idx])

typedef OrtStatus *(*fn_status_input)(const OrtKernelContext *, size_t, const OrtValue **);
typedef OrtStatus *(*fn_status_output)(OrtKernelContext *, size_t, const int64_t *, size_t, OrtValue **);
typedef OrtStatus *(*fn_status_shape)(const OrtValue *, OrtTensorTypeAndShapeInfo **);
typedef OrtStatus *(*fn_status_count)(const OrtTensorTypeAndShapeInfo *, size_t *);
typedef OrtStatus *(*fn_status_dims)(const OrtTensorTypeAndShapeInfo *, int64_t *, size_t);
typedef OrtStatus *(*fn_status_data)(OrtValue *, void **);
typedef void (*fn_release_info)(OrtTensorTypeAndShapeInfo *);
typedef void (*fn_release_status_t)(OrtStatus *);
typedef const char *(*fn_message)(const OrtStatus *);
typedef OrtStatus *(*fn_create_domain)(const char *, OrtCustomOpDomain **);
typedef OrtStatus *(*fn_domain_add)(OrtCustomOpDomain *, const custom_op *);
typedef OrtStatus *(*fn_add_domain)(OrtSessionOptions *, OrtCustomOpDomain *);

// failed releases st and reports whether it was an error, copying its
// message into err when err is not NULL.
static int failed(OrtStatus *st, char *err, size_t errlen) {
	if (st == NULL) {
		return 0;
	}
	if (err != NULL && errlen > 0) {
		snprintf(err, errlen, "%s", CALL(fn_get_error_message, fn_message)(st));
	}
	CALL(fn_release_status, fn_release_status_t)(st);
	return 1;
}

static void *create_kernel(const custom_op *op, const void *api_unused, const OrtKernelInfo *info) {
	(void)api_unused;
	(void)info;
	return (void *)op;
}

static const char *op_name(const custom_op *op) { return ((const fused_op *)op)->name; }
static size_t op_inputs(const custom_op *op) { return ((const fused_op *)op)->inputs; }
static size_t op_outputs(const custom_op *op) { return ((const fused_op *)op)->outputs; }
static void op_compute(void *kernel, OrtKernelContext *ctx) { ((const fused_op *)kernel)->compute(kernel, ctx); }
static const char *op_provider(const custom_op *op) {
	(void)op;
	return "CPUExecutionProvider";
}
static int float_type(const custom_op *op, size_t i) {
	(void)op;
	(void)i;
	return elem_float;
}
static int required(const custom_op *op, size_t i) {
	(void)op;
	(void)i;
	return io_required;
}
static void destroy_kernel(void *kernel) { (void)kernel; }

// input returns input i of ctx with its data, shape (up to 16 dims) and
// element count, or 0 when ONNX Runtime cannot hand it over.
static int input(OrtKernelContext *ctx, size_t i, float **data, int64_t *dims, size_t *nd, size_t *n) {
	const OrtValue *in = NULL;
	if (failed(CALL(fn_kernel_context_get_input, fn_status_input)(ctx, i, &in), NULL, 0)) {
		return 0;
	}
	OrtTensorTypeAndShapeInfo *info = NULL;
	if (failed(CALL(fn_get_tensor_type_and_shape, fn_status_shape)(in, &info), NULL, 0)) {
		return 0;
	}
	int ok = !failed(CALL(fn_get_dimensions_count, fn_status_count)(info, nd), NULL, 0) && *nd <= 16 &&
	         !failed(CALL(fn_get_dimensions, fn_status_dims)(info, dims, *nd), NULL, 0) &&
	         !failed(CALL(fn_get_tensor_shape_element_count, fn_status_count)(info, n), NULL, 0);
	CALL(fn_release_tensor_type_and_shape_info, fn_release_info)(info);
	return ok && !failed(CALL(fn_get_tensor_mutable_data, fn_status_data)((OrtValue *)in, (void **)data), NULL, 0);
}

// output allocates output i of ctx with the given shape and returns its data
// (NULL on failure).
static float *output(OrtKernelContext *ctx, size_t i, const int64_t *dims, size_t nd) {
	OrtValue *out = NULL;
	void *data = NULL;
	if (failed(CALL(fn_kernel_context_get_output, fn_status_output)(ctx, i, dims, nd, &out), NULL, 0) ||
	    failed(CALL(fn_get_tensor_mutable_data, fn_status_data)(out, &data), NULL, 0)) {
		return NULL;
	}
	return (float *)data;
}

// The version-11 interface has no way to return an error from a kernel: when
// ONNX Runtime cannot hand over an input or allocate an output, or the shapes
// do not match, the outputs are left unset and the Run fails there.

// silu_deriv: (z) -> (silu(z), silu′(z)), any shape.
static void silu_deriv(void *kernel, OrtKernelContext *ctx) {
	(void)kernel;
	float *z;
	int64_t dims[16];
	size_t nd, n;
	if (!input(ctx, 0, &z, dims, &nd, &n)) {
		return;
	}
	float *y = output(ctx, 0, dims, nd), *d = output(ctx, 1, dims, nd);
	if (y != NULL && d != NULL) {
		jz_silu_deriv_f32(z, y, d, (long)n);
	}
}

// silu_deriv_dot: (z [.., H], w [H]) -> (silu′(z), f [.., 1]) with
// f = Σ_j silu(z_j)·w_j along the last axis.
static void silu_deriv_dot(void *kernel, OrtKernelContext *ctx) {
	(void)kernel;
	float *z, *w;
	int64_t dims[16], wdims[16];
	size_t nd, n, wnd, cols;
	if (!input(ctx, 0, &z, dims, &nd, &n) || !input(ctx, 1, &w, wdims, &wnd, &cols)) {
		return;
	}
	if (nd < 1 || cols == 0 || dims[nd - 1] != (int64_t)cols) {
		return;
	}
	float *d = output(ctx, 0, dims, nd);
	int64_t fdims[16];
	memcpy(fdims, dims, nd * sizeof dims[0]);
	fdims[nd - 1] = 1;
	float *f = output(ctx, 1, fdims, nd);
	if (d != NULL && f != NULL) {
		jz_silu_deriv_dot_f32(z, w, d, f, (long)(n / cols), (long)cols);
	}
}

// linear_silu_deriv: (x [B, k], w [k, H], b [H]) -> (silu(z), silu′(z)) with
// z = x·w + b, never stored.
static void linear_silu_deriv(void *kernel, OrtKernelContext *ctx) {
	(void)kernel;
	float *x, *w, *b;
	int64_t xd[16], wd[16], bd[16];
	size_t xn, wn, bn, xc, wc, bc;
	if (!input(ctx, 0, &x, xd, &xn, &xc) || !input(ctx, 1, &w, wd, &wn, &wc) || !input(ctx, 2, &b, bd, &bn, &bc)) {
		return;
	}
	if (xn != 2 || wn != 2 || wd[0] != xd[1] || (size_t)wd[1] != bc) {
		return;
	}
	int64_t dims[2] = {xd[0], wd[1]};
	float *y = output(ctx, 0, dims, 2), *d = output(ctx, 1, dims, 2);
	if (y != NULL && d != NULL) {
		jz_linear_silu_deriv_f32(x, w, b, y, d, (long)xd[0], (long)xd[1], (long)wd[1]);
	}
}

// mul_matmul_t: (a [B, H], g [B, H], w [n, H], c [B, n], beta [1]) ->
// (a ⊙ g)·wᵀ + beta·c [B, n].
static void mul_matmul_t(void *kernel, OrtKernelContext *ctx) {
	(void)kernel;
	float *a, *g, *w, *c, *beta;
	int64_t ad[16], gd[16], wd[16], cd[16], bd[16];
	size_t an, gn, wn, cn, bn, ac, gc, wc, cc, bc;
	if (!input(ctx, 0, &a, ad, &an, &ac) || !input(ctx, 1, &g, gd, &gn, &gc) || !input(ctx, 2, &w, wd, &wn, &wc) ||
	    !input(ctx, 3, &c, cd, &cn, &cc) || !input(ctx, 4, &beta, bd, &bn, &bc)) {
		return;
	}
	if (an != 2 || gn != 2 || wn != 2 || cn != 2 || bc != 1 || gd[0] != ad[0] || gd[1] != ad[1] || wd[1] != ad[1] ||
	    cd[0] != ad[0] || cd[1] != wd[0]) {
		return;
	}
	int64_t dims[2] = {ad[0], wd[0]};
	float *out = output(ctx, 0, dims, 2);
	if (out != NULL) {
		jz_mul_matmul_t_f32(a, g, w, c, beta[0], out, (long)ad[0], (long)ad[1], (long)wd[0]);
	}
}

#define FUSED_OP(name_str, n_inputs, n_outputs, fn)                                                         \
	{                                                                                                         \
		{OP_API_VERSION, create_kernel, op_name,  op_provider, float_type, op_inputs, float_type, op_outputs, \
		 op_compute,     destroy_kernel, required, required,   {0}},                                          \
		    name_str, n_inputs, n_outputs, fn                                                                 \
	}

static fused_op ops[] = {
    FUSED_OP("SiLUDeriv", 1, 2, silu_deriv),
    FUSED_OP("SiLUDerivDot", 2, 2, silu_deriv_dot),
    FUSED_OP("LinearSiLUDeriv", 3, 2, linear_silu_deriv),
    FUSED_OP("MulMatMulT", 5, 1, mul_matmul_t),
};

int jz_ortops_init(const char *lib, char *err, size_t errlen) {
	if (domain != NULL) {
		return 0;
	}
	void *h = dlopen(lib, RTLD_NOW | RTLD_NOLOAD);
	if (h == NULL) {
		snprintf(err, errlen, "%s is not loaded: %s", lib, dlerror());
		return -1;
	}
	const api_base *(*get_base)(void) = (const api_base *(*)(void))dlsym(h, "OrtGetApiBase");
	if (get_base == NULL) {
		snprintf(err, errlen, "%s has no OrtGetApiBase", lib);
		return -1;
	}
	const api_base *base = get_base();
	const void *const *table = base->GetApi(OP_API_VERSION);
	if (table == NULL) {
		snprintf(err, errlen, "%s offers no API version %d", lib, OP_API_VERSION);
		return -1;
	}
	api = table;
	api_version = base->GetVersionString();
	OrtCustomOpDomain *dom = NULL;
	if (failed(CALL(fn_create_custom_op_domain, fn_create_domain)("io.github.jarzyn", &dom), err, errlen)) {
		return -1;
	}
	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		if (failed(CALL(fn_custom_op_domain_add, fn_domain_add)(dom, &ops[i].base), err, errlen)) {
			return -1;
		}
	}
	domain = dom;
	return 0;
}

int jz_ortops_add(void *session_options, char *err, size_t errlen) {
	if (domain == NULL) {
		snprintf(err, errlen, "operators not initialised");
		return -1;
	}
	return failed(CALL(fn_add_custom_op_domain, fn_add_domain)((OrtSessionOptions *)session_options, domain), err, errlen) ? -1 : 0;
}

const char *jz_ortops_version(void) { return api_version; }
