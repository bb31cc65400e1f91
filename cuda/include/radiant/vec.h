// Radiant kernels: a plain 3-vector of floats and the operations the ray kernels need.
#pragma once
#include <cmath>
#include "common.h"

namespace radiant {

// Vec3T<F>: three components of the float type F (common.h): Vec3 = Vec3T<float> everywhere, Vec3T<LaneF> for the
// CPU's lanes. Scalar arguments (s) take their type from the vector's (nodeduce_t), so `v * 2.f` works for both.
template <typename F>
struct Vec3T {
    F x, y, z;
    RADIANT_HD Vec3T() : x(0.f), y(0.f), z(0.f) {}
    RADIANT_HD Vec3T(nodeduce_t<F> x_, nodeduce_t<F> y_, nodeduce_t<F> z_) : x(x_), y(y_), z(z_) {}
    RADIANT_HD explicit Vec3T(nodeduce_t<F> s) : x(s), y(s), z(s) {}
    RADIANT_HD static Vec3T load(const float* p) { return Vec3T(p[0], p[1], p[2]); }
    RADIANT_HD void store(float* p) const { p[0] = x; p[1] = y; p[2] = z; }
    RADIANT_HD F operator[](int i) const { return i == 0 ? x : (i == 1 ? y : z); }
    RADIANT_HD F& operator[](int i) { return i == 0 ? x : (i == 1 ? y : z); }
};
using Vec3 = Vec3T<float>;

template <typename F>
RADIANT_HD Vec3T<F> operator+(Vec3T<F> a, Vec3T<F> b) { return Vec3T<F>(a.x + b.x, a.y + b.y, a.z + b.z); }
template <typename F>
RADIANT_HD Vec3T<F> operator-(Vec3T<F> a, Vec3T<F> b) { return Vec3T<F>(a.x - b.x, a.y - b.y, a.z - b.z); }
template <typename F>
RADIANT_HD Vec3T<F> operator-(Vec3T<F> a) { return Vec3T<F>(-a.x, -a.y, -a.z); }
template <typename F>
RADIANT_HD Vec3T<F> operator*(Vec3T<F> a, Vec3T<F> b) { return Vec3T<F>(a.x * b.x, a.y * b.y, a.z * b.z); }
template <typename F>
RADIANT_HD Vec3T<F> operator*(Vec3T<F> a, nodeduce_t<F> s) { return Vec3T<F>(a.x * s, a.y * s, a.z * s); }
template <typename F>
RADIANT_HD Vec3T<F> operator*(nodeduce_t<F> s, Vec3T<F> a) { return Vec3T<F>(a.x * s, a.y * s, a.z * s); }
template <typename F>
RADIANT_HD Vec3T<F> operator/(Vec3T<F> a, nodeduce_t<F> s) { return a * (1.f / s); }
template <typename F>
RADIANT_HD Vec3T<F>& operator+=(Vec3T<F>& a, Vec3T<F> b) { a = a + b; return a; }
template <typename F>
RADIANT_HD F dot(Vec3T<F> a, Vec3T<F> b) { return a.x * b.x + a.y * b.y + a.z * b.z; }
template <typename F>
RADIANT_HD Vec3T<F> cross(Vec3T<F> a, Vec3T<F> b) {
    return Vec3T<F>(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x);
}
template <typename F>
RADIANT_HD F length(Vec3T<F> a) { return sqrt_(dot(a, a)); }
template <typename F>
RADIANT_HD Vec3T<F> normalize(Vec3T<F> a) { return a / length(a); }
template <typename F>
RADIANT_HD Vec3T<F> vmin(Vec3T<F> a, Vec3T<F> b) { return Vec3T<F>(min_(a.x, b.x), min_(a.y, b.y), min_(a.z, b.z)); }
template <typename F>
RADIANT_HD Vec3T<F> vmax(Vec3T<F> a, Vec3T<F> b) { return Vec3T<F>(max_(a.x, b.x), max_(a.y, b.y), max_(a.z, b.z)); }
template <typename F>
RADIANT_HD F max_component(Vec3T<F> a) { return max_(a.x, max_(a.y, a.z)); }
template <typename F>
RADIANT_HD F min_component(Vec3T<F> a) { return min_(a.x, min_(a.y, a.z)); }
template <typename F>
RADIANT_HD Vec3T<F> vabs(Vec3T<F> a) { return Vec3T<F>(abs_(a.x), abs_(a.y), abs_(a.z)); }
// Per-component choice by a mask of F (bool for float).
template <typename F>
RADIANT_HD Vec3T<F> select_(mask_t<F> m, Vec3T<F> a, Vec3T<F> b) {
    return Vec3T<F>(select_(m, a.x, b.x), select_(m, a.y, b.y), select_(m, a.z, b.z));
}
RADIANT_HD int max_dimension(Vec3 a) { return (a.x > a.y) ? (a.x > a.z ? 0 : 2) : (a.y > a.z ? 1 : 2); }

// Axis-aligned box; empty boxes have min > max.
struct AABB {
    Vec3 lo, hi;
    RADIANT_HD AABB() : lo(kInf), hi(-kInf) {}
    RADIANT_HD AABB(Vec3 a, Vec3 b) : lo(a), hi(b) {}
    RADIANT_HD void expand(Vec3 p) { lo = vmin(lo, p); hi = vmax(hi, p); }
    RADIANT_HD void expand(const AABB& b) { lo = vmin(lo, b.lo); hi = vmax(hi, b.hi); }
    RADIANT_HD Vec3 extent() const { return hi - lo; }
    RADIANT_HD Vec3 center() const { return (lo + hi) * 0.5f; }
    RADIANT_HD bool empty() const { return lo.x > hi.x || lo.y > hi.y || lo.z > hi.z; }
    RADIANT_HD float half_area() const {
        if (empty()) return 0.f;
        Vec3 e = extent();
        return e.x * e.y + e.y * e.z + e.z * e.x;
    }
};

// Slab test of a ray against a box, with a precomputed reciprocal direction.
// Returns the entry/exit interval clipped to [tmin, tmax]; a miss gives t0 > t1.
// NaNs from 0 * inf (origin on a slab plane, direction parallel to it) are dropped by the min/max order.
RADIANT_HD void ray_box(const Vec3& org, const Vec3& inv_dir, const AABB& b, float tmin, float tmax,
                        float& t0, float& t1) {
    float tx0 = (b.lo.x - org.x) * inv_dir.x, tx1 = (b.hi.x - org.x) * inv_dir.x;
    float ty0 = (b.lo.y - org.y) * inv_dir.y, ty1 = (b.hi.y - org.y) * inv_dir.y;
    float tz0 = (b.lo.z - org.z) * inv_dir.z, tz1 = (b.hi.z - org.z) * inv_dir.z;
    t0 = max_(max_(min_(tx0, tx1), min_(ty0, ty1)), max_(min_(tz0, tz1), tmin));
    // Conservative exit (pbrt-v4: t1 *= 1 + 2 * gamma(3)) so rounding never culls a primitive lying on a face.
    t1 = min_(min_(max_(tx0, tx1), max_(ty0, ty1)) * 1.00000036f, min_(max_(tz0, tz1) * 1.00000036f, tmax));
}

}  // namespace radiant
