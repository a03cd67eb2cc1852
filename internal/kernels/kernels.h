// Elementwise float32 activation kernels (see kernels.go).
#ifndef JARZYN_KERNELS_H
#define JARZYN_KERNELS_H

// jz_has_avx2_fma reports, once per process, whether the CPU has AVX2 and FMA
// (the vectorised paths); 0 on other architectures.
int jz_has_avx2_fma(void);

void jz_silu_f32(const float *x, float *out, long n);
void jz_silu_grad_f32(const float *x, const float *y, const float *gy, float *out, long n);

#endif

// jz_normal_f32 fills out[0..n) with independent N(0, 1) draws from the
// stream named by key (Box-Muller on xoshiro128** uniforms).
void jz_normal_f32(float *out, long n, unsigned long long key);
