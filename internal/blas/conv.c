// Patch layouts of a convolution (see conv.h and conv.go). For each kernel
// tap (kh, kw) the outputs ow ∈ [ow0, ow1) read inside the image and the
// others the padding, and the rows oh ∈ [oh0, oh1) likewise, so the loops run
// over those ranges with no per-value test. In the NCHW loops the stride is a
// compile-time constant in the common cases (1, 2).
#include <stdlib.h>
#include <string.h>
#include <immintrin.h>
#include "conv.h"

// JZ_CLONES compiles a loop nest twice, for AVX2 and for the baseline, and
// picks one at load time: the sample-minor moves and sums are runs of n
// values that AVX2 does in half the instructions. Each value still gets
// the same operations in the same order, so both give the same bits.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define JZ_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define JZ_CLONES
#endif

// range returns in [*lo, *hi) the outputs o < n with o·S − P + k inside
// [0, size).
static inline void range(long n, long S, long P, long k, long size, long *lo, long *hi) {
	long a = P - k, b = size - 1 + P - k; // o·S ∈ [a, b]
	long l = a > 0 ? (a + S - 1) / S : 0;
	long h = b < 0 ? 0 : b / S + 1;
	if (h > n) h = n;
	if (l > h) l = h;
	*lo = l;
	*hi = h;
}

#define IM2COL(NAME, T, SFIX)                                                                          \
	static inline void NAME(const jz_conv_geom *g, const T *x, long n, T *cols, long ld, long S) {      \
		const long C = g->C, H = g->H, W = g->W, K = g->K, P = g->P, Ho = g->Ho, Wo = g->Wo;            \
		const long pix = Ho * Wo, in = C * H * W;                                                       \
		if (SFIX) S = SFIX;                                                                             \
		long oh0[K], oh1[K], ow0[K], ow1[K];                                                            \
		for (long k = 0; k < K; k++) {                                                                  \
			range(Ho, S, P, k, H, &oh0[k], &oh1[k]);                                                    \
			range(Wo, S, P, k, W, &ow0[k], &ow1[k]);                                                    \
		}                                                                                               \
		for (long s = 0; s < n; s++) {                                                                  \
			for (long c = 0; c < C; c++) {                                                              \
				const T *src = x + s * in + c * H * W;                                                  \
				for (long kh = 0; kh < K; kh++) {                                                       \
					const long h0 = oh0[kh], h1 = oh1[kh];                                              \
					for (long kw = 0; kw < K; kw++) {                                                   \
						const long w0 = ow0[kw], w1 = ow1[kw];                                          \
						T *dst = cols + ((c * K + kh) * K + kw) * ld + s * pix;                         \
						memset(dst, 0, sizeof(T) * h0 * Wo);                                            \
						for (long oh = h0; oh < h1; oh++) {                                             \
							T *restrict d = dst + oh * Wo;                                                       \
							const T *restrict r = src + (oh * S - P + kh) * W + kw - P;                          \
							for (long ow = 0; ow < w0; ow++) d[ow] = 0;                                 \
							for (long ow = w0; ow < w1; ow++) d[ow] = r[ow * S];                        \
							for (long ow = w1; ow < Wo; ow++) d[ow] = 0;                                \
						}                                                                               \
						memset(dst + h1 * Wo, 0, sizeof(T) * (Ho - h1) * Wo);                           \
					}                                                                                   \
				}                                                                                       \
			}                                                                                           \
		}                                                                                               \
	}

