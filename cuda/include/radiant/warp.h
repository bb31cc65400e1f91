// Radiant kernels: warps from the unit square to directions/points, each with its pdf (Mitsuba 3 warp.h conventions).
#pragma once
#include "approx.h"
#include "vec.h"

namespace radiant {

constexpr float kInvPi = 0.31830988618379067154f;
constexpr float kInvTwoPi = 0.15915494309189533577f;
constexpr float kInvFourPi = 0.07957747154594766788f;

template <typename F>
RADIANT_HD F safe_sqrt(F x) { return sqrt_(max_(x, F(0.f))); }

template <typename F>
struct Vec2T {
    F x, y;
    RADIANT_HD Vec2T() : x(0.f), y(0.f) {}
    RADIANT_HD Vec2T(nodeduce_t<F> x_, nodeduce_t<F> y_) : x(x_), y(y_) {}
};
using Vec2 = Vec2T<float>;

// Shirley-Chiu concentric map with Dave Cline's branch-reduced form; (0.5, 0.5) -> origin. The angle is
// pi/4 * rp / r in [-pi/4, pi/4], or pi/2 minus that (sin and cos swapped), so a short polynomial does.
template <typename F>
RADIANT_HD Vec2T<F> square_to_uniform_disk_concentric(Vec2T<F> u) {
    F x = 2.f * u.x - 1.f, y = 2.f * u.y - 1.f;
    mask_t<F> is_zero = (x == 0.f) & (y == 0.f);
    mask_t<F> quadrant_1_or_3 = abs_(x) < abs_(y);
    F r = select_(quadrant_1_or_3, y, x), rp = select_(quadrant_1_or_3, x, y);
    F phi = select_(is_zero, F(0.f), 0.25f * kPi * rp / r);
    F sp, cp;
    sincos_quarter(phi, sp, cp);
    return Vec2T<F>(select_(quadrant_1_or_3, r * sp, r * cp), select_(quadrant_1_or_3, r * cp, r * sp));
}
RADIANT_HD float square_to_uniform_disk_concentric_pdf(Vec2 p) {
    return (p.x * p.x + p.y * p.y <= 1.f) ? kInvPi : 0.f;
}

RADIANT_HD Vec3 square_to_uniform_sphere(Vec2 u) {
    float z = 1.f - 2.f * u.y;
    float r = safe_sqrt(1.f - z * z);
    float phi = 2.f * kPi * u.x;
    return Vec3(r * cosf(phi), r * sinf(phi), z);
}
RADIANT_HD float square_to_uniform_sphere_pdf(Vec3) { return kInvFourPi; }

// Hemisphere through the concentric disk (area-preserving lift, as Mitsuba).
RADIANT_HD Vec3 square_to_uniform_hemisphere(Vec2 u) {
    Vec2 p = square_to_uniform_disk_concentric(u);
    float z = 1.f - (p.x * p.x + p.y * p.y);
    float s = sqrtf(z + 1.f);
    return Vec3(p.x * s, p.y * s, z);
}
RADIANT_HD float square_to_uniform_hemisphere_pdf(Vec3 v) { return v.z >= 0.f ? kInvTwoPi : 0.f; }

// Malley's method: project the concentric disk up (pdf cos(theta)/pi).
template <typename F>
RADIANT_HD Vec3T<F> square_to_cosine_hemisphere(Vec2T<F> u) {
    Vec2T<F> p = square_to_uniform_disk_concentric(u);
    F z = safe_sqrt(1.f - p.x * p.x - p.y * p.y);
    return Vec3T<F>(p.x, p.y, z);
}
// Mitsuba returns InvPi * z without a clamp; we clamp to 0 below the horizon (callers mask those anyway).
template <typename F>
RADIANT_HD F square_to_cosine_hemisphere_pdf(Vec3T<F> v) { return select_(v.z > 0.f, kInvPi * v.z, F(0.f)); }

// Uniform over the spherical cap cos(theta) >= cos_cutoff, through the concentric disk.
RADIANT_HD Vec3 square_to_uniform_cone(Vec2 u, float cos_cutoff) {
    float one_minus = 1.f - cos_cutoff;
    Vec2 p = square_to_uniform_disk_concentric(u);
    float pn = p.x * p.x + p.y * p.y;
    float z = cos_cutoff + one_minus * (1.f - pn);
    float s = safe_sqrt(one_minus * (2.f - one_minus * pn));
    return Vec3(p.x * s, p.y * s, z);
}
RADIANT_HD float square_to_uniform_cone_pdf(Vec3 v, float cos_cutoff) {
    return v.z >= cos_cutoff ? kInvTwoPi / (1.f - cos_cutoff) : 0.f;
}

// Barycentrics (b1, b2) uniform over a triangle; pdf 2 in barycentric area.
RADIANT_HD Vec2 square_to_uniform_triangle(Vec2 u) {
    float t = safe_sqrt(1.f - u.x);
    return Vec2(1.f - t, t * u.y);
}
RADIANT_HD float square_to_uniform_triangle_pdf(Vec2 p) {
    return (p.x >= 0.f && p.y >= 0.f && p.x + p.y <= 1.f) ? 2.f : 0.f;
}

// Batch test hook: the warp `kind` (WarpKind) of u, as a 3D point (planar warps have z = 0), and its pdf there.
enum WarpKind : int {
    kWarpUniformSphere = 0,
    kWarpUniformHemisphere = 1,
    kWarpCosineHemisphere = 2,
    kWarpUniformCone = 3,
    kWarpDiskConcentric = 4,
    kWarpTriangle = 5,
};

RADIANT_HD Vec3 warp_by_kind(int kind, Vec2 u, float param, float& pdf) {
    switch (kind) {
        case kWarpUniformSphere: { Vec3 v = square_to_uniform_sphere(u); pdf = square_to_uniform_sphere_pdf(v); return v; }
        case kWarpUniformHemisphere: { Vec3 v = square_to_uniform_hemisphere(u); pdf = square_to_uniform_hemisphere_pdf(v); return v; }
        case kWarpCosineHemisphere: { Vec3 v = square_to_cosine_hemisphere(u); pdf = square_to_cosine_hemisphere_pdf(v); return v; }
        case kWarpUniformCone: { Vec3 v = square_to_uniform_cone(u, param); pdf = square_to_uniform_cone_pdf(v, param); return v; }
        case kWarpDiskConcentric: { Vec2 p = square_to_uniform_disk_concentric(u); pdf = square_to_uniform_disk_concentric_pdf(p); return Vec3(p.x, p.y, 0.f); }
        case kWarpTriangle: { Vec2 p = square_to_uniform_triangle(u); pdf = square_to_uniform_triangle_pdf(p); return Vec3(p.x, p.y, 0.f); }
        default: pdf = 0.f; return Vec3(0.f);
    }
}

}  // namespace radiant
