// ONNX Runtime custom operators, registered through the C API's custom
// operator interface. The C API is reached through the library's exported
// OrtGetApiBase; the declarations below are the parts of the ABI this file
// uses: the function table's positions (the table only grows, so version-1
// entries keep their places) and the OrtCustomOp layout up to API version 16
// (whose KernelComputeV2 returns a status, so a kernel can fail a Run).
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
	fn_create_status = 0,
	fn_get_error_message = 2,
	fn_create_custom_op_domain = 26,
	fn_custom_op_domain_add = 27,
	fn_add_custom_op_domain = 28,
	fn_get_tensor_mutable_data = 51,
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
// members ONNX Runtime reads (those up to KernelComputeV2).
#define OP_API_VERSION 16

enum { elem_float = 1, io_required = 0, mem_default = 0, error_invalid_argument = 2 };

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
	int (*GetInputMemoryType)(const custom_op *op, size_t index);
	int (*GetVariadicInputMinArity)(const custom_op *op);
	int (*GetVariadicInputHomogeneity)(const custom_op *op);
	int (*GetVariadicOutputMinArity)(const custom_op *op);
	int (*GetVariadicOutputHomogeneity)(const custom_op *op);
	OrtStatus *(*CreateKernelV2)(const custom_op *op, const void *api, const OrtKernelInfo *info, void **kernel);
	OrtStatus *(*KernelComputeV2)(void *kernel, OrtKernelContext *ctx);
	// members of later API versions, never read at OP_API_VERSION
	void *later[7];
};

// An operator with float inputs and outputs, evaluated by compute.
typedef struct {
	custom_op base;
	const char *name;
	size_t inputs, outputs;
	// compute returns NULL or an error message
	const char *(*compute)(OrtKernelContext *ctx);
} fused_op;

static const void *const *api;
static const char *api_version = "";
static OrtCustomOpDomain *domain;

#define CALL(idx, type) ((type)api[idx])

typedef OrtStatus *(*fn_create_status_t)(int code, const char *msg);
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

static OrtStatus *create_kernel(const custom_op *op, const void *api_unused, const OrtKernelInfo *info, void **kernel) {
	(void)api_unused;
	(void)info;
	*kernel = (void *)op;
	return NULL;
}

static const char *op_name(const custom_op *op) { return ((const fused_op *)op)->name; }
static size_t op_inputs(const custom_op *op) { return ((const fused_op *)op)->inputs; }
static size_t op_outputs(const custom_op *op) { return ((const fused_op *)op)->outputs; }
static OrtStatus *op_compute(void *kernel, OrtKernelContext *ctx) {
	const fused_op *op = (const fused_op *)kernel;
	const char *msg = op->compute(ctx);
	if (msg == NULL) {
		return NULL;
	}
	char buf[256];
	snprintf(buf, sizeof buf, "%s.%s: %s", "io.github.jarzyn", op->name, msg);
	return CALL(fn_create_status, fn_create_status_t)(error_invalid_argument, buf);
}
static int default_memory(const custom_op *op, size_t i) {
	(void)op;
	(void)i;
	return mem_default;
}
static int one_arity(const custom_op *op) {
	(void)op;
	return 1;
}
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

// tensor_in is a kernel input: its data, shape (up to 16 dims) and element
// count.
typedef struct {
	float *data;
	int64_t dims[16];
	size_t rank, count;
} tensor_in;

