// Elementwise float32 activation kernels (see kernels.go): an AVX2+FMA path
// chosen at run time when the CPU has it, and a portable scalar path.
#include "kernels.h"

// e^{-a} for a >= 0 (clamped at 87), float32 to about 1 ulp: Cody-Waite
// reduction and a degree-6 polynomial.
static inline float expneg(float a) {
	a = a < 87.0f ? a : 87.0f;
	float x = -a;
	int k = (int)(x * 1.442695041f - 0.5f); // round(x·log2 e) for x <= 0
	float kf = (float)k;
	float r = x - kf * 0.693359375f + kf * 2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	float e = p * r * r + r + 1.0f;
	union { int i; float f; } s;
	s.i = (k + 127) << 23;
	return e * s.f;
}

static void silu_scalar(const float *x, float *out, long i, long n) {
	for (; i < n; i++) {
		float v = x[i];
		float e = expneg(v < 0 ? -v : v);
		float s = 1.0f / (1.0f + e);
		out[i] = v * (v < 0 ? e * s : s);
	}
}

static void silu_grad_scalar(const float *x, const float *y, const float *gy, float *out, long i, long n) {
	for (; i < n; i++) {
		float v = x[i];
		float a = v < 0 ? -v : v;
		float s = a > 1e-3f ? y[i] / v : 0.5f + 0.25f * v;
		out[i] = gy[i] * s * (1.0f + v * (1.0f - s));
	}
}

// silu_deriv1 sets *y = silu(v) and returns silu′(v).
static inline float silu_deriv1(float v, float *y) {
	float e = expneg(v < 0 ? -v : v);
	float s = 1.0f / (1.0f + e);
	s = v < 0 ? e * s : s;
	*y = v * s;
	return s * (1.0f + v * (1.0f - s));
}

static void silu_deriv_scalar(const float *z, float *y, float *d, long i, long n) {
	for (; i < n; i++) {
		d[i] = silu_deriv1(z[i], &y[i]);
	}
}

static float silu_deriv_dot_row_scalar(const float *z, const float *w, float *d, long j, long cols) {
	float f = 0;
	for (; j < cols; j++) {
		float y;
		d[j] = silu_deriv1(z[j], &y);
		f += y * w[j];
	}
	return f;
}

static void linear_silu_deriv_scalar(const float *x, const float *w, const float *b, float *y, float *d, long r, long k, long cols, long j) {
	for (; j < cols; j++) {
		float z = b[j];
		for (long q = 0; q < k; q++) {
			z += x[r * k + q] * w[q * cols + j];
		}
		d[r * cols + j] = silu_deriv1(z, &y[r * cols + j]);
	}
}

