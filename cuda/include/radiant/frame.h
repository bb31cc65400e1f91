// Radiant kernels: orthonormal shading frame from a unit normal (Duff et al. 2017, branchless ONB).
#pragma once
#include "vec.h"

namespace radiant {

template <typename F>
struct FrameT {
    Vec3T<F> s, t, n;
    // Duff et al. 2017, "Building an Orthonormal Basis, Revisited", listing 3 (sign(0) = +1 as Mitsuba).
    RADIANT_HD explicit FrameT(Vec3T<F> n_) : n(n_) {
        F sign = select_(n.z >= 0.f, F(1.f), F(-1.f));
        F a = -1.f / (sign + n.z);
        F b = n.x * n.y * a;
        s = Vec3T<F>(1.f + sign * n.x * n.x * a, sign * b, -sign * n.x);
        t = Vec3T<F>(b, sign + n.y * n.y * a, -n.y);
    }
    RADIANT_HD Vec3T<F> to_local(Vec3T<F> v) const { return Vec3T<F>(dot(v, s), dot(v, t), dot(v, n)); }
    RADIANT_HD Vec3T<F> to_world(Vec3T<F> v) const { return s * v.x + t * v.y + n * v.z; }
};
using Frame = FrameT<float>;

}  // namespace radiant
