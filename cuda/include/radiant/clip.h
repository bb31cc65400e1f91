// Radiant kernels: clipping a ray's [tmin, tmax] to a closed box, via ray_box but well defined for axis-parallel rays.
#pragma once
#include "common.h"
#include "vec.h"

namespace radiant {

// ray_box gives NaN = 0 * inf when a direction component is zero and the origin lies exactly on that slab's
// plane, and the NaN can then drop another axis' exit (t1 = inf). Here a zero component is decided up front:
// origin outside the slab is a miss, inside (faces included) makes that slab unbounded. Otherwise the result
// is ray_box's, bit for bit. render/kernels/grid.py (clip_ray_to_box_torch) is the torch twin.
RADIANT_HD void clip_ray_to_box(const Vec3& org, const Vec3& dir, Vec3 lo, Vec3 hi, float tmin, float tmax,
                                float& t0, float& t1) {
    for (int a = 0; a < 3; ++a) {
        if (dir[a] != 0.f) continue;
        if (org[a] < lo[a] || org[a] > hi[a]) {
            t0 = kInf;
            t1 = -kInf;
            return;
        }
        lo[a] = -kInf;
        hi[a] = kInf;
    }
    Vec3 inv_dir(1.f / dir.x, 1.f / dir.y, 1.f / dir.z);
    ray_box(org, inv_dir, AABB(lo, hi), tmin, tmax, t0, t1);
}

}  // namespace radiant
