// Radiant kernels: short polynomial forms of libm functions on the path tracer's hot paths (a few ulp; libm's
// scalar atan2f is a large share of an environment-lit render), for the host and the device.
#pragma once
#include "common.h"

#include <cmath>

namespace radiant {

// sin and cos of |x| <= pi/4 by Cephes' sinf/cosf minimax polynomials (about 1 ulp there; no range reduction).
template <typename F>
RADIANT_HD void sincos_quarter(F x, F& s, F& c) {
    F z = x * x;
    s = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * x + x;
    c = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z - 0.5f * z + 1.f;
}

// atan2(y, x) within a few ulp: atan of min / max in [0, 1] by SLEEF's atan2kf polynomial, then the octant.
// Signed zeros and the axes follow atan2 (atan2(+-0, -x) = +-pi); NaN in, NaN out.
// Templated on the float type (common.h): float for the kernels, LaneF for the CPU's lanes (same result per lane).
template <typename F>
RADIANT_HD F atan2_approx(F y, F x) {
    F ax = abs_(x), ay = abs_(y);
    mask_t<F> x_major = ax > ay;
    F hi = select_(x_major, ax, ay), lo = select_(x_major, ay, ax);
    F s = select_(hi > 0.f, lo / hi, select_(hi == hi, F(0.f), hi));
    F t = s * s;
    F u(0.00282363896258175373077393f);
    u = u * t - 0.0159569028764963150024414f;
    u = u * t + 0.0425049886107444763183594f;
    u = u * t - 0.0748900920152664184570312f;
    u = u * t + 0.106347933411598205566406f;
    u = u * t - 0.142027363181114196777344f;
    u = u * t + 0.199926957488059997558594f;
    u = u * t - 0.333331018686294555664062f;
    F r = u * t * s + s;
    r = select_(ay > ax, 1.57079632679489661923f - r, r);
    r = select_(signbit_(x), 3.14159265358979323846f - r, r);
    return copysign_(r, y);
}

}  // namespace radiant
