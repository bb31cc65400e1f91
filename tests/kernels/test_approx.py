"""Accuracy of the kernels' polynomial libm stand-ins (cuda/include/radiant/approx.h: atan2, sincos, acos, exp, log,
erf)
and of the film splat's gaussian filter weights (path.h filter_weight), compiled straight from the headers with the host
compiler."""

import shutil
import subprocess
from pathlib import Path

import pytest

INCLUDE = Path(__file__).resolve().parents[2] / "cuda" / "include"

PROGRAM = r"""
#include "radiant/path.h"
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
using namespace radiant;

static double ulps(float a, double exact, float min_step = 0.f) {
    float e = (float)exact;
    float step = fmaxf(nextafterf(fabsf(e), INFINITY) - fabsf(e), min_step);
    return fabs((double)a - exact) / (double)step;
}

int main() {
    std::mt19937 g(7);
    std::normal_distribution<float> N(0.f, 1.f);
    double atan_ulp = 0;
    for (int i = 0; i < 2000000; ++i) {
        float y = N(g), x = N(g);
        if (i % 7 == 0) x *= 1e-4f;
        if (i % 11 == 0) y *= 1e-4f;
        atan_ulp = fmax(atan_ulp, ulps(atan2_approx(y, x), atan2((double)y, (double)x)));
    }
    // atan2's axes and signed zeros.
    const float axes[][3] = {{0.f, 1.f, 0.f}, {-0.f, 1.f, -0.f}, {0.f, -1.f, 3.14159265f}, {-0.f, -1.f, -3.14159265f},
                             {1.f, 0.f, 1.57079633f}, {-1.f, 0.f, -1.57079633f}, {0.f, 0.f, 0.f}};
    int axes_ok = 1;
    for (const auto& c : axes) {
        float r = atan2_approx(c[0], c[1]);
        axes_ok &= r == atan2f(c[0], c[1]) && std::signbit(r) == std::signbit(c[2]);
    }
    double sin_ulp = 0, cos_ulp = 0;
    for (int i = 0; i <= 1000000; ++i) {
        float x = (float)(-0.785398163397 + 1.570796326795 * i / 1000000);
        float s, c;
        sincos_quarter(x, s, c);
        if (x != 0.f) sin_ulp = fmax(sin_ulp, ulps(s, sin((double)x)));
        cos_ulp = fmax(cos_ulp, ulps(c, cos((double)x)));
    }
    // sincos_approx over [-8 pi, 8 pi] (the kernels' angles lie in [-2 pi, 2 pi]; near its zeros the reduction's
    // absolute error, about 1e-13, counts in steps of 2^-26 at the least), acos_approx over every 61st float of
    // [-1, 1], both against double libm; their special values.
    double sin2_ulp = 0, cos2_ulp = 0, acos_ulp = 0;
    for (int i = 0; i <= 4000000; ++i) {
        float x = (float)(-8.0 * M_PI + 16.0 * M_PI * i / 4000000);
        float s, c;
        sincos_approx(x, s, c);
        sin2_ulp = fmax(sin2_ulp, ulps(s, sin((double)x), 1.4901161e-8f));
        cos2_ulp = fmax(cos2_ulp, ulps(c, cos((double)x), 1.4901161e-8f));
    }
    for (uint32_t u = 0; u <= 0x3f800000u; u += 61) {
        for (float sign : {1.f, -1.f}) {
            float x;
            memcpy(&x, &u, sizeof(x));
            x *= sign;
            acos_ulp = fmax(acos_ulp, ulps(acos_approx(x), acos((double)x)));
        }
    }
    for (float x : {1.f, -1.f, 0.f, -0.f, 0.5f, -0.5f}) acos_ulp = fmax(acos_ulp, ulps(acos_approx(x), acos((double)x)));
    int trig_special_ok = acos_approx(1.f) == 0.f && acos_approx(-1.f) == acosf(-1.f) && std::isnan(acos_approx(NAN));
    {
        float s, c;
        sincos_approx(0.f, s, c);
        trig_special_ok &= s == 0.f && c == 1.f;
        sincos_approx(-0.f, s, c);
        trig_special_ok &= s == 0.f && c == 1.f;
    }
    double tap_err = 0;
    std::uniform_real_distribution<float> U(-8.f, 8.f);
    for (float sd : {0.3f, 0.5f, 1.f, 1.5f}) {
        float radius = fminf(4.f * sd, 7.5f);
        FilmFilter f = make_filter(kFilterGaussian, radius, sd);
        double a = 1.0 / (2.0 * sd * sd), floor = exp(-(double)radius * radius * a);
        for (int i = 0; i < 100000; ++i) {
            float x = U(g);
            tap_err = fmax(tap_err, fabs((double)filter_weight(f, x) - fmax(exp(-(double)x * x * a) - floor, 0.0)));
        }
    }
    // exp / log / erf: every 61st float bit pattern of their ranges (about 70 million per function) against double
    // libm, and the special values against float libm.
    double exp_ulp = 0, log_ulp = 0, erf_ulp = 0;
    for (uint64_t b = 0; b < (1ull << 32); b += 61) {
        const uint32_t u = (uint32_t)b;
        float x;
        memcpy(&x, &u, sizeof(x));
        if (!std::isfinite(x)) continue;
        if (x >= -87.3f && x <= 88.3f) exp_ulp = fmax(exp_ulp, ulps(exp_approx(x), exp((double)x)));
        if (x > 0.f) log_ulp = fmax(log_ulp, ulps(log_approx(x), log((double)x)));
        erf_ulp = fmax(erf_ulp, ulps(erf_approx(x), erf((double)x)));
    }
    const float special[] = {0.f, -0.f, INFINITY, -INFINITY, NAN, -1.f, 3.92f, -4.f, -200.f, 100.f};
    int special_ok = 1;
    for (float x : special) {
        const float a[] = {exp_approx(x), log_approx(x), erf_approx(x)}, b[] = {expf(x), logf(x), erff(x)};
        for (int k = 0; k < 3; ++k) {
            if (k == 2 && x == -1.f) continue;  // an ordinary value of erf
            const bool same = a[k] == b[k] && std::signbit(a[k]) == std::signbit(b[k]);
            special_ok &= (std::isnan(a[k]) && std::isnan(b[k])) || same;
        }
    }
    printf("%g %d %g %g %g %g %g %g %d %g %g %g %d\n", atan_ulp, axes_ok, sin_ulp, cos_ulp, tap_err, exp_ulp, log_ulp,
           erf_ulp, special_ok, sin2_ulp, cos2_ulp, acos_ulp, trig_special_ok);
    return 0;
}
"""


