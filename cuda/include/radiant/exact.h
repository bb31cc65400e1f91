// Radiant kernels: float multiply/add that nvcc may not fuse into FMA, so device results match the host and torch.
#pragma once
#include "common.h"
#include "vec.h"

namespace radiant {

// The host build uses -ffp-contract=off; nvcc contracts a * b + c by default (--fmad=true), which changes the
// last bits. The _rn intrinsics are never contracted (CUDA C++ Programming Guide, "Floating-Point Standard").
RADIANT_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fmul_rn(a, b);
#else
    return a * b;
#endif
}

RADIANT_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
    return __fadd_rn(a, b);
#else
    return a + b;
#endif
}

// o + t * d per component, rounded after the product as torch's `o + t * d`.
RADIANT_HD Vec3 ray_point(const Vec3& o, float t, const Vec3& d) {
    return Vec3(add_rn(o.x, mul_rn(t, d.x)), add_rn(o.y, mul_rn(t, d.y)), add_rn(o.z, mul_rn(t, d.z)));
}

// |d| as length() in vec.h, (x*x + y*y) + z*z then sqrtf (IEEE on the device unless -prec-sqrt=false).
RADIANT_HD float length_rn(const Vec3& d) {
    return sqrtf(add_rn(add_rn(mul_rn(d.x, d.x), mul_rn(d.y, d.y)), mul_rn(d.z, d.z)));
}

}  // namespace radiant
