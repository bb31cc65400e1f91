// Radiant kernels: CPU loops of the dense-SDF family over sdf.h.
#include "sdf_cpu.h"

#include "parallel.h"

namespace radiant {

void sdf_query_cpu(const DenseSDFView& sdf, const float* points, int64_t num_points, float* out) {
    parallel_chunks(num_points, 1024, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) out[i] = sdf_trilinear(sdf, Vec3::load(points + 3 * i));
    });
}

void sdf_trace_cpu(const DenseSDFView& sdf, const float* origins, const float* directions, const float* near,
                   const float* far, int64_t num_rays, int32_t max_steps, float eps, float step_scale, float* t_out,
                   bool* hit_out, int32_t* steps_out) {
    parallel_chunks(num_rays, 64, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            TraceHit h = sphere_trace_dense(sdf, Vec3::load(origins + 3 * i), Vec3::load(directions + 3 * i), near[i],
                                            far[i], max_steps, eps, step_scale);
            t_out[i] = h.t;
            hit_out[i] = h.hit;
            steps_out[i] = h.steps;
        }
    });
}

}  // namespace radiant