def test_polynomial_functions_and_filter_taps(tmp_path):
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no host C++ compiler")
    src = tmp_path / "approx.cpp"
    src.write_text(PROGRAM)
    exe = tmp_path / "approx"
    # The kernels' own flags: no FMA contraction, so the host build computes what the extension computes.
    subprocess.run([cxx, "-O2", "-std=c++17", "-ffp-contract=off", f"-I{INCLUDE}", str(src), "-o", str(exe)],
                   check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout.split()
    atan_ulp, axes_ok, sin_ulp, cos_ulp, tap_err = float(out[0]), int(out[1]), float(out[2]), float(out[3]), float(out[4])
    exp_ulp, log_ulp, erf_ulp, special_ok = float(out[5]), float(out[6]), float(out[7]), int(out[8])
    assert atan_ulp <= 4.0, f"atan2_approx: {atan_ulp} ulp"
    assert axes_ok == 1, "atan2_approx: axes / signed zeros differ from atan2f"
    assert sin_ulp <= 2.0 and cos_ulp <= 2.0, f"sincos_quarter: {sin_ulp} / {cos_ulp} ulp"
    assert tap_err <= 4e-7, f"gaussian filter_weight: {tap_err} from exact"
    assert max(exp_ulp, log_ulp, erf_ulp) <= 2.0, f"exp / log / erf_approx: {exp_ulp} / {log_ulp} / {erf_ulp} ulp"
    assert special_ok == 1, "exp / log / erf_approx: special values differ from expf / logf / erff"
    sin2_ulp, cos2_ulp, acos_ulp, trig_special_ok = float(out[9]), float(out[10]), float(out[11]), int(out[12])
    assert max(sin2_ulp, cos2_ulp) <= 2.0, f"sincos_approx: {sin2_ulp} / {cos2_ulp} ulp"
    assert acos_ulp <= 2.0, f"acos_approx: {acos_ulp} ulp"
    assert trig_special_ok == 1, "acos / sincos_approx: special values differ"
