// Radiant kernels: CUDA launchers of the occupancy-grid family. Torch-free: raw device pointers and sizes.
#pragma once
#include <cuda_runtime.h>

#include "radiant/grid.h"

namespace radiant {

// Same contracts as grid_march_count_cpu / grid_march_fill_cpu; `grid` holds device pointers; runs on `stream`.
void grid_march_count_cuda(const GridView& grid, const float* origins, const float* directions, const float* near,
                           const float* far, int64_t num_rays, float step, int64_t max_samples, int64_t* counts,
                           cudaStream_t stream);

void grid_march_fill_cuda(const GridView& grid, const float* origins, const float* directions, const float* near,
                          const float* far, int64_t num_rays, float step, int64_t max_samples, const int64_t* offsets,
                          int64_t* ray_indices, float* t_starts, float* t_ends, cudaStream_t stream);

}  // namespace radiant
