// Radiant kernels: CUDA trilinear queries and sphere tracing of a dense SDF over sdf.h (one thread per point/ray).
#include "sdf_gpu.h"

namespace radiant {
namespace {

constexpr int kThreads = 128;

__global__ void sdf_query_kernel(DenseSDFView sdf, const float* __restrict__ points, int64_t num_points,
                                 float* out) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= num_points) return;
    out[i] = sdf_trilinear(sdf, Vec3::load(points + 3 * i));
}

__global__ void sdf_trace_kernel(DenseSDFView sdf, const float* __restrict__ origins,
                                 const float* __restrict__ directions, const float* __restrict__ near,
                                 const float* __restrict__ far, int64_t num_rays, int32_t max_steps, float eps,
                                 float step_scale, float* t_out, bool* hit_out, int32_t* steps_out) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= num_rays) return;
    TraceHit h = sphere_trace_dense(sdf, Vec3::load(origins + 3 * i), Vec3::load(directions + 3 * i), near[i], far[i],
                                    max_steps, eps, step_scale);
    t_out[i] = h.t;
    hit_out[i] = h.hit;
    steps_out[i] = h.steps;
}

unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

}  // namespace

void sdf_query_cuda(const DenseSDFView& sdf, const float* points, int64_t num_points, float* out, cudaStream_t stream) {
    if (num_points == 0) return;
    sdf_query_kernel<<<blocks_for(num_points), kThreads, 0, stream>>>(sdf, points, num_points, out);
}

void sdf_trace_cuda(const DenseSDFView& sdf, const float* origins, const float* directions, const float* near,
                    const float* far, int64_t num_rays, int32_t max_steps, float eps, float step_scale, float* t_out,
                    bool* hit_out, int32_t* steps_out, cudaStream_t stream) {
    if (num_rays == 0) return;
    sdf_trace_kernel<<<blocks_for(num_rays), kThreads, 0, stream>>>(sdf, origins, directions, near, far, num_rays,
                                                                    max_steps, eps, step_scale, t_out, hit_out,
                                                                    steps_out);
}

}  // namespace radiant
