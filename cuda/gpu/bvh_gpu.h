// Radiant kernels: CUDA launchers of the BVH family. Torch-free: raw device pointers and sizes.
#pragma once
#include <cuda_runtime.h>

#include "radiant/bvh.h"

namespace radiant {

// Same contract as bvh_intersect_cpu; all pointers are device pointers; runs on `stream`.
void bvh_intersect_cuda(const BVHNode4* nodes, int32_t num_nodes, const float* prims, const int32_t* prim_ids,
                        int32_t num_triangles, const float* origins, const float* directions, const float* tmin,
                        const float* tmax, int64_t num_rays, bool any_hit, float* t_out, int32_t* prim_out,
                        float* u_out, float* v_out, bool* hit_out, cudaStream_t stream);

}  // namespace radiant
