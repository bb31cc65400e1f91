// Radiant kernels (CPU only): LaneF, kLanes floats processed at once (16: one AVX-512 register; 8 without AVX-512), and
// LaneM, its comparisons' per-lane mask. The shared headers' math templated on a float type F (vec.h Vec3T, frame.h
// FrameT, warp.h, microfacet.h MicrofacetT, fresnel.h; common.h) runs kLanes paths in lockstep with F = LaneF and
// one path with F = float (the CUDA kernels and the scalar CPU loops), from the same source.
//
// Lane for lane the arithmetic is the scalar code's: IEEE +, -, *, / and sqrt (no contraction: the build has
// -ffp-contract=off), `select_` where the scalar code has `?:`, and the transcendental functions either through the
// scalar libm call of each lane (sin_, tan_) or as approx.h's polynomials, written once for both (exp_approx), so
// LaneF results are bit-identical to float ones.
#pragma once
#if defined(__CUDACC__)
#error "lane.h is for the CPU build only"
#endif
#include <cmath>
#include <cstdint>
#include <cstring>
#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#include "common.h"

namespace radiant {

// 16 lanes where AVX-512 holds them in one register; 8 (one AVX2 register) elsewhere: wider lanes split over AVX2
// registers measured slower than the scalar code (tools/lane_stage.cpp). A build may set the width
// (-DRADIANT_LANES=8 or 16): 8 lanes on an AVX-512 CPU take the AVX2 forms below; 16 on an AVX2 CPU, the pair of
// AVX2 registers' (GCC splits the vectors) and the plain loops. RADIANT_LANE_ISA: whose intrinsics lane.h uses,
// 512 (AVX-512, 16 lanes), 256 (AVX, 8 lanes) or 0 (none: generic vector code and loops).
#if !defined(RADIANT_LANES)
#if defined(__AVX512F__)
#define RADIANT_LANES 16
#else
#define RADIANT_LANES 8
#endif
#endif
#if RADIANT_LANES != 8 && RADIANT_LANES != 16
#error "RADIANT_LANES: 8 or 16"
#endif
constexpr int kLanes = RADIANT_LANES;
#if defined(__AVX512F__) && RADIANT_LANES == 16
#define RADIANT_LANE_ISA 512
#elif defined(__AVX__) && RADIANT_LANES == 8
#define RADIANT_LANE_ISA 256
#else
#define RADIANT_LANE_ISA 0
#endif

typedef float lane_vf __attribute__((vector_size(4 * kLanes)));
typedef int32_t lane_vi __attribute__((vector_size(4 * kLanes)));

struct LaneM {
    lane_vi v;  // all ones (-1) where true, 0 where false
    LaneM() : v(lane_vi{} ) {}
    explicit LaneM(lane_vi v_) : v(v_) {}
    LaneM(bool b) : v(lane_vi{} - (int32_t)b) {}
    bool operator[](int i) const { return v[i] != 0; }
    void set(int i, bool b) { v[i] = b ? -1 : 0; }
};

inline LaneM operator&(LaneM a, LaneM b) { return LaneM(a.v & b.v); }
inline LaneM operator|(LaneM a, LaneM b) { return LaneM(a.v | b.v); }
inline LaneM operator^(LaneM a, LaneM b) { return LaneM(a.v ^ b.v); }
inline LaneM operator!(LaneM a) { return LaneM(~a.v); }
inline LaneM operator~(LaneM a) { return LaneM(~a.v); }
inline LaneM andnot(LaneM a, LaneM b) { return LaneM(a.v & ~b.v); }  // a and not b

// Lane i's bit at bit i.
inline uint32_t bits(LaneM m) {
#if RADIANT_LANE_ISA == 512
    return (uint32_t)_mm512_movepi32_mask((__m512i)m.v);
#elif RADIANT_LANE_ISA == 256
    return (uint32_t)_mm256_movemask_ps((__m256)m.v);  // the sign bits (GCC made the loop below 8 extracts)
#else
    uint32_t r = 0;
    for (int i = 0; i < kLanes; ++i) r |= (uint32_t)(m.v[i] != 0) << i;
    return r;
#endif
}
// The mask whose lane i is bit i of b (bits' inverse).
inline LaneM lanes_of(uint32_t b) {
    lane_vi bit;
    for (int i = 0; i < kLanes; ++i) bit[i] = 1 << i;
    return LaneM(((lane_vi{} + (int32_t)b) & bit) != 0);
}
inline bool any(LaneM m) { return bits(m) != 0; }
inline bool all(LaneM m) { return bits(m) == (1u << kLanes) - 1u; }
inline bool none(LaneM m) { return bits(m) == 0; }
inline bool all_(LaneM m) { return all(m); }  // common.h's spelling (all_(bool) for the float code)

struct LaneF {
    lane_vf v;
    LaneF() : v(lane_vf{}) {}
    LaneF(float s) : v(lane_vf{} + s) {}  // NOLINT: broadcast, so scalar constants mix with lanes
    explicit LaneF(lane_vf v_) : v(v_) {}
    float operator[](int i) const { return v[i]; }
    void set(int i, float x) { v[i] = x; }
    static LaneF load(const float* p) {
        LaneF r;
        std::memcpy(&r.v, p, sizeof(r.v));
        return r;
    }
    void store(float* p) const { std::memcpy(p, &v, sizeof(v)); }
};

template <>
struct lane_traits<LaneF> {
    using mask = LaneM;
};

inline LaneF operator+(LaneF a, LaneF b) { return LaneF(a.v + b.v); }
inline LaneF operator-(LaneF a, LaneF b) { return LaneF(a.v - b.v); }
inline LaneF operator*(LaneF a, LaneF b) { return LaneF(a.v * b.v); }
inline LaneF operator/(LaneF a, LaneF b) { return LaneF(a.v / b.v); }
inline LaneF operator-(LaneF a) { return LaneF(-a.v); }
inline LaneF& operator+=(LaneF& a, LaneF b) { a.v += b.v; return a; }
inline LaneF& operator-=(LaneF& a, LaneF b) { a.v -= b.v; return a; }
inline LaneF& operator*=(LaneF& a, LaneF b) { a.v *= b.v; return a; }
inline LaneF& operator/=(LaneF& a, LaneF b) { a.v /= b.v; return a; }
inline LaneM operator<(LaneF a, LaneF b) { return LaneM(a.v < b.v); }
inline LaneM operator<=(LaneF a, LaneF b) { return LaneM(a.v <= b.v); }
inline LaneM operator>(LaneF a, LaneF b) { return LaneM(a.v > b.v); }
inline LaneM operator>=(LaneF a, LaneF b) { return LaneM(a.v >= b.v); }
inline LaneM operator==(LaneF a, LaneF b) { return LaneM(a.v == b.v); }
inline LaneM operator!=(LaneF a, LaneF b) { return LaneM(a.v != b.v); }

// The lane forms of common.h's select_ / min_ / max_ / clamp_ / sqrt_ / abs_ / sin_ / cos_ / tan_ (same
// per-lane results; min_ and max_ keep the scalar `a < b ? a : b` order, so NaN arguments pick the same operand).
inline LaneF select_(LaneM m, LaneF a, LaneF b) { return LaneF(m.v ? a.v : b.v); }
inline LaneM select_(LaneM m, LaneM a, LaneM b) { return LaneM(m.v ? a.v : b.v); }
inline LaneF min_(LaneF a, LaneF b) { return select_(a < b, a, b); }
inline LaneF max_(LaneF a, LaneF b) { return select_(a > b, a, b); }
inline LaneF clamp_(LaneF x, LaneF lo, LaneF hi) { return select_(x < lo, lo, select_(x > hi, hi, x)); }
inline LaneF abs_(LaneF x) { return LaneF((lane_vf)((lane_vi)x.v & 0x7fffffff)); }
inline LaneF sqrt_(LaneF x) {
#if RADIANT_LANE_ISA == 512
    return LaneF((lane_vf)_mm512_sqrt_ps((__m512)x.v));
#elif RADIANT_LANE_ISA == 256
    return LaneF((lane_vf)_mm256_sqrt_ps((__m256)x.v));
#else
    LaneF r;
    for (int i = 0; i < kLanes; ++i) r.v[i] = sqrtf(x.v[i]);
    return r;
#endif
}
inline LaneF floor_(LaneF x) {
#if RADIANT_LANE_ISA == 512
    return LaneF((lane_vf)_mm512_roundscale_ps((__m512)x.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
#elif RADIANT_LANE_ISA == 256
    return LaneF((lane_vf)_mm256_round_ps((__m256)x.v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC));
#else
    LaneF r;
    for (int i = 0; i < kLanes; ++i) r.v[i] = floorf(x.v[i]);
    return r;
#endif
}
inline LaneF copysign_(LaneF x, LaneF y) {
    return LaneF((lane_vf)(((lane_vi)x.v & 0x7fffffff) | ((lane_vi)y.v & (int32_t)0x80000000)));
}
inline LaneM signbit_(LaneF x) { return LaneM((lane_vi)x.v < 0); }
// common.h's exp2i_ / frexp_ (approx.h's exponent arithmetic), lane by lane the same bits.
inline LaneF exp2i_(LaneF n) { return LaneF((lane_vf)((__builtin_convertvector(n.v, lane_vi) + 127) << 23)); }
inline LaneF frexp_(LaneF x, LaneF& e) {
    const lane_vi i = (lane_vi)x.v;
    e = LaneF(__builtin_convertvector(((i >> 23) & 0xff) - 126, lane_vf));
    return LaneF((lane_vf)((i & 0x007fffff) | 0x3f000000));
}
// Table lookups in lanes: lane i = base[index[i]] on the lanes of m, 0 on the others (whose index is not used and
// whose memory is not read). One hardware gather (AVX2 / AVX-512) instead of kLanes scalar loads, stores into a row
// and a vector load back. Indices are int32 element offsets: tables up to 2^31 elements.
inline LaneF gather_(const float* base, lane_vi index, LaneM m) {
#if RADIANT_LANE_ISA == 512
    return LaneF((lane_vf)_mm512_mask_i32gather_ps(_mm512_setzero_ps(), (__mmask16)bits(m), (__m512i)index, base, 4));
#elif RADIANT_LANE_ISA == 256 && defined(__AVX2__)
    return LaneF((lane_vf)_mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, (__m256i)index, (__m256)m.v, 4));
#else
    LaneF r(0.f);
    for (int i = 0; i < kLanes; ++i)
        if (m.v[i]) r.v[i] = base[index[i]];
    return r;
#endif
}
inline lane_vi gather_(const int32_t* base, lane_vi index, LaneM m) {
#if RADIANT_LANE_ISA == 512
    return (lane_vi)_mm512_mask_i32gather_epi32(_mm512_setzero_si512(), (__mmask16)bits(m), (__m512i)index, base, 4);
#elif RADIANT_LANE_ISA == 256 && defined(__AVX2__)
    return (lane_vi)_mm256_mask_i32gather_epi32(_mm256_setzero_si256(), (const int*)base, (__m256i)index,
                                                (__m256i)m.v, 4);
#else
    lane_vi r{};
    for (int i = 0; i < kLanes; ++i)
        if (m.v[i]) r[i] = base[index[i]];
    return r;
#endif
}

// Transcendental functions: each lane's scalar libm call (bit-identical to the float code).
// With a mask: the call on the lanes of m only, 0 on the others (whose inputs may be anything: no slow libm paths
// for their NaNs and infinities, no calls for lanes that do not use the result).
#define RADIANT_LANE_LIBM(name, fn)                                 \
    inline LaneF name(LaneF x) {                                    \
        LaneF r;                                                    \
        for (int i = 0; i < kLanes; ++i) r.v[i] = fn(x.v[i]);       \
        return r;                                                   \
    }                                                               \
    inline LaneF name(LaneF x, LaneM m) {                           \
        LaneF r(0.f);                                               \
        for (uint32_t b = bits(m); b; b &= b - 1) {                 \
            const int i = __builtin_ctz(b);                         \
            r.v[i] = fn(x.v[i]);                                    \
        }                                                           \
        return r;                                                   \
    }
RADIANT_LANE_LIBM(sin_, sinf)
RADIANT_LANE_LIBM(cos_, cosf)
RADIANT_LANE_LIBM(tan_, tanf)
#undef RADIANT_LANE_LIBM

// path.h search_cdf for the lanes of m: lane i's first index j in [0, n) with cdf[offset[i] + j] > u[i], clamped
// to n - 1, into out[i] (the other lanes get 0). The lanes' searches run in lanes, step by step: branch-free halving
// of [base, base + len], the interval that holds the answer, by one gather of all lanes' probes (no branch depends
// on the data; bisection one lane at a time stalls on each load and mispredicts about every other step). The same
// index as search_cdf's bisection on a non-decreasing cdf. Offsets are int32 element offsets (gather_).
inline lane_vi search_cdf_lanes(const float* cdf, lane_vi offset, int32_t n, LaneF u, LaneM m) {
    if (n <= 0) return m.v & (n - 1);
    lane_vi base{};
    for (int32_t len = n; len > 1;) {
        const int32_t half = len >> 1;
        const LaneM up = !(gather_(cdf, offset + base + half, m) > u);
        base += up.v & half;
        len -= half;
    }
    const lane_vi r = base + ((!(gather_(cdf, offset + base, m) > u)).v & 1);
    return m.v & (r < n - 1 ? r : lane_vi{} + (n - 1));
}

// search_cdf_lanes for a short cdf common to the lanes (cdf[0, n), n >= 1): on a non-decreasing cdf the first index
// with cdf[j] > u is the count of the entries <= u, taken in lanes (n compares of all lanes, no per-lane loads; for
// an area light's few triangles).
inline lane_vi search_cdf_short(const float* cdf, int32_t n, LaneF u, LaneM m) {
    lane_vi count{};
    for (int32_t j = 0; j < n; ++j) count -= (LaneF(cdf[j]) <= u).v;  // + 1 where cdf[j] <= u
    return m.v & (count < n - 1 ? count : lane_vi{} + (n - 1));
}

}  // namespace radiant