// input reads input i of ctx into t, or returns 0 when ONNX Runtime cannot
// hand it over.
static int input(OrtKernelContext *ctx, size_t i, tensor_in *t) {
	const OrtValue *in = NULL;
	if (failed(CALL(fn_kernel_context_get_input, fn_status_input)(ctx, i, &in), NULL, 0)) {
		return 0;
	}
	OrtTensorTypeAndShapeInfo *info = NULL;
	if (failed(CALL(fn_get_tensor_type_and_shape, fn_status_shape)(in, &info), NULL, 0)) {
		return 0;
	}
	int ok = !failed(CALL(fn_get_dimensions_count, fn_status_count)(info, &t->rank), NULL, 0) && t->rank <= 16 &&
	         !failed(CALL(fn_get_dimensions, fn_status_dims)(info, t->dims, t->rank), NULL, 0) &&
	         !failed(CALL(fn_get_tensor_shape_element_count, fn_status_count)(info, &t->count), NULL, 0);
	CALL(fn_release_tensor_type_and_shape_info, fn_release_info)(info);
	return ok && !failed(CALL(fn_get_tensor_mutable_data, fn_status_data)((OrtValue *)in, (void **)&t->data), NULL, 0);
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

// Each kernel returns NULL, or a message that fails the Run.

static const char *const no_input = "ONNX Runtime could not hand over an input";
static const char *const no_output = "ONNX Runtime could not allocate an output";

// silu_deriv: (z) -> (silu(z), silu′(z)), any shape.
static const char *silu_deriv(OrtKernelContext *ctx) {
	tensor_in z;
	if (!input(ctx, 0, &z)) {
		return no_input;
	}
	float *y = output(ctx, 0, z.dims, z.rank), *d = output(ctx, 1, z.dims, z.rank);
	if (y == NULL || d == NULL) {
		return no_output;
	}
	jz_silu_deriv_f32(z.data, y, d, (long)z.count);
	return NULL;
}

// silu_deriv_dot: (z [.., H], w [H]) -> (silu′(z), f [.., 1]) with
// f = Σ_j silu(z_j)·w_j along the last axis.
static const char *silu_deriv_dot(OrtKernelContext *ctx) {
	tensor_in z, w;
	if (!input(ctx, 0, &z) || !input(ctx, 1, &w)) {
		return no_input;
	}
	if (z.rank < 1 || w.count == 0 || z.dims[z.rank - 1] != (int64_t)w.count) {
		return "the weights' length differs from the last dimension of z";
	}
	int64_t fdims[16];
	memcpy(fdims, z.dims, z.rank * sizeof z.dims[0]);
	fdims[z.rank - 1] = 1;
	float *d = output(ctx, 0, z.dims, z.rank), *f = output(ctx, 1, fdims, z.rank);
	if (d == NULL || f == NULL) {
		return no_output;
	}
	jz_silu_deriv_dot_f32(z.data, w.data, d, f, (long)(z.count / w.count), (long)w.count);
	return NULL;
}

// linear_silu_deriv: (x [B, k], w [k, H], b [H]) -> (silu(z), silu′(z)) with
// z = x·w + b, never stored.
static const char *linear_silu_deriv(OrtKernelContext *ctx) {
	tensor_in x, w, b;
	if (!input(ctx, 0, &x) || !input(ctx, 1, &w) || !input(ctx, 2, &b)) {
		return no_input;
	}
	if (x.rank != 2 || w.rank != 2 || w.dims[0] != x.dims[1] || w.dims[1] != (int64_t)b.count) {
		return "want x [B, k], w [k, H] and b [H]";
	}
	int64_t dims[2] = {x.dims[0], w.dims[1]};
	float *y = output(ctx, 0, dims, 2), *d = output(ctx, 1, dims, 2);
	if (y == NULL || d == NULL) {
		return no_output;
	}
	jz_linear_silu_deriv_f32(x.data, w.data, b.data, y, d, (long)x.dims[0], (long)x.dims[1], (long)w.dims[1]);
	return NULL;
}

// mul_matmul_t: (a [B, H], g [B, H], w [n, H], c [B, n], beta [1]) ->
// (a ⊙ g)·wᵀ + beta·c [B, n].
static const char *mul_matmul_t(OrtKernelContext *ctx) {
	tensor_in a, g, w, c, beta;
	if (!input(ctx, 0, &a) || !input(ctx, 1, &g) || !input(ctx, 2, &w) || !input(ctx, 3, &c) || !input(ctx, 4, &beta)) {
		return no_input;
	}
	if (a.rank != 2 || g.rank != 2 || w.rank != 2 || c.rank != 2 || beta.count != 1 || g.dims[0] != a.dims[0] ||
	    g.dims[1] != a.dims[1] || w.dims[1] != a.dims[1] || c.dims[0] != a.dims[0] || c.dims[1] != w.dims[0]) {
		return "want a and g [B, H], w [n, H], c [B, n] and one beta";
	}
	int64_t dims[2] = {a.dims[0], w.dims[0]};
	float *out = output(ctx, 0, dims, 2);
	if (out == NULL) {
		return no_output;
	}
	jz_mul_matmul_t_f32(a.data, g.data, w.data, c.data, beta.data[0], out, (long)a.dims[0], (long)a.dims[1], (long)w.dims[0]);
	return NULL;
}

// Version-16 operators: the V1 CreateKernel and KernelCompute stay NULL, so
// ONNX Runtime calls CreateKernelV2 and KernelComputeV2.
#define FUSED_OP(name_str, n_inputs, n_outputs, fn)                                                          \
	{                                                                                                          \
		{OP_API_VERSION, NULL,           op_name,   op_provider,    float_type, op_inputs, float_type, op_outputs, \
		 NULL,           destroy_kernel, required,  required,       default_memory, one_arity, one_arity,      \
		 one_arity,      one_arity,      create_kernel, op_compute, {0}},                                     \
		    name_str, n_inputs, n_outputs, fn                                                                  \
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
