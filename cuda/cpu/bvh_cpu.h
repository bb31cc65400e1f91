// Radiant kernels: host entry points of the BVH family (build on the CPU; CPU traversal loops).
#pragma once
#include <vector>

#include "radiant/bvh.h"
#include "radiant/bvh_wide.h"

namespace radiant {

struct BVHBuildResult {
    std::vector<BVHNode4> nodes;  // 4-wide, root first
    std::vector<float> prim_data;   // kPrimStride floats per primitive, leaf order
    std::vector<int32_t> prim_ids;  // caller's primitive index per leaf slot
};

// vertices (V,3), faces (F,3) int32, spheres (S,4) = center, radius. Primitive ids: faces first, then spheres.
BVHBuildResult bvh_build_cpu(const float* vertices, int64_t num_vertices, const int32_t* faces, int64_t num_faces,
                             const float* spheres, int64_t num_spheres, int max_leaf_size);

// The 8-wide tree of bvh_wide.h derived from a 4-wide one (same leaf order); view() points into it.
struct WideBVH {
    std::vector<WideNode> nodes;
    std::vector<TriPacket> packets;
    int32_t root_child = 0, root_count = -1;  // root_count < 0: empty scene
    WideBVHView view() const { return WideBVHView{nodes.data(), packets.data(), root_child, root_count}; }
};

// Collapses the 4-wide tree (nodes, num_nodes; prims in leaf order, kPrimStride floats each) into 8-wide nodes:
// subtrees of at most leaf_prims primitives become one leaf of packets of four. The 4-wide tree must be valid
// (children inside the table, leaf ranges inside prims), as bvh_build_cpu makes it and path_bind checks it.
WideBVH bvh_widen_cpu(const BVHNode4* nodes, int32_t num_nodes, const float* prims, int64_t num_prims,
                      int leaf_prims);
constexpr int kWideLeafPrims = 4;

// Closest hit writes t (inf on a miss), prim (-1), u, v; any hit writes hit_out only. wide: the 8-wide tree (where
// compiled in); packet >= 0 with wide: in packets of 16 consecutive rays (bvh_wide.h packet_traverse, AVX-512),
// each ray alone from where at most `packet` of them are left in a subtree.
void bvh_intersect_cpu(const BVHNode4* nodes, int32_t num_nodes, const float* prims, const int32_t* prim_ids,
                       int32_t num_triangles, const float* origins, const float* directions, const float* tmin,
                       const float* tmax, int64_t num_rays, bool any_hit, float* t_out, int32_t* prim_out,
                       float* u_out, float* v_out, bool* hit_out, bool wide = false, int packet = -1);

}  // namespace radiant