static float mul_dot_scalar(const float *a, const float *g, const float *w, long j, long cols) {
	float acc = 0;
	for (; j < cols; j++) {
		acc += a[j] * g[j] * w[j];
	}
	return acc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define JZ_AVX2 1

__attribute__((target("avx2,fma"))) static inline __m256 expneg8(__m256 a) {
	a = _mm256_min_ps(a, _mm256_set1_ps(87.0f));
	__m256 x = _mm256_sub_ps(_mm256_setzero_ps(), a);
	__m256i k = _mm256_cvttps_epi32(_mm256_fmsub_ps(x, _mm256_set1_ps(1.442695041f), _mm256_set1_ps(0.5f)));
	__m256 kf = _mm256_cvtepi32_ps(k);
	__m256 r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fmadd_ps(kf, _mm256_set1_ps(2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
	__m256 e = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
	__m256i pow2 = _mm256_slli_epi32(_mm256_add_epi32(k, _mm256_set1_epi32(127)), 23);
	return _mm256_mul_ps(e, _mm256_castsi256_ps(pow2));
}

__attribute__((target("avx2,fma"))) static void silu_avx2(const float *x, float *out, long n) {
	const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
	long i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(x + i);
		__m256 e = expneg8(_mm256_andnot_ps(sign, v));
		__m256 s = _mm256_div_ps(one, _mm256_add_ps(one, e));
		s = _mm256_blendv_ps(s, _mm256_mul_ps(e, s), _mm256_cmp_ps(v, zero, _CMP_LT_OQ));
		_mm256_storeu_ps(out + i, _mm256_mul_ps(v, s));
	}
	silu_scalar(x, out, i, n);
}

__attribute__((target("avx2,fma"))) static void silu_grad_avx2(const float *x, const float *y, const float *gy, float *out, long n) {
	const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
	const __m256 eps = _mm256_set1_ps(1e-3f), half = _mm256_set1_ps(0.5f), quarter = _mm256_set1_ps(0.25f);
	long i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 v = _mm256_loadu_ps(x + i);
		__m256 big = _mm256_cmp_ps(_mm256_andnot_ps(sign, v), eps, _CMP_GT_OQ);
		__m256 safe = _mm256_blendv_ps(one, v, big);
		__m256 s = _mm256_blendv_ps(_mm256_fmadd_ps(quarter, v, half), _mm256_div_ps(_mm256_loadu_ps(y + i), safe), big);
		__m256 d = _mm256_mul_ps(s, _mm256_fmadd_ps(v, _mm256_sub_ps(one, s), one));
		_mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(gy + i), d));
	}
	silu_grad_scalar(x, y, gy, out, i, n);
}

// sigmoid8 returns σ(v) = 1/(1 + e^{−v}) and sets *em = e^{−v}, from
// expneg8's polynomial on the argument clamped to ±87, the reciprocal by rcp
// plus one Newton step (relative error about 2^-22).
__attribute__((target("avx2,fma"))) static inline __m256 sigmoid8(__m256 v, __m256 *em) {
	const __m256 one = _mm256_set1_ps(1.0f), two = _mm256_set1_ps(2.0f);
	__m256 x = _mm256_min_ps(_mm256_max_ps(_mm256_sub_ps(_mm256_setzero_ps(), v), _mm256_set1_ps(-87.0f)), _mm256_set1_ps(87.0f));
	__m256 kf = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.442695041f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(kf, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fmadd_ps(kf, _mm256_set1_ps(2.12194440e-4f), r);
	// degree-6 polynomial by Estrin's scheme (shorter dependency chains)
	__m256 r2 = _mm256_mul_ps(r, r);
	__m256 p01 = _mm256_fmadd_ps(_mm256_set1_ps(1.6666665459e-1f), r, _mm256_set1_ps(5.0000001201e-1f));
	__m256 p23 = _mm256_fmadd_ps(_mm256_set1_ps(8.3334519073e-3f), r, _mm256_set1_ps(4.1665795894e-2f));
	__m256 p45 = _mm256_fmadd_ps(_mm256_set1_ps(1.9875691500e-4f), r, _mm256_set1_ps(1.3981999507e-3f));
	__m256 p = _mm256_fmadd_ps(_mm256_fmadd_ps(p45, r2, p23), r2, p01);
	__m256 e = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, one));
	__m256i pow2 = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(kf), _mm256_set1_epi32(127)), 23);
	e = _mm256_mul_ps(e, _mm256_castsi256_ps(pow2));
	*em = e;
	__m256 a = _mm256_add_ps(e, one);
	__m256 q = _mm256_rcp_ps(a);
	return _mm256_mul_ps(q, _mm256_fnmadd_ps(a, q, two));
}

// silu_deriv8 sets *y = silu(v) and returns silu′(v) = σ(1 + v·e^{−v}·σ),
// using 1 − σ = e^{−v}·σ, which has no cancellation for large v.
__attribute__((target("avx2,fma"))) static inline __m256 silu_deriv8(__m256 v, __m256 *y) {
	__m256 e;
	__m256 s = sigmoid8(v, &e);
	*y = _mm256_mul_ps(v, s);
	return _mm256_mul_ps(s, _mm256_fmadd_ps(*y, e, _mm256_set1_ps(1.0f)));
}