#define COL2IM(NAME, T, SFIX)                                                                          \
	static inline void NAME(const jz_conv_geom *g, const T *cols, long ld, long n, T *dx, long S) {    \
		const long C = g->C, H = g->H, W = g->W, K = g->K, P = g->P, Ho = g->Ho, Wo = g->Wo;            \
		const long pix = Ho * Wo, in = C * H * W;                                                       \
		if (SFIX) S = SFIX;                                                                             \
		long oh0[K], oh1[K], ow0[K], ow1[K];                                                            \
		for (long k = 0; k < K; k++) {                                                                  \
			range(Ho, S, P, k, H, &oh0[k], &oh1[k]);                                                    \
			range(Wo, S, P, k, W, &ow0[k], &ow1[k]);                                                    \
		}                                                                                               \
		memset(dx, 0, sizeof(T) * n * in);                                                              \
		for (long s = 0; s < n; s++) {                                                                  \
			for (long c = 0; c < C; c++) {                                                              \
				T *dst = dx + s * in + c * H * W;                                                       \
				for (long kh = 0; kh < K; kh++) {                                                       \
					const long h0 = oh0[kh], h1 = oh1[kh];                                              \
					for (long kw = 0; kw < K; kw++) {                                                   \
						const long w0 = ow0[kw], w1 = ow1[kw];                                          \
						const T *src = cols + ((c * K + kh) * K + kw) * ld + s * pix;                   \
						for (long oh = h0; oh < h1; oh++) {                                             \
							const T *restrict q = src + oh * Wo;                                                 \
							T *restrict r = dst + (oh * S - P + kh) * W + kw - P;                                \
							for (long ow = w0; ow < w1; ow++) r[ow * S] += q[ow];                       \
						}                                                                               \
					}                                                                                   \
				}                                                                                       \
			}                                                                                           \
		}                                                                                               \
	}

IM2COL(im2col_f32_s1, float, 1)
IM2COL(im2col_f32_s2, float, 2)
IM2COL(im2col_f32_sn, float, 0)
IM2COL(im2col_f64_s1, double, 1)
IM2COL(im2col_f64_s2, double, 2)
IM2COL(im2col_f64_sn, double, 0)
COL2IM(col2im_f32_s1, float, 1)
COL2IM(col2im_f32_s2, float, 2)
COL2IM(col2im_f32_sn, float, 0)
COL2IM(col2im_f64_s1, double, 1)
COL2IM(col2im_f64_s2, double, 2)
COL2IM(col2im_f64_sn, double, 0)

void jz_im2col_f32(const jz_conv_geom *g, const float *x, long n, float *cols, long ld) {
	switch (g->S) {
	case 1: im2col_f32_s1(g, x, n, cols, ld, 1); break;
	case 2: im2col_f32_s2(g, x, n, cols, ld, 2); break;
	default: im2col_f32_sn(g, x, n, cols, ld, g->S);
	}
}

void jz_im2col_f64(const jz_conv_geom *g, const double *x, long n, double *cols, long ld) {
	switch (g->S) {
	case 1: im2col_f64_s1(g, x, n, cols, ld, 1); break;
	case 2: im2col_f64_s2(g, x, n, cols, ld, 2); break;
	default: im2col_f64_sn(g, x, n, cols, ld, g->S);
	}
}

void jz_col2im_f32(const jz_conv_geom *g, const float *cols, long ld, long n, float *dx) {
	switch (g->S) {
	case 1: col2im_f32_s1(g, cols, ld, n, dx, 1); break;
	case 2: col2im_f32_s2(g, cols, ld, n, dx, 2); break;
	default: col2im_f32_sn(g, cols, ld, n, dx, g->S);
	}
}

void jz_col2im_f64(const jz_conv_geom *g, const double *cols, long ld, long n, double *dx) {
	switch (g->S) {
	case 1: col2im_f64_s1(g, cols, ld, n, dx, 1); break;
	case 2: col2im_f64_s2(g, cols, ld, n, dx, 2); break;
	default: col2im_f64_sn(g, cols, ld, n, dx, g->S);
	}
}

