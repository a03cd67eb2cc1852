// Gaussian draws for the Langevin noise (see kernels.go): an eight-lane
// xoshiro128** stream seeded from a 64-bit key by splitmix64, and the
// Box-Muller transform, eight pairs per block of 16 normals. The AVX2 path
// keeps the eight generators in vector registers; the scalar path emulates the
// lanes one by one and gives the same uniforms in the same order.
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "kernels.h"

// xo8 is the state of the eight lanes: s[k][j] is word k of lane j.
typedef struct { uint32_t s[4][8]; } xo8;

static uint64_t splitmix64(uint64_t *x) {
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

// seed8 gives lane j the splitmix64 outputs 2j and 2j+1 (low word first); an
// all-zero lane state becomes s[0] = 1.
static void seed8(xo8 *r, uint64_t key) {
	for (int j = 0; j < 8; j++) {
		uint64_t a = splitmix64(&key), b = splitmix64(&key);
		r->s[0][j] = (uint32_t)a; r->s[1][j] = (uint32_t)(a >> 32);
		r->s[2][j] = (uint32_t)b; r->s[3][j] = (uint32_t)(b >> 32);
		if (!(r->s[0][j] | r->s[1][j] | r->s[2][j] | r->s[3][j])) r->s[0][j] = 1;
	}
}

static inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

// next8_scalar advances every lane by one xoshiro128** step, lane j's output
// in out[j].
static inline void next8_scalar(xo8 *r, uint32_t out[8]) {
	for (int j = 0; j < 8; j++) {
		uint32_t s0 = r->s[0][j], s1 = r->s[1][j], s2 = r->s[2][j], s3 = r->s[3][j];
		out[j] = rotl(s1 * 5, 7) * 9;
		uint32_t t = s1 << 9;
		s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3;
		s2 ^= t; s3 = rotl(s3, 11);
		r->s[0][j] = s0; r->s[1][j] = s1; r->s[2][j] = s2; r->s[3][j] = s3;
	}
}

// u1 in (0, 1] and u2 in [0, 1), 24-bit resolution.
static inline float unit_open0(uint32_t v) { return ((float)(v >> 8) + 1.0f) * (1.0f / 16777216.0f); }
static inline float unit_closed0(uint32_t v) { return (float)(v >> 8) * (1.0f / 16777216.0f); }

// block_scalar writes the next 16 normals: z[j] = rad_j·cos θ_j and
// z[8+j] = rad_j·sin θ_j, evaluated in double with libm.
static void block_scalar(xo8 *r, float z[16]) {
	uint32_t a[8], b[8];
	next8_scalar(r, a);
	next8_scalar(r, b);
	for (int j = 0; j < 8; j++) {
		double rad = sqrt(-2.0 * log((double)unit_open0(a[j])));
		double th = 6.283185307179586 * (double)unit_closed0(b[j]);
		z[j] = (float)(rad * cos(th));
		z[j + 8] = (float)(rad * sin(th));
	}
}

static void normal_scalar(xo8 *r, float *out, long n) {
	float z[16];
	for (long i = 0; i < n; i += 16) {
		block_scalar(r, z);
		memcpy(out + i, z, (size_t)(n - i < 16 ? n - i : 16) * sizeof(float));
	}
}

static void ula_scalar(xo8 *r, float *x, const float *g, long n, float h, float s) {
	float z[16];
	for (long i = 0; i < n; i += 16) {
		block_scalar(r, z);
		for (long j = 0; j < 16 && i + j < n; j++) x[i + j] = x[i + j] - h * g[i + j] + s * z[j];
	}
}

static void stream_scalar(xo8 *r, uint32_t *out, long blocks) {
	for (long i = 0; i < blocks; i++) {
		next8_scalar(r, out + 16 * i);
		next8_scalar(r, out + 16 * i + 8);
	}
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define JZ_AVX2 1
#define AVX2 __attribute__((target("avx2,fma")))

// xo8v is xo8 in registers: s[k] holds word k of the eight lanes.
typedef struct { __m256i s[4]; } xo8v;

AVX2 static inline xo8v load8(const xo8 *r) {
	xo8v v;
	for (int k = 0; k < 4; k++) v.s[k] = _mm256_loadu_si256((const __m256i *)r->s[k]);
	return v;
}

AVX2 static inline void store8(xo8 *r, const xo8v *v) {
	for (int k = 0; k < 4; k++) _mm256_storeu_si256((__m256i *)r->s[k], v->s[k]);
}

AVX2 static inline __m256i rotl8(__m256i x, int k) {
	return _mm256_or_si256(_mm256_slli_epi32(x, k), _mm256_srli_epi32(x, 32 - k));
}

// next8 is next8_scalar on all lanes at once; ×5 and ×9 are shift-and-adds.
AVX2 static inline __m256i next8(xo8v *r) {
	__m256i s0 = r->s[0], s1 = r->s[1], s2 = r->s[2], s3 = r->s[3];
	__m256i rot = rotl8(_mm256_add_epi32(s1, _mm256_slli_epi32(s1, 2)), 7);
	__m256i out = _mm256_add_epi32(rot, _mm256_slli_epi32(rot, 3));
	__m256i t = _mm256_slli_epi32(s1, 9);
	s2 = _mm256_xor_si256(s2, s0);
	s3 = _mm256_xor_si256(s3, s1);
	s1 = _mm256_xor_si256(s1, s2);
	s0 = _mm256_xor_si256(s0, s3);
	s2 = _mm256_xor_si256(s2, t);
	s3 = rotl8(s3, 11);
	r->s[0] = s0; r->s[1] = s1; r->s[2] = s2; r->s[3] = s3;
	return out;
}

// −2·ln(k·2^−24) for integers k in [1, 2^24]: Cephes logf with the mantissa
// reduced in integer arithmetic, and the polynomial by Estrin's scheme, both
// to keep the dependency chain short.
AVX2 static inline __m256 neg2log8(__m256i k) {
	// k·2^−24 = 2^e·(1 + m) with 1 + m in [√½, √2): subtracting the bits of
	// √½ from those of (float)k, and 24 from its exponent, leaves e in the top
	// bits and 1 + m − √½ in the mantissa bits.
	const int sqrthalf = 0x3f3504f3;
	__m256i t = _mm256_sub_epi32(_mm256_castps_si256(_mm256_cvtepi32_ps(k)), _mm256_set1_epi32(sqrthalf + (24 << 23)));
	__m256 e = _mm256_cvtepi32_ps(_mm256_srai_epi32(t, 23));
	__m256i mi = _mm256_add_epi32(_mm256_and_si256(t, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(sqrthalf));
	__m256 m = _mm256_sub_ps(_mm256_castsi256_ps(mi), _mm256_set1_ps(1.0f));
	__m256 z = _mm256_mul_ps(m, m), z4 = _mm256_mul_ps(z, z), mz = _mm256_mul_ps(m, z);
	// P(m) of Cephes logf, times −2
	__m256 q0 = _mm256_fmadd_ps(_mm256_set1_ps(-2 * -2.4999993993E-1f), m, _mm256_set1_ps(-2 * 3.3333331174E-1f));
	__m256 q1 = _mm256_fmadd_ps(_mm256_set1_ps(-2 * -1.6668057665E-1f), m, _mm256_set1_ps(-2 * 2.0000714765E-1f));
	__m256 q2 = _mm256_fmadd_ps(_mm256_set1_ps(-2 * -1.2420140846E-1f), m, _mm256_set1_ps(-2 * 1.4249322787E-1f));
	__m256 q3 = _mm256_fmadd_ps(_mm256_set1_ps(-2 * -1.1514610310E-1f), m, _mm256_set1_ps(-2 * 1.1676998740E-1f));
	__m256 r0 = _mm256_fmadd_ps(q1, z, q0), r1 = _mm256_fmadd_ps(q3, z, q2);
	__m256 p = _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(-2 * 7.0376836292E-2f), z4, r1), z4, r0);
	// ln(1 + m) = m − m²/2 + m³·P(m), and ln 2^e = e·ln 2
	__m256 y = _mm256_fmadd_ps(mz, p, _mm256_fmadd_ps(m, _mm256_set1_ps(-2.0f), z));
	return _mm256_fmadd_ps(e, _mm256_set1_ps(-2 * 0.693147180559945f), y);
}

// cos and sin of 2π·b·2^−24 for integers b in [0, 2^24): quarter-turn
// reduction in integer arithmetic, Cephes polynomials on [−π/4, π/4].
AVX2 static inline void sincos2pi8(__m256i b, __m256 *c, __m256 *s) {
	// k = round(b / 2^22) is the nearest quarter turn, f = b − k·2^22
	__m256i k = _mm256_srli_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(1 << 21)), 22);
	__m256i f = _mm256_sub_epi32(b, _mm256_slli_epi32(k, 22));
	__m256 p = _mm256_mul_ps(_mm256_cvtepi32_ps(f), _mm256_set1_ps(1.5707963267948966f / 4194304.0f));
	__m256 p2 = _mm256_mul_ps(p, p);
	__m256 sp = _mm256_fmadd_ps(_mm256_set1_ps(-1.9515295891E-4f), p2, _mm256_set1_ps(8.3321608736E-3f));
	sp = _mm256_fmadd_ps(sp, p2, _mm256_set1_ps(-1.6666654611E-1f));
	sp = _mm256_fmadd_ps(_mm256_mul_ps(sp, p2), p, p);
	__m256 cp = _mm256_fmadd_ps(_mm256_set1_ps(2.443315711809948E-5f), p2, _mm256_set1_ps(-1.388731625493765E-3f));
	cp = _mm256_fmadd_ps(cp, p2, _mm256_set1_ps(4.166664568298827E-2f));
	cp = _mm256_fmadd_ps(_mm256_mul_ps(cp, p2), p2, _mm256_fnmadd_ps(_mm256_set1_ps(0.5f), p2, _mm256_set1_ps(1.0f)));
	// quadrant k mod 4: (cos, sin) = (c, s), (−s, c), (−c, −s), (s, −c); the
	// blend takes its mask from bit 0 of k moved to the sign bit, and the
	// sign flips are bit 1 of k + 1 (cos) and of k (sin).
	__m256 odd = _mm256_castsi256_ps(_mm256_slli_epi32(k, 31));
	__m256 cc = _mm256_blendv_ps(cp, sp, odd), ss = _mm256_blendv_ps(sp, cp, odd);
	const __m256i two = _mm256_set1_epi32(2);
	__m256i negc = _mm256_slli_epi32(_mm256_and_si256(_mm256_add_epi32(k, _mm256_set1_epi32(1)), two), 30);
	__m256i negs = _mm256_slli_epi32(_mm256_and_si256(k, two), 30);
	*c = _mm256_xor_ps(cc, _mm256_castsi256_ps(negc));
	*s = _mm256_xor_ps(ss, _mm256_castsi256_ps(negs));
}

