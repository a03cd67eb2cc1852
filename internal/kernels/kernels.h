// Elementwise float32 activation kernels (see kernels.go).
#ifndef JARZYN_KERNELS_H
#define JARZYN_KERNELS_H

void jz_silu_f32(const float *x, float *out, long n);
void jz_silu_grad_f32(const float *x, const float *y, const float *gy, float *out, long n);

#endif
