// Radiant kernels: CPU loops of the occupancy-grid ray marcher over grid.h (count pass, fill pass).
#include "grid_cpu.h"

#include "parallel.h"

namespace radiant {

void grid_march_count_cpu(const GridView& grid, const float* origins, const float* directions, const float* near,
                          const float* far, int64_t num_rays, float step, int64_t max_samples, int64_t* counts) {
    parallel_chunks(num_rays, 64, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            Vec3 o = Vec3::load(origins + 3 * i), d = Vec3::load(directions + 3 * i);
            counts[i] = march_ray(grid, o, d, near[i], far[i], step, max_samples, [](float, float) {});
        }
    });
}

void grid_march_fill_cpu(const GridView& grid, const float* origins, const float* directions, const float* near,
                         const float* far, int64_t num_rays, float step, int64_t max_samples, const int64_t* offsets,
                         int64_t* ray_indices, float* t_starts, float* t_ends) {
    parallel_chunks(num_rays, 64, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            Vec3 o = Vec3::load(origins + 3 * i), d = Vec3::load(directions + 3 * i);
            int64_t j = offsets[i];
            march_ray(grid, o, d, near[i], far[i], step, max_samples, [&](float t0, float t1) {
                ray_indices[j] = i;
                t_starts[j] = t0;
                t_ends[j] = t1;
                ++j;
            });
        }
    });
}

}  // namespace radiant
