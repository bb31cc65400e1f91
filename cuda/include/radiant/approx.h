// Radiant kernels: short polynomial forms of libm functions on the path tracer's hot paths (a few ulp; libm's
// scalar atan2f is a large share of an environment-lit render, expf / logf / erff of a Beckmann-lit one), for the
// host and the device. Templated on the float type (common.h): float for the kernels, LaneF for the CPU's lanes
// (lane.h), which then run them in SIMD registers instead of one libm call per lane, with the same result per lane.
#pragma once
#include "common.h"

#include <cmath>

namespace radiant {

// The polynomial p x^n + c1 x^(n-1) + ... + cn by Horner's rule, p = p x + c per coefficient (highest power first).
template <typename F>
RADIANT_HD F horner_(F, F p) { return p; }
template <typename F, typename... C>
RADIANT_HD F horner_(F x, F p, float c, C... rest) { return horner_(x, p * x + c, rest...); }

// sin and cos of |x| <= pi/4 by Cephes' sinf/cosf minimax polynomials (about 1 ulp there; no range reduction).
template <typename F>
RADIANT_HD void sincos_quarter(F x, F& s, F& c) {
    F z = x * x;
    s = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * x + x;
    c = ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z - 0.5f * z + 1.f;
}

// sin and cos of x (|x| <= 8192: Cephes' range of its three-part pi / 2), within about 2 ulp: x = q pi/2 + r with
// |r| <= pi/4, sincos_quarter(r), then the quadrant q mod 4 (in floats, so the same code serves lanes).
template <typename F>
RADIANT_HD void sincos_approx(F x, F& s, F& c) {
    const F q = floor_(x * 0.636619772367581343f + 0.5f);
    const F r = ((x - q * 1.5703125f) - q * 4.837512969970703125e-4f) - q * 7.54978995489188216e-8f;
    F sr, cr;
    sincos_quarter(r, sr, cr);
    const F quadrant = q - 4.f * floor_(q * 0.25f);  // 0, 1, 2 or 3
    const mask_t<F> swap = (quadrant == 1.f) | (quadrant == 3.f);
    s = select_(swap, cr, sr);
    c = select_(swap, sr, cr);
    s = select_(quadrant >= 2.f, -s, s);
    c = select_((quadrant == 1.f) | (quadrant == 2.f), -c, c);
}

// acos(x) for |x| <= 1 within about 2 ulp, Cephes' acosf: asin(a) = a + a z P(z) (z = a^2, degree-4 minimax P) for
// |a| <= 1/2; beyond, acos(|x|) = 2 asin(sqrt((1 - |x|) / 2)) and acos(-|x|) = pi - acos(|x|). NaN in, NaN out.
template <typename F>
RADIANT_HD F acos_approx(F x) {
    const F a = abs_(x);
    const mask_t<F> big = a > 0.5f;
    const F z = select_(big, 0.5f * (1.f - a), a * a);
    const F s = select_(big, sqrt_(z), a);
    const F p = horner_(z, F(4.2163199048e-2f), 2.4181311049e-2f, 4.5470025998e-2f, 7.4953002686e-2f,
                        1.6666752422e-1f);
    const F asin_s = p * z * s + s;
    const F far = 2.f * asin_s;
    return select_(big, select_(x < 0.f, 3.14159265358979323846f - far, far),
                   1.57079632679489661923f - copysign_(asin_s, x));
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
    F u = horner_(t, F(0.00282363896258175373077393f), -0.0159569028764963150024414f, 0.0425049886107444763183594f,
                  -0.0748900920152664184570312f, 0.106347933411598205566406f, -0.142027363181114196777344f,
                  0.199926957488059997558594f, -0.333331018686294555664062f);
    F r = u * t * s + s;
    r = select_(ay > ax, 1.57079632679489661923f - r, r);
    r = select_(signbit_(x), 3.14159265358979323846f - r, r);
    return copysign_(r, y);
}

// exp(x), Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts), exp(r) by a degree-5 minimax
// polynomial, times 2^n; within 1 ulp of exp for results >= 2^-126 (smaller ones may come out as 0 instead of
// denormals). exp(x > 88.376) = inf (expf: finite up to 88.72), exp(-inf) = 0, NaN in, NaN out.
template <typename F>
RADIANT_HD F exp_approx(F x) {
    const float hi = 88.3762626647949f;
    F xc = clamp_(x, F(-hi), F(hi));
    F n = floor_(xc * 1.44269504088896341f + 0.5f);
    F r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    F z = r * r;
    F y = horner_(r, F(1.9875691500e-4f), 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f,
                  5.0000001201e-1f);
    y = y * z + r + 1.f;
    y = y * exp2i_(max_(min_(n, F(127.f)), F(-127.f)));  // NaN's n (min_ / max_ pick the bound) stays in range
    return select_(x > hi, F(kInf), y);
}

// log(x), Cephes' logf: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) = t - t^2 / 2 + t^3 P(t) for t = m - 1
// (degree-8 minimax P), plus e ln2 in two parts; within 1 ulp of log, denormals included. log(0) = -inf,
// log(x < 0) = NaN, log(inf) = inf, NaN in, NaN out.
template <typename F>
RADIANT_HD F log_approx(F x) {
    mask_t<F> tiny = x < 1.17549435e-38f;  // denormals (and the specials) scaled into the normal range first
    F e, m = frexp_(select_(tiny, x * 8388608.f, x), e);
    e = select_(tiny, e - 23.f, e);
    mask_t<F> low = m < 0.707106781186547524f;
    e = select_(low, e - 1.f, e);
    F t = select_(low, m + m, m) - 1.f;  // exact
    F z = t * t;
    F y = horner_(t, F(7.0376836292e-2f), -1.1514610310e-1f, 1.1676998740e-1f, -1.2420140846e-1f, 1.4249322787e-1f,
                  -1.6668057665e-1f, 2.0000714765e-1f, -2.4999993993e-1f, 3.3333331174e-1f);
    y = y * t * z;
    y = y + e * -2.12194440e-4f;
    y = y - 0.5f * z;
    F r = t + y;
    r = r + e * 0.693359375f;
    r = select_(x > 0.f, r, select_(x == 0.f, F(-kInf), F(kNaN)));
    return select_(x == kInf, F(kInf), r);
}

// erf(x) within about 1 ulp. |x| < 1: x + x P(x^2), P a degree-6 fit of erf(x) / x - 1 in x^2; 1 <= |x| < 3.92:
// 1 - exp(Q(|x| - 2.5) - x^2), Q a degree-8 fit of log(erfc(x)) + x^2 (Chebyshev fits, mpmath); beyond, +-1 (erfc
// below half an ulp of 1). The branches run only where some lane needs them.
template <typename F>
RADIANT_HD F erf_approx(F x) {
    F a = abs_(x), r(0.f);
    mask_t<F> small = a < 1.f;
    if (any(small)) {
        F p = horner_(x * x, F(7.875874871388078e-05f), -0.000801686430349946f, 0.005189087241888046f,
                      -0.02685421146452427f, 0.11283594369888306f, -0.3761262595653534f, 0.12837916612625122f);
        r = p * x + x;
    }
    if (!all_(small)) {
        F b = clamp_(a, F(1.f), F(3.92f));
        F q = horner_(b - 2.5f, F(1.6704327663319418e-06f), -1.3279140148370061e-05f, 7.717127300566062e-05f,
                      -0.0004202383861411363f, 0.002165434882044792f, -0.010858437046408653f, 0.05610625073313713f,
                      -0.35268068313598633f, -1.556815266609192f);
        F big = select_(a >= 3.92f, F(1.f), 1.f - exp_approx(q - b * b));
        r = select_(small, r, copysign_(big, x));
    }
    return r;
}

}  // namespace radiant
