"""Accuracy of the kernels' polynomial libm stand-ins (cuda/include/radiant/approx.h) and of the film splat's
gaussian tap weights (path.h filter_weights), compiled straight from the headers with the host compiler."""

import shutil
import subprocess
from pathlib import Path

import pytest

INCLUDE = Path(__file__).resolve().parents[2] / "cuda" / "include"

PROGRAM = r"""
#include "radiant/path.h"
#include <cmath>
#include <cstdio>
#include <random>
using namespace radiant;

static double ulps(float a, double exact) {
    float e = (float)exact;
    float step = nextafterf(fabsf(e), INFINITY) - fabsf(e);
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
    double tap_err = 0;
    std::uniform_real_distribution<float> U(0.f, 300.f);
    for (float sd : {0.3f, 0.5f, 1.f, 1.5f}) {
        float radius = fminf(4.f * sd, 7.5f);
        FilmFilter f = make_filter(kFilterGaussian, radius, sd);
        int span = (int)ceilf(2.f * radius) + 1;
        for (int i = 0; i < 100000; ++i) {
            float s = U(g);
            int b = (int)floorf(s - radius + 0.5f);
            float w[16];
            filter_weights(f, b, s, span, w);
            for (int k = 0; k < span; ++k)
                tap_err = fmax(tap_err, fabs((double)w[k] - filter_weight(f, (float)(b + k) + 0.5f - s)));
        }
    }
    printf("%g %d %g %g %g\n", atan_ulp, axes_ok, sin_ulp, cos_ulp, tap_err);
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
    assert atan_ulp <= 4.0, f"atan2_approx: {atan_ulp} ulp"
    assert axes_ok == 1, "atan2_approx: axes / signed zeros differ from atan2f"
    assert sin_ulp <= 2.0 and cos_ulp <= 2.0, f"sincos_quarter: {sin_ulp} / {cos_ulp} ulp"
    assert tap_err <= 4e-7, f"filter_weights: {tap_err} from filter_weight"