// block8 draws the next 16 normals: rad·cos in *c and rad·sin in *s, each
// multiplied by scale. The uniforms are u1 = (a + 1)·2^−24 and u2 = b·2^−24
// for the top 24 bits a and b of the two draws.
AVX2 static inline void block8(xo8v *r, __m256 scale, __m256 *c, __m256 *s) {
	__m256i a = _mm256_srli_epi32(next8(r), 8), b = _mm256_srli_epi32(next8(r), 8);
	__m256 rad = _mm256_mul_ps(_mm256_sqrt_ps(neg2log8(_mm256_add_epi32(a, _mm256_set1_epi32(1)))), scale);
	__m256 cs, sn;
	sincos2pi8(b, &cs, &sn);
	*c = _mm256_mul_ps(rad, cs);
	*s = _mm256_mul_ps(rad, sn);
}

AVX2 static void normal_avx2(xo8 *st, float *out, long n) {
	xo8v r = load8(st);
	const __m256 one = _mm256_set1_ps(1.0f);
	__m256 c, s;
	long i = 0;
	for (; i + 16 <= n; i += 16) {
		block8(&r, one, &c, &s);
		_mm256_storeu_ps(out + i, c);
		_mm256_storeu_ps(out + i + 8, s);
	}
	if (i < n) {
		float z[16];
		block8(&r, one, &c, &s);
		_mm256_storeu_ps(z, c);
		_mm256_storeu_ps(z + 8, s);
		memcpy(out + i, z, (size_t)(n - i) * sizeof(float));
	}
	store8(st, &r);
}