// The sample-minor loops: every (c, kh, kw, oh, ow) moves n contiguous
// values.
#define SM(NAME, T)                                                                                    \
	JZ_CLONES void jz_im2col_sm_##NAME(const jz_conv_geom *g, const T *xt, long n, T *cols, long ld) { \
		const long C = g->C, H = g->H, W = g->W, K = g->K, S = g->S, P = g->P, Ho = g->Ho, Wo = g->Wo;  \
		long oh0[K], oh1[K], ow0[K], ow1[K];                                                            \
		for (long k = 0; k < K; k++) {                                                                  \
			range(Ho, S, P, k, H, &oh0[k], &oh1[k]);                                                    \
			range(Wo, S, P, k, W, &ow0[k], &ow1[k]);                                                    \
		}                                                                                               \
		for (long c = 0; c < C; c++) {                                                                  \
			for (long kh = 0; kh < K; kh++) {                                                           \
				const long h0 = oh0[kh], h1 = oh1[kh];                                                  \
				for (long kw = 0; kw < K; kw++) {                                                       \
					const long w0 = ow0[kw], w1 = ow1[kw];                                              \
					T *dst = cols + ((c * K + kh) * K + kw) * ld;                                       \
					memset(dst, 0, sizeof(T) * h0 * Wo * n);                                            \
					for (long oh = h0; oh < h1; oh++) {                                                 \
						T *restrict d = dst + oh * Wo * n;                                              \
						const T *restrict r = xt + ((c * H + oh * S - P + kh) * W + kw - P) * n;        \
						memset(d, 0, sizeof(T) * w0 * n);                                               \
						for (long ow = w0; ow < w1; ow++) {                                             \
							T *restrict dd = d + ow * n;                                                \
							const T *restrict rr = r + ow * S * n;                                      \
							for (long s = 0; s < n; s++) dd[s] = rr[s];                                 \
						}                                                                               \
						memset(d + w1 * n, 0, sizeof(T) * (Wo - w1) * n);                              \
					}                                                                                   \
					memset(dst + h1 * Wo * n, 0, sizeof(T) * (Ho - h1) * Wo * n);                       \
				}                                                                                       \
			}                                                                                           \
		}                                                                                               \
	}                                                                                                   \
                                                                                                        \
	JZ_CLONES void jz_col2im_sm_##NAME(const jz_conv_geom *g, const T *cols, long ld, long n, T *dxt) { \
		const long C = g->C, H = g->H, W = g->W, K = g->K, S = g->S, P = g->P, Ho = g->Ho, Wo = g->Wo;  \
		long oh0[K], oh1[K], ow0[K], ow1[K];                                                            \
		for (long k = 0; k < K; k++) {                                                                  \
			range(Ho, S, P, k, H, &oh0[k], &oh1[k]);                                                    \
			range(Wo, S, P, k, W, &ow0[k], &ow1[k]);                                                    \
		}                                                                                               \
		memset(dxt, 0, sizeof(T) * C * H * W * n);                                                      \
		for (long c = 0; c < C; c++) {                                                                  \
			for (long kh = 0; kh < K; kh++) {                                                           \
				const long h0 = oh0[kh], h1 = oh1[kh];                                                  \
				for (long kw = 0; kw < K; kw++) {                                                       \
					const long w0 = ow0[kw], w1 = ow1[kw];                                              \
					const T *src = cols + ((c * K + kh) * K + kw) * ld;                                 \
					for (long oh = h0; oh < h1; oh++) {                                                 \
						const T *restrict q = src + oh * Wo * n;                                        \
						T *restrict r = dxt + ((c * H + oh * S - P + kh) * W + kw - P) * n;             \
						for (long ow = w0; ow < w1; ow++) {                                             \
							T *restrict rr = r + ow * S * n;                                            \
							const T *restrict qq = q + ow * n;                                          \
							for (long s = 0; s < n; s++) rr[s] += qq[s];                                \
						}                                                                               \
					}                                                                                   \
				}                                                                                       \
			}                                                                                           \
		}                                                                                               \
	}                                                                                                   \
                                                                                                        \
	static void transpose_##NAME(const T *in, long rows, long cols, long ldi, T *out, long ldo, const T *scale, \
	                             const T *add, long group, int leaky, T slope) {                        \
		enum { B = 16 };                                                                                \
		for (long i0 = 0; i0 < rows; i0 += B) {                                                         \
			const long i1 = i0 + B < rows ? i0 + B : rows;                                              \
			T sc[B], ad[B];                                                                             \
			for (long i = i0; i < i1; i++) {                                                            \
				sc[i - i0] = scale ? scale[i] : (T)1;                                                   \
				ad[i - i0] = add ? add[i / group] : (T)0;                                               \
			}                                                                                           \
			for (long j0 = 0; j0 < cols; j0 += B) {                                                     \
				const long j1 = j0 + B < cols ? j0 + B : cols;                                          \
				for (long j = j0; j < j1; j++) {                                                        \
					T *restrict o = out + j * ldo;                                                      \
					for (long i = i0; i < i1; i++) {                                                    \
						const T z = in[i * ldi + j] * sc[i - i0] + ad[i - i0];                          \
						o[i] = leaky ? z * (z < 0 ? slope : (T)1) : z;                                  \
					}                                                                                   \
				}                                                                                       \
			}                                                                                           \
		}                                                                                               \
	}