__attribute__((target("avx2,fma"))) static void silu_deriv_avx2(const float *z, float *y, float *d, long n) {
	long i = 0;
	// four independent vectors per iteration keep enough work in flight to
	// hide the ~70-cycle dependency chain of one
	for (; i + 32 <= n; i += 32) {
		__m256 y0, y1, y2, y3;
		__m256 d0 = silu_deriv8(_mm256_loadu_ps(z + i), &y0);
		__m256 d1 = silu_deriv8(_mm256_loadu_ps(z + i + 8), &y1);
		__m256 d2 = silu_deriv8(_mm256_loadu_ps(z + i + 16), &y2);
		__m256 d3 = silu_deriv8(_mm256_loadu_ps(z + i + 24), &y3);
		_mm256_storeu_ps(y + i, y0);
		_mm256_storeu_ps(y + i + 8, y1);
		_mm256_storeu_ps(y + i + 16, y2);
		_mm256_storeu_ps(y + i + 24, y3);
		_mm256_storeu_ps(d + i, d0);
		_mm256_storeu_ps(d + i + 8, d1);
		_mm256_storeu_ps(d + i + 16, d2);
		_mm256_storeu_ps(d + i + 24, d3);
	}
	for (; i + 8 <= n; i += 8) {
		__m256 yv;
		_mm256_storeu_ps(d + i, silu_deriv8(_mm256_loadu_ps(z + i), &yv));
		_mm256_storeu_ps(y + i, yv);
	}
	silu_deriv_scalar(z, y, d, i, n);
}

__attribute__((target("avx2,fma"))) static inline float hsum8(__m256 v) {
	__m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
	return _mm_cvtss_f32(h);
}

__attribute__((target("avx2,fma"))) static void silu_deriv_dot_avx2(const float *z, const float *w, float *d, float *f, long rows, long cols) {
	for (long r = 0; r < rows; r++) {
		const float *zr = z + r * cols;
		float *dr = d + r * cols;
		__m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
		long j = 0;
		for (; j + 16 <= cols; j += 16) {
			__m256 y0, y1;
			__m256 d0 = silu_deriv8(_mm256_loadu_ps(zr + j), &y0);
			__m256 d1 = silu_deriv8(_mm256_loadu_ps(zr + j + 8), &y1);
			acc0 = _mm256_fmadd_ps(y0, _mm256_loadu_ps(w + j), acc0);
			acc1 = _mm256_fmadd_ps(y1, _mm256_loadu_ps(w + j + 8), acc1);
			_mm256_storeu_ps(dr + j, d0);
			_mm256_storeu_ps(dr + j + 8, d1);
		}
		for (; j + 8 <= cols; j += 8) {
			__m256 y0;
			_mm256_storeu_ps(dr + j, silu_deriv8(_mm256_loadu_ps(zr + j), &y0));
			acc0 = _mm256_fmadd_ps(y0, _mm256_loadu_ps(w + j), acc0);
		}
		f[r] = hsum8(_mm256_add_ps(acc0, acc1)) + silu_deriv_dot_row_scalar(zr, w, dr, j, cols);
	}
}

__attribute__((target("avx2,fma"))) static void linear_silu_deriv_avx2(const float *x, const float *w, const float *b, float *y, float *d, long rows, long k, long cols) {
	for (long r = 0; r < rows; r++) {
		const float *xr = x + r * k;
		long j = 0;
		for (; j + 8 <= cols; j += 8) {
			__m256 z = _mm256_loadu_ps(b + j);
			for (long q = 0; q < k; q++) {
				z = _mm256_fmadd_ps(_mm256_set1_ps(xr[q]), _mm256_loadu_ps(w + q * cols + j), z);
			}
			__m256 yv;
			_mm256_storeu_ps(d + r * cols + j, silu_deriv8(z, &yv));
			_mm256_storeu_ps(y + r * cols + j, yv);
		}
		linear_silu_deriv_scalar(x, w, b, y, d, r, k, cols, j);
	}
}

