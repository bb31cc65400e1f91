// Radiant kernels: CUDA closest-hit / any-hit over the BVH of bvh.h (one thread per ray).
#include "bvh_gpu.h"

namespace radiant {
namespace {

template <bool ANY_HIT>
__global__ void bvh_intersect_kernel(const BVHNode4* __restrict__ nodes, int32_t num_nodes,
                                     const float* __restrict__ prims, const int32_t* __restrict__ prim_ids,
                                     int32_t num_triangles, const float* __restrict__ origins,
                                     const float* __restrict__ directions, const float* __restrict__ tmin,
                                     const float* __restrict__ tmax, int64_t num_rays, float* t_out,
                                     int32_t* prim_out, float* u_out, float* v_out, bool* hit_out) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= num_rays) return;
    Vec3 o = Vec3::load(origins + 3 * i), d = Vec3::load(directions + 3 * i);
    Hit hit;
    bool h = traverse<ANY_HIT>(nodes, num_nodes, prims, prim_ids, num_triangles, o, d, tmin[i], tmax[i], hit);
    if (ANY_HIT) {
        hit_out[i] = h;
    } else {
        t_out[i] = hit.t;
        prim_out[i] = hit.prim;
        u_out[i] = hit.u;
        v_out[i] = hit.v;
    }
}

}  // namespace

void bvh_intersect_cuda(const BVHNode4* nodes, int32_t num_nodes, const float* prims, const int32_t* prim_ids,
                        int32_t num_triangles, const float* origins, const float* directions, const float* tmin,
                        const float* tmax, int64_t num_rays, bool any_hit, float* t_out, int32_t* prim_out,
                        float* u_out, float* v_out, bool* hit_out, cudaStream_t stream) {
    if (num_rays == 0) return;
    const int threads = 128;
    const unsigned blocks = (unsigned)((num_rays + threads - 1) / threads);
    if (any_hit)
        bvh_intersect_kernel<true><<<blocks, threads, 0, stream>>>(nodes, num_nodes, prims, prim_ids, num_triangles,
                                                                   origins, directions, tmin, tmax, num_rays, t_out,
                                                                   prim_out, u_out, v_out, hit_out);
    else
        bvh_intersect_kernel<false><<<blocks, threads, 0, stream>>>(nodes, num_nodes, prims, prim_ids, num_triangles,
                                                                    origins, directions, tmin, tmax, num_rays, t_out,
                                                                    prim_out, u_out, v_out, hit_out);
}

}  // namespace radiant