SM(f32, float)
SM(f64, double)

void jz_transpose_f64(const double *in, long rows, long cols, long ldi, double *out, long ldo, const double *scale,
                      const double *add, long group) {
	transpose_f64(in, rows, cols, ldi, out, ldo, scale, add, group, 0, 0);
}

void jz_transpose_leaky_f64(const double *in, long rows, long cols, long ldi, double *out, long ldo,
                            const double *scale, const double *add, long group, double slope) {
	transpose_f64(in, rows, cols, ldi, out, ldo, scale, add, group, 1, slope);
}

#if defined(__x86_64__)
// has_avx2 reports, once per process, whether the CPU has AVX2.
static int has_avx2(void) {
	static int cached = -1;
	if (cached < 0) {
		__builtin_cpu_init();
		cached = __builtin_cpu_supports("avx2");
	}
	return cached;
}

// store8 stores z, or z·(z < 0 ? slope : 1) when leaky (LeakyReLU).
__attribute__((target("avx2"))) static inline void store8(float *out, __m256 z, int leaky, __m256 slope) {
	if (leaky) {
		__m256 neg = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_LT_OQ);
		z = _mm256_mul_ps(z, _mm256_blendv_ps(_mm256_set1_ps(1.0f), slope, neg));
	}
	_mm256_storeu_ps(out, z);
}

// transpose8 transposes the 8×8 block at in (row stride ldi) into out (row
// stride ldo), scaling input row i by sc[i] and adding ad[i] (then the
// LeakyReLU when leaky).
__attribute__((target("avx2"))) static inline void transpose8(const float *in, long ldi, float *out, long ldo, __m256 sc,
                                                              __m256 ad, int leaky, __m256 slope) {
	__m256 r0 = _mm256_loadu_ps(in + 0 * ldi), r1 = _mm256_loadu_ps(in + 1 * ldi);
	__m256 r2 = _mm256_loadu_ps(in + 2 * ldi), r3 = _mm256_loadu_ps(in + 3 * ldi);
	__m256 r4 = _mm256_loadu_ps(in + 4 * ldi), r5 = _mm256_loadu_ps(in + 5 * ldi);
	__m256 r6 = _mm256_loadu_ps(in + 6 * ldi), r7 = _mm256_loadu_ps(in + 7 * ldi);
	__m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
	__m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
	__m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
	__m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
	__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
	__m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
	__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
	__m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
	// products and sums stay separate (no fused multiply-add), as in the
	// scalar path, so that both give the same bits
	store8(out + 0 * ldo, _mm256_add_ps(_mm256_mul_ps(_mm256_permute2f128_ps(u0, u4, 0x20), sc), ad), leaky, slope);
	store8(out + 1 * ldo, _mm256_add_ps(_mm256_mul_ps(_mm256_permute2f128_ps(u1, u5, 0x20), sc), ad), leaky, slope);
	store8(out + 2 * ldo, _mm256_add_ps(_mm256_mul_ps(_mm256_permute2f128_ps(u2, u6, 0x20), sc), ad), leaky, slope);
	store8(out + 3 * ldo, _mm256_add_ps(_mm256_mul_ps(_mm256_permute2f128_ps(u3, u7, 0x20), sc), ad), leaky, slope);
	store8(out + 4 * ldo, _mm256_add_ps(_mm256_mul_ps(_mm256_permute2f128_ps(u0, u4, 0x31), sc), ad), leaky, slope);
	store8(out + 5 * ldo, _mm256_add_ps(_mm256_mul_ps(_mm256_permute2f128_ps(u1, u5, 0x31), sc), ad), leaky, slope);
	store8(out + 6 * ldo, _mm256_add_ps(_mm256_mul_ps(_mm256_permute2f128_ps(u2, u6, 0x31), sc), ad), leaky, slope);
	store8(out + 7 * ldo, _mm256_add_ps(_mm256_mul_ps(_mm256_permute2f128_ps(u3, u7, 0x31), sc), ad), leaky, slope);
}

