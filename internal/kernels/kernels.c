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
