// Radiant kernels: host entry points of the BVH family (build on the CPU; CPU traversal loops).
#pragma once
#include <vector>

#include "radiant/bvh.h"

namespace radiant {

struct BVHBuildResult {
    std::vector<BVHNode4> nodes;  // 4-wide, root first
    std::vector<float> prim_data;   // kPrimStride floats per primitive, leaf order
    std::vector<int32_t> prim_ids;  // caller's primitive index per leaf slot
};

// vertices (V,3), faces (F,3) int32, spheres (S,4) = center, radius. Primitive ids: faces first, then spheres.
BVHBuildResult bvh_build_cpu(const float* vertices, int64_t num_vertices, const int32_t* faces, int64_t num_faces,
                             const float* spheres, int64_t num_spheres, int max_leaf_size);

// Closest hit writes t (inf on a miss), prim (-1), u, v; any hit writes hit_out only.
void bvh_intersect_cpu(const BVHNode4* nodes, int32_t num_nodes, const float* prims, const int32_t* prim_ids,
                       int32_t num_triangles, const float* origins, const float* directions, const float* tmin,
                       const float* tmax, int64_t num_rays, bool any_hit, float* t_out, int32_t* prim_out,
                       float* u_out, float* v_out, bool* hit_out);

}  // namespace radiant
