// Gaussian draws for the Langevin noise (see kernels.go): xoshiro128** for
// uniforms, seeded from a 64-bit key by splitmix64, and the Box-Muller
// transform evaluated eight pairs at a time with AVX2 (scalar fallback).
#include <math.h>
#include <stdint.h>
#include "kernels.h"

typedef struct { uint32_t s[4]; } xoshiro;

static uint64_t splitmix64(uint64_t *x) {
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void seed(xoshiro *r, uint64_t key) {
	uint64_t a = splitmix64(&key), b = splitmix64(&key);
	r->s[0] = (uint32_t)a; r->s[1] = (uint32_t)(a >> 32);
	r->s[2] = (uint32_t)b; r->s[3] = (uint32_t)(b >> 32);
	if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
}

static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

static inline uint32_t next(xoshiro *r) {
	uint32_t *s = r->s;
	uint32_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 9;
	s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
	s[2] ^= t; s[3] = rotl(s[3], 11);
	return result;
}

// u1 in (0, 1] and u2 in [0, 1), 24-bit resolution.
static inline float unit_open0(uint32_t v) { return ((float)(v >> 8) + 1.0f) * (1.0f / 16777216.0f); }
static inline float unit_closed0(uint32_t v) { return (float)(v >> 8) * (1.0f / 16777216.0f); }

static void normal_scalar(xoshiro *r, float *out, long i, long n) {
	for (; i < n; i += 2) {
		float u1 = unit_open0(next(r)), u2 = unit_closed0(next(r));
		double rad = sqrt(-2.0 * log((double)u1)), th = 6.283185307179586 * (double)u2;
		out[i] = (float)(rad * cos(th));
		if (i + 1 < n) out[i + 1] = (float)(rad * sin(th));
	}
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

// ln(x) for x in (0, 1] (Cephes logf).
__attribute__((target("avx2,fma"))) static inline __m256 log8(__m256 x) {
	const __m256 one = _mm256_set1_ps(1.0f);
	__m256i xi = _mm256_castps_si256(x);
	__m256i ei = _mm256_sub_epi32(_mm256_srli_epi32(xi, 23), _mm256_set1_epi32(126));
	__m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(xi, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x3f000000)));
	__m256 e = _mm256_cvtepi32_ps(ei);
	__m256 small = _mm256_cmp_ps(m, _mm256_set1_ps(0.707106781186547524f), _CMP_LT_OQ);
	e = _mm256_sub_ps(e, _mm256_and_ps(small, one));
	m = _mm256_sub_ps(_mm256_add_ps(m, _mm256_and_ps(small, m)), one);
	__m256 z = _mm256_mul_ps(m, m);
	__m256 y = _mm256_set1_ps(7.0376836292E-2f);
	y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.1514610310E-1f));
	y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.1676998740E-1f));
	y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.2420140846E-1f));
	y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(1.4249322787E-1f));
	y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-1.6668057665E-1f));
	y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(2.0000714765E-1f));
	y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(-2.4999993993E-1f));
	y = _mm256_fmadd_ps(y, m, _mm256_set1_ps(3.3333331174E-1f));
	y = _mm256_mul_ps(_mm256_mul_ps(y, m), z);
	y = _mm256_fmadd_ps(e, _mm256_set1_ps(-2.12194440e-4f), y);
	y = _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), z, y);
	return _mm256_fmadd_ps(e, _mm256_set1_ps(0.693359375f), _mm256_add_ps(m, y));
}

// cos and sin of 2πu for u in [0, 1): quarter-turn reduction, Cephes
// polynomials on [−π/4, π/4].
__attribute__((target("avx2,fma"))) static inline void sincos2pi8(__m256 u, __m256 *c, __m256 *s) {
	__m256 v = _mm256_mul_ps(u, _mm256_set1_ps(4.0f));
	__m256 k = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 p = _mm256_mul_ps(_mm256_sub_ps(v, k), _mm256_set1_ps(1.5707963267948966f));
	__m256 p2 = _mm256_mul_ps(p, p);
	__m256 sp = _mm256_fmadd_ps(_mm256_set1_ps(-1.9515295891E-4f), p2, _mm256_set1_ps(8.3321608736E-3f));
	sp = _mm256_fmadd_ps(sp, p2, _mm256_set1_ps(-1.6666654611E-1f));
	sp = _mm256_fmadd_ps(_mm256_mul_ps(sp, p2), p, p);
	__m256 cp = _mm256_fmadd_ps(_mm256_set1_ps(2.443315711809948E-5f), p2, _mm256_set1_ps(-1.388731625493765E-3f));
	cp = _mm256_fmadd_ps(cp, p2, _mm256_set1_ps(4.166664568298827E-2f));
	cp = _mm256_fmadd_ps(_mm256_mul_ps(cp, p2), p2, _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), p2, _mm256_set1_ps(1.0f)));
	__m256i q = _mm256_and_si256(_mm256_cvtps_epi32(k), _mm256_set1_epi32(3));
	__m256 odd = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(q, _mm256_set1_epi32(1)), _mm256_set1_epi32(1)));
	// quadrant q: (cos, sin) = (c, s), (−s, c), (−c, −s), (s, −c)
	__m256 cc = _mm256_blendv_ps(cp, sp, odd), ss = _mm256_blendv_ps(sp, cp, odd);
	__m256i negc = _mm256_or_si256(_mm256_cmpeq_epi32(q, _mm256_set1_epi32(1)), _mm256_cmpeq_epi32(q, _mm256_set1_epi32(2)));
	__m256i negs = _mm256_or_si256(_mm256_cmpeq_epi32(q, _mm256_set1_epi32(2)), _mm256_cmpeq_epi32(q, _mm256_set1_epi32(3)));
	const __m256 sign = _mm256_set1_ps(-0.0f);
	*c = _mm256_xor_ps(cc, _mm256_and_ps(_mm256_castsi256_ps(negc), sign));
	*s = _mm256_xor_ps(ss, _mm256_and_ps(_mm256_castsi256_ps(negs), sign));
}

__attribute__((target("avx2,fma"))) static void normal_avx2(xoshiro *r, float *out, long n) {
	long i = 0;
	uint32_t a[8], b[8];
	for (; i + 16 <= n; i += 16) {
		for (int j = 0; j < 8; j++) { a[j] = next(r); b[j] = next(r); }
		__m256 u1 = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)a), 8)), _mm256_set1_ps(1.0f)), _mm256_set1_ps(1.0f / 16777216.0f));
		__m256 u2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(_mm256_loadu_si256((const __m256i *)b), 8)), _mm256_set1_ps(1.0f / 16777216.0f));
		__m256 rad = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), log8(u1)));
		__m256 c, s;
		sincos2pi8(u2, &c, &s);
		_mm256_storeu_ps(out + i, _mm256_mul_ps(rad, c));
		_mm256_storeu_ps(out + i + 8, _mm256_mul_ps(rad, s));
	}
	normal_scalar(r, out, i, n);
}

#endif

void jz_normal_f32(float *out, long n, unsigned long long key) {
	xoshiro r;
	seed(&r, key);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	if (jz_has_avx2_fma()) {
		normal_avx2(&r, out, n);
		return;
	}
#endif
	normal_scalar(&r, out, 0, n);
}
