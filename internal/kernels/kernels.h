// Float32 kernels (see kernels.go): activations and Langevin noise.
#ifndef JARZYN_KERNELS_H
#define JARZYN_KERNELS_H

// jz_has_avx2_fma reports, once per process, whether the CPU has AVX2 and FMA
// (the vectorised paths); 0 on other architectures.
int jz_has_avx2_fma(void);

// jz_use_avx2 reports whether the kernels take their vectorised paths: the CPU
// has AVX2 and FMA and jz_set_scalar has not turned them off.
int jz_use_avx2(void);

// jz_set_scalar(1) makes every kernel take its scalar path (for tests);
// jz_set_scalar(0) restores the default.
void jz_set_scalar(int on);

void jz_silu_f32(const float *x, float *out, long n);
void jz_silu_grad_f32(const float *x, const float *y, const float *gy, float *out, long n);

// jz_silu_deriv_f32 writes y[i] = silu(z[i]) and d[i] = silu′(z[i]) in one
// pass (ONNX Runtime's fused activation operator, internal/ortops).
void jz_silu_deriv_f32(const float *z, float *y, float *d, long n);

// jz_silu_deriv_dot_f32 is jz_silu_deriv_f32 on a rows×cols matrix z that
// keeps the activations only as their dot products with w:
// f[r] = Σ_j silu(z[r][j])·w[j] and d = silu′(z).
void jz_silu_deriv_dot_f32(const float *z, const float *w, float *d, float *f, long rows, long cols);

// jz_linear_silu_deriv_f32 is jz_silu_deriv_f32 on z = x·w + b, for x
// rows×k, w k×cols, b cols (meant for small k: z is never stored).
void jz_linear_silu_deriv_f32(const float *x, const float *w, const float *b, float *y, float *d, long rows, long k, long cols);

// jz_mul_matmul_t_f32 sets out = (a ⊙ g)·wᵀ + beta·c for a, g rows×cols,
// w n×cols and c, out rows×n (meant for small n).
void jz_mul_matmul_t_f32(const float *a, const float *g, const float *w, const float *c, float beta, float *out, long rows, long cols, long n);

// jz_normal_f32 fills out[0..n) with independent N(0, 1) draws from the
// stream named by key (Box-Muller on eight-lane xoshiro128** uniforms).
void jz_normal_f32(float *out, long n, unsigned long long key);

// jz_ula_f32 sets x[i] = x[i] − h·g[i] + s·z[i] for i < n, where z is the
// stream jz_normal_f32 draws for the same key.
void jz_ula_f32(float *x, const float *g, long n, float h, float s, unsigned long long key);

// jz_stream_u32 writes the raw generator output behind those draws: per block
// of 16 normals, the eight lanes' words for u1, then the eight for u2.
void jz_stream_u32(unsigned int *out, long blocks, unsigned long long key);

#endif
