// Radiant kernels: the one macro that lets a function compile for both the host (g++) and the device (nvcc).
#pragma once

#if defined(__CUDACC__)
#define RADIANT_HD __host__ __device__ __forceinline__
#define RADIANT_DEVICE __device__
#else
#define RADIANT_HD inline
#define RADIANT_DEVICE
#endif

#include <cstdint>

namespace radiant {

constexpr float kInf = __builtin_huge_valf();
constexpr float kPi = 3.14159265358979323846f;

template <typename T>
RADIANT_HD T min_(T a, T b) { return a < b ? a : b; }
template <typename T>
RADIANT_HD T max_(T a, T b) { return a > b ? a : b; }
template <typename T>
RADIANT_HD T clamp_(T x, T lo, T hi) { return x < lo ? lo : (x > hi ? hi : x); }
template <typename T>
RADIANT_HD void swap_(T& a, T& b) { T t = a; a = b; b = t; }

}  // namespace radiant
