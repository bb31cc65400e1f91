// Radiant kernels: the one macro that lets a function compile for both the host (g++) and the device (nvcc).
#pragma once

#if defined(__CUDACC__)
#define RADIANT_HD __host__ __device__ __forceinline__
#define RADIANT_DEVICE __device__
#else
#define RADIANT_HD inline
#define RADIANT_DEVICE
#endif

#include <cmath>
#include <cstdint>
#include <cstring>

namespace radiant {

constexpr float kInf = __builtin_huge_valf();
constexpr float kNaN = __builtin_nanf("");
constexpr float kPi = 3.14159265358979323846f;

template <typename T>
RADIANT_HD T min_(T a, T b) { return a < b ? a : b; }
template <typename T>
RADIANT_HD T max_(T a, T b) { return a > b ? a : b; }
template <typename T>
RADIANT_HD T clamp_(T x, T lo, T hi) { return x < lo ? lo : (x > hi ? hi : x); }
template <typename T>
RADIANT_HD void swap_(T& a, T& b) { T t = a; a = b; b = t; }

// The math shared by the scalar kernels and the CPU's lanes (lane.h) is written once, templated on its float type F:
// float here (host and device), LaneF there (kLanes paths at once). These are the float forms of the few operations
// such code spells differently from plain scalar code: a per-lane choice instead of `?:`, and overloadable sqrt/abs.
template <typename T>
struct nodeduce { using type = T; };
template <typename T>
using nodeduce_t = typename nodeduce<T>::type;  // a parameter that takes its type from the others (float -> F)

template <typename F>
struct lane_traits {
    using mask = bool;  // the type of F's comparisons
};
template <typename F>
using mask_t = typename lane_traits<F>::mask;

RADIANT_HD float select_(bool m, float a, float b) { return m ? a : b; }
RADIANT_HD int select_(bool m, int a, int b) { return m ? a : b; }
RADIANT_HD float sqrt_(float x) { return sqrtf(x); }
RADIANT_HD float abs_(float x) { return fabsf(x); }
RADIANT_HD float sin_(float x) { return sinf(x); }
RADIANT_HD float cos_(float x) { return cosf(x); }
RADIANT_HD float tan_(float x) { return tanf(x); }
// The same with the lanes that need the result (lane.h: the other lanes skip the call and give 0); one path always
// needs it.
RADIANT_HD float sin_(float x, bool) { return sinf(x); }
RADIANT_HD float cos_(float x, bool) { return cosf(x); }
RADIANT_HD float tan_(float x, bool) { return tanf(x); }
RADIANT_HD float floor_(float x) { return floorf(x); }
// The bits of a float and back (approx.h's exponent arithmetic).
RADIANT_HD int32_t float_bits_(float x) {
#if defined(__CUDA_ARCH__)
    return __float_as_int(x);
#else
    int32_t i;
    std::memcpy(&i, &x, sizeof(i));
    return i;
#endif
}
RADIANT_HD float bits_float_(int32_t i) {
#if defined(__CUDA_ARCH__)
    return __int_as_float(i);
#else
    float x;
    std::memcpy(&x, &i, sizeof(x));
    return x;
#endif
}
// 2^n for an integer-valued n in [-127, 127] (-127 gives 0), built in the exponent field.
RADIANT_HD float exp2i_(float n) { return bits_float_(((int32_t)n + 127) << 23); }
// x = m 2^e with m in [0.5, 1), for positive normal x (no checks: zeros, denormals, infinities and NaNs give some
// m and e).
RADIANT_HD float frexp_(float x, float& e) {
    const int32_t i = float_bits_(x);
    e = (float)(((i >> 23) & 0xff) - 126);
    return bits_float_((i & 0x007fffff) | 0x3f000000);
}
RADIANT_HD float copysign_(float x, float y) { return copysignf(x, y); }
RADIANT_HD bool signbit_(float x) { return copysignf(1.f, x) < 0.f; }  // set for -0 and negative NaNs too
RADIANT_HD bool none(bool m) { return !m; }  // lane.h: none(LaneM), no lane set
RADIANT_HD bool any(bool m) { return m; }    // lane.h: any(LaneM), some lane set
RADIANT_HD bool all_(bool m) { return m; }   // lane.h: all_(LaneM), every lane set

}  // namespace radiant
