// Radiant kernels: host entry points of the occupancy-grid family (two-pass ray marching on the CPU).
#pragma once
#include "radiant/grid.h"

namespace radiant {

// Pass 1: counts[i] = number of kept samples of ray i (at most max_samples).
void grid_march_count_cpu(const GridView& grid, const float* origins, const float* directions, const float* near,
                          const float* far, int64_t num_rays, float step, int64_t max_samples, int64_t* counts);

// Pass 2: writes ray i's samples at offsets[i] .. offsets[i] + counts[i] (offsets = exclusive prefix sum).
void grid_march_fill_cpu(const GridView& grid, const float* origins, const float* directions, const float* near,
                         const float* far, int64_t num_rays, float step, int64_t max_samples, const int64_t* offsets,
                         int64_t* ray_indices, float* t_starts, float* t_ends);

}  // namespace radiant