// transpose_avx2_f32 does the 8×8 blocks of jz_transpose_f32 and leaves the
// ragged edges (rows and columns past the last multiple of 8) to the
// scalar loop. The blocks go down the input's columns (along the output's
// rows), so that each output row is written front to back: the outputs here
// are [n, C·H·W] rows whose power-of-two strides would otherwise make the
// blocks' eight stores fight over the same cache sets.
__attribute__((target("avx2"))) static void transpose_avx2_f32(const float *in, long rows, long cols, long ldi, float *out,
                                                               long ldo, const float *scale, const float *add,
                                                               long group, int leaky, float slope) {
	const long r8 = rows & ~7L, c8 = cols & ~7L;
	float *sa = NULL;
	if (scale || add) {
		// per row: its scale and add, so that the blocks read them as vectors
		sa = malloc(sizeof(float) * 2 * (r8 > 0 ? r8 : 1));
		if (sa == NULL) {
			transpose_f32(in, rows, cols, ldi, out, ldo, scale, add, group, leaky, slope);
			return;
		}
		for (long i = 0; i < r8; i++) {
			sa[i] = scale ? scale[i] : 1.0f;
			sa[r8 + i] = add ? add[i / group] : 0.0f;
		}
	}
	const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps(), vslope = _mm256_set1_ps(slope);
	for (long j0 = 0; j0 < c8; j0 += 8) {
		for (long i0 = 0; i0 < r8; i0 += 8) {
			__m256 vs = sa ? _mm256_loadu_ps(sa + i0) : one, va = sa ? _mm256_loadu_ps(sa + r8 + i0) : zero;
			transpose8(in + i0 * ldi + j0, ldi, out + j0 * ldo + i0, ldo, vs, va, leaky, vslope);
		}
	}
	free(sa);
	if (c8 < cols) transpose_f32(in + c8, rows, cols - c8, ldi, out + c8 * ldo, ldo, scale, add, group, leaky, slope);
	for (long i = r8; i < rows; i++) {
		const float s = scale ? scale[i] : 1.0f, a = add ? add[i / group] : 0.0f;
		for (long j = 0; j < c8; j++) {
			const float z = in[i * ldi + j] * s + a;
			out[j * ldo + i] = leaky ? z * (z < 0 ? slope : 1.0f) : z;
		}
	}
}
#endif

void jz_transpose_f32(const float *in, long rows, long cols, long ldi, float *out, long ldo, const float *scale,
                      const float *add, long group) {
#if defined(__x86_64__)
	if (has_avx2()) {
		transpose_avx2_f32(in, rows, cols, ldi, out, ldo, scale, add, group, 0, 0);
		return;
	}
#endif
	transpose_f32(in, rows, cols, ldi, out, ldo, scale, add, group, 0, 0);
}

void jz_transpose_leaky_f32(const float *in, long rows, long cols, long ldi, float *out, long ldo, const float *scale,
                            const float *add, long group, float slope) {
#if defined(__x86_64__)
	if (has_avx2()) {
		transpose_avx2_f32(in, rows, cols, ldi, out, ldo, scale, add, group, 1, slope);
		return;
	}
#endif
	transpose_f32(in, rows, cols, ldi, out, ldo, scale, add, group, 1, slope);
}

#define ADD_ROWS(NAME, T)                                                                              \
	JZ_CLONES void jz_add_rows_##NAME(T *y, long rows, long cols, const T *add) {                    \
		for (long i = 0; i < rows; i++) {                                                               \
			T *restrict r = y + i * cols;                                                               \
			const T a = add[i];                                                                         \
			for (long j = 0; j < cols; j++) r[j] += a;                                                  \
		}                                                                                               \
	}

ADD_ROWS(f32, float)
ADD_ROWS(f64, double)

// The LeakyReLU of a convolution's output and its derivative: the factor is
// chosen by a compare and a select, which the compiler vectorises (the
// signs of pre-activations are unpredictable, a branch would miss half the
// time). The product is the same single rounding as the scalar one.
#define LEAKY(NAME, T)                                                                                 \
	void jz_leaky_##NAME(const T *x, const T *gy, T slope, T *out, long n) {                          \
		if (gy == NULL) {                                                                               \
			for (long i = 0; i < n; i++) {                                                              \
				const T v = x[i];                                                                       \
				out[i] = v * (v < 0 ? slope : (T)1);                                                    \
			}                                                                                           \
			return;                                                                                     \
		}                                                                                               \
		for (long i = 0; i < n; i++) out[i] = gy[i] * (x[i] < 0 ? slope : (T)1);                        \
	}

LEAKY(f32, float)
LEAKY(f64, double)