__attribute__((target("avx2,fma"))) static void mul_matmul_t_avx2(const float *a, const float *g, const float *w, const float *c, float beta, float *out, long rows, long cols, long n) {
	for (long r = 0; r < rows; r++) {
		const float *ar = a + r * cols, *gr = g + r * cols;
		for (long i = 0; i < n; i++) {
			const float *wi = w + i * cols;
			__m256 acc = _mm256_setzero_ps();
			long j = 0;
			for (; j + 8 <= cols; j += 8) {
				acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(ar + j), _mm256_loadu_ps(gr + j)), _mm256_loadu_ps(wi + j), acc);
			}
			out[r * n + i] = hsum8(acc) + mul_dot_scalar(ar, gr, wi, j, cols) + beta * c[r * n + i];
		}
	}
}

#endif

int jz_has_avx2_fma(void) {
#ifdef JZ_AVX2
	static int cached = -1;
	if (cached < 0) {
		__builtin_cpu_init();
		cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	}
	return cached;
#else
	return 0;
#endif
}

static int force_scalar;

void jz_set_scalar(int on) { force_scalar = on; }

int jz_use_avx2(void) { return !force_scalar && jz_has_avx2_fma(); }

void jz_silu_f32(const float *x, float *out, long n) {
#ifdef JZ_AVX2
	if (jz_use_avx2()) {
		silu_avx2(x, out, n);
		return;
	}
#endif
	silu_scalar(x, out, 0, n);
}

void jz_silu_grad_f32(const float *x, const float *y, const float *gy, float *out, long n) {
#ifdef JZ_AVX2
	if (jz_use_avx2()) {
		silu_grad_avx2(x, y, gy, out, n);
		return;
	}
#endif
	silu_grad_scalar(x, y, gy, out, 0, n);
}

void jz_silu_deriv_f32(const float *z, float *y, float *d, long n) {
#ifdef JZ_AVX2
	if (jz_use_avx2()) {
		silu_deriv_avx2(z, y, d, n);
		return;
	}
#endif
	silu_deriv_scalar(z, y, d, 0, n);
}

void jz_silu_deriv_dot_f32(const float *z, const float *w, float *d, float *f, long rows, long cols) {
#ifdef JZ_AVX2
	if (jz_use_avx2()) {
		silu_deriv_dot_avx2(z, w, d, f, rows, cols);
		return;
	}
#endif
	for (long r = 0; r < rows; r++) {
		f[r] = silu_deriv_dot_row_scalar(z + r * cols, w, d + r * cols, 0, cols);
	}
}

void jz_linear_silu_deriv_f32(const float *x, const float *w, const float *b, float *y, float *d, long rows, long k, long cols) {
#ifdef JZ_AVX2
	if (jz_use_avx2()) {
		linear_silu_deriv_avx2(x, w, b, y, d, rows, k, cols);
		return;
	}
#endif
	for (long r = 0; r < rows; r++) {
		linear_silu_deriv_scalar(x, w, b, y, d, r, k, cols, 0);
	}
}

void jz_mul_matmul_t_f32(const float *a, const float *g, const float *w, const float *c, float beta, float *out, long rows, long cols, long n) {
#ifdef JZ_AVX2
	if (jz_use_avx2()) {
		mul_matmul_t_avx2(a, g, w, c, beta, out, rows, cols, n);
		return;
	}
#endif
	for (long r = 0; r < rows; r++) {
		for (long i = 0; i < n; i++) {
			out[r * n + i] = mul_dot_scalar(a + r * cols, g + r * cols, w + i * cols, 0, cols) + beta * c[r * n + i];
		}
	}
}