// ula_avx2 folds the noise scale s into the Box-Muller radius, so
// x − h·g + s·z is two FMAs per element.
AVX2 static void ula_avx2(xo8 *st, float *x, const float *g, long n, float h, float s) {
	xo8v r = load8(st);
	const __m256 hv = _mm256_set1_ps(h), sv = _mm256_set1_ps(s);
	__m256 c, sn;
	long i = 0;
	for (; i + 16 <= n; i += 16) {
		block8(&r, sv, &c, &sn);
		__m256 x0 = _mm256_fnmadd_ps(hv, _mm256_loadu_ps(g + i), _mm256_loadu_ps(x + i));
		__m256 x1 = _mm256_fnmadd_ps(hv, _mm256_loadu_ps(g + i + 8), _mm256_loadu_ps(x + i + 8));
		_mm256_storeu_ps(x + i, _mm256_add_ps(x0, c));
		_mm256_storeu_ps(x + i + 8, _mm256_add_ps(x1, sn));
	}
	if (i < n) {
		float z[16];
		block8(&r, sv, &c, &sn);
		_mm256_storeu_ps(z, c);
		_mm256_storeu_ps(z + 8, sn);
		for (long j = 0; i + j < n; j++) x[i + j] = (x[i + j] - h * g[i + j]) + z[j];
	}
	store8(st, &r);
}

AVX2 static void stream_avx2(xo8 *st, uint32_t *out, long blocks) {
	xo8v r = load8(st);
	for (long i = 0; i < blocks; i++) {
		_mm256_storeu_si256((__m256i *)(out + 16 * i), next8(&r));
		_mm256_storeu_si256((__m256i *)(out + 16 * i + 8), next8(&r));
	}
	store8(st, &r);
}

#endif

void jz_normal_f32(float *out, long n, unsigned long long key) {
	xo8 r;
	seed8(&r, key);
#ifdef JZ_AVX2
	if (jz_use_avx2()) {
		normal_avx2(&r, out, n);
		return;
	}
#endif
	normal_scalar(&r, out, n);
}

void jz_ula_f32(float *x, const float *g, long n, float h, float s, unsigned long long key) {
	xo8 r;
	seed8(&r, key);
#ifdef JZ_AVX2
	if (jz_use_avx2()) {
		ula_avx2(&r, x, g, n, h, s);
		return;
	}
#endif
	ula_scalar(&r, x, g, n, h, s);
}

void jz_stream_u32(unsigned int *out, long blocks, unsigned long long key) {
	xo8 r;
	seed8(&r, key);
#ifdef JZ_AVX2
	if (jz_use_avx2()) {
		stream_avx2(&r, out, blocks);
		return;
	}
#endif
	stream_scalar(&r, out, blocks);
}
