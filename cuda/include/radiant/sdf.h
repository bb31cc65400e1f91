// Radiant kernels: dense SDF grid with trilinear interpolation, and sphere tracing of it (Hart 1996).
// Written once for the host and the device (RADIANT_HD); render/kernels/sdf.py holds the pure-torch twin.
#pragma once
#include "clip.h"
#include "common.h"
#include "exact.h"
#include "vec.h"

namespace radiant {

// Samples at the grid's corners: values[(i * res[1] + j) * res[2] + k] is the SDF at
// lo + (i, j, k) * (hi - lo) / (res - 1), x first (NOT torch grid_sample's (D, H, W) = (z, y, x) order).
// inv_spacing = (res - 1) / (hi - lo) is computed once in torch (float32) so both sides use the same number.
struct DenseSDFView {
    const float* values;
    int32_t res[3];  // >= 2 each
    float lo[3], hi[3], inv_spacing[3];
};

RADIANT_HD float lerp_(float a, float b, float t) { return add_rn(a, mul_rn(b - a, t)); }

// Trilinear interpolation; points outside the box take the value at the nearest point of the box (clamped).
// The float ops are those of `_trilinear` in sdf.py, in the same order.
RADIANT_HD float sdf_trilinear(const DenseSDFView& s, const Vec3& p) {
    int32_t i[3];
    float f[3];
    for (int a = 0; a < 3; ++a) {
        float top = (float)(s.res[a] - 1);
        float u = (p[a] - s.lo[a]) * s.inv_spacing[a];
        u = u > 0.f ? u : 0.f;  // NaN goes to 0 as well: never an out-of-bounds read
        u = u < top ? u : top;
        float c = floorf(u);
        c = c < top - 1.f ? c : top - 1.f;  // the far face interpolates in the last cell
        i[a] = (int32_t)c;
        f[a] = u - c;
    }
    const int64_t sy = s.res[2], sx = (int64_t)s.res[1] * s.res[2];
    const float* v = s.values + i[0] * sx + i[1] * sy + i[2];
    float c00 = lerp_(v[0], v[sx], f[0]);
    float c10 = lerp_(v[sy], v[sx + sy], f[0]);
    float c01 = lerp_(v[1], v[sx + 1], f[0]);
    float c11 = lerp_(v[sy + 1], v[sx + sy + 1], f[0]);
    float c0 = lerp_(c00, c10, f[1]);
    float c1 = lerp_(c01, c11, f[1]);
    return lerp_(c0, c1, f[2]);
}

struct TraceHit {
    float t;        // t of the hit; inf on a miss
    bool hit;
    int32_t steps;  // SDF evaluations
};

// Sphere tracing (Hart 1996, "Sphere tracing: a geometric method for the antialiased ray tracing of implicit
// surfaces") on [t_start, t_end]. At each step p = o + t*d and dist = sdf(p); |dist| < eps is a hit at t;
// otherwise t += step_scale * side * dist / |d|, where side = -1 when the first sample is inside (dist < 0),
// so that a ray starting inside marches forward to the surface it exits through. Leaving [t_start, t_end]
// or running out of steps is a miss. Same ops as sphere_trace_torch in sdf.py.
template <typename SDF>
RADIANT_HD TraceHit sphere_trace_ray(const SDF& sdf, const Vec3& o, const Vec3& d, float t_start, float t_end,
                                     int32_t max_steps, float eps, float step_scale) {
    TraceHit r;
    r.t = kInf;
    r.hit = false;
    r.steps = 0;
    if (!(t_start <= t_end)) return r;
    float factor = step_scale / length_rn(d);
    float t = t_start;
    for (int32_t s = 0; s < max_steps; ++s) {
        Vec3 p = ray_point(o, t, d);
        float dist = sdf(p);
        r.steps = s + 1;
        if (fabsf(dist) < eps) {
            r.t = t;
            r.hit = true;
            return r;
        }
        if (s == 0 && dist < 0.f) factor = -factor;
        t = add_rn(t, mul_rn(factor, dist));
        if (t > t_end || t < t_start) break;
    }
    return r;
}

// The dense-grid case: clip [near, far] to the grid's box, then trace the trilinear field.
RADIANT_HD TraceHit sphere_trace_dense(const DenseSDFView& s, const Vec3& o, const Vec3& d, float near, float far,
                                       int32_t max_steps, float eps, float step_scale) {
    float t0, t1;
    clip_ray_to_box(o, d, Vec3::load(s.lo), Vec3::load(s.hi), near, far, t0, t1);
    auto field = [&s](const Vec3& p) { return sdf_trilinear(s, p); };
    return sphere_trace_ray(field, o, d, t0, t1, max_steps, eps, step_scale);
}

}  // namespace radiant
