// Radiant kernels: orthonormal shading frame from a unit normal (Duff et al. 2017, branchless ONB).
#pragma once
#include "vec.h"

namespace radiant {

struct Frame {
    Vec3 s, t, n;
    // Duff et al. 2017, "Building an Orthonormal Basis, Revisited", listing 3 (sign(0) = +1 as Mitsuba).
    RADIANT_HD explicit Frame(Vec3 n_) : n(n_) {
        float sign = n.z >= 0.f ? 1.f : -1.f;
        float a = -1.f / (sign + n.z);
        float b = n.x * n.y * a;
        s = Vec3(1.f + sign * n.x * n.x * a, sign * b, -sign * n.x);
        t = Vec3(b, sign + n.y * n.y * a, -n.y);
    }
    RADIANT_HD Vec3 to_local(Vec3 v) const { return Vec3(dot(v, s), dot(v, t), dot(v, n)); }
    RADIANT_HD Vec3 to_world(Vec3 v) const { return s * v.x + t * v.y + n * v.z; }
};

}  // namespace radiant
