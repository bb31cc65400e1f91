// Radiant kernels: CUDA occupancy-grid ray marcher over grid.h (count pass, fill pass; one thread per ray).
#include "grid_gpu.h"

namespace radiant {
namespace {

constexpr int kThreads = 128;

__global__ void grid_march_count_kernel(GridView grid, const float* __restrict__ origins,
                                        const float* __restrict__ directions, const float* __restrict__ near,
                                        const float* __restrict__ far, int64_t num_rays, float step,
                                        int64_t max_samples, int64_t* counts) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= num_rays) return;
    Vec3 o = Vec3::load(origins + 3 * i), d = Vec3::load(directions + 3 * i);
    counts[i] = march_ray(grid, o, d, near[i], far[i], step, max_samples, [](float, float) {});
}

__global__ void grid_march_fill_kernel(GridView grid, const float* __restrict__ origins,
                                       const float* __restrict__ directions, const float* __restrict__ near,
                                       const float* __restrict__ far, int64_t num_rays, float step,
                                       int64_t max_samples, const int64_t* __restrict__ offsets,
                                       int64_t* ray_indices, float* t_starts, float* t_ends) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= num_rays) return;
    Vec3 o = Vec3::load(origins + 3 * i), d = Vec3::load(directions + 3 * i);
    int64_t j = offsets[i];
    march_ray(grid, o, d, near[i], far[i], step, max_samples, [&](float t0, float t1) {
        ray_indices[j] = i;
        t_starts[j] = t0;
        t_ends[j] = t1;
        ++j;
    });
}

unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

}  // namespace

void grid_march_count_cuda(const GridView& grid, const float* origins, const float* directions, const float* near,
                           const float* far, int64_t num_rays, float step, int64_t max_samples, int64_t* counts,
                           cudaStream_t stream) {
    if (num_rays == 0) return;
    grid_march_count_kernel<<<blocks_for(num_rays), kThreads, 0, stream>>>(grid, origins, directions, near, far,
                                                                          num_rays, step, max_samples, counts);
}

void grid_march_fill_cuda(const GridView& grid, const float* origins, const float* directions, const float* near,
                          const float* far, int64_t num_rays, float step, int64_t max_samples, const int64_t* offsets,
                          int64_t* ray_indices, float* t_starts, float* t_ends, cudaStream_t stream) {
    if (num_rays == 0) return;
    grid_march_fill_kernel<<<blocks_for(num_rays), kThreads, 0, stream>>>(
        grid, origins, directions, near, far, num_rays, step, max_samples, offsets, ray_indices, t_starts, t_ends);
}

}  // namespace radiant
