// Radiant kernels: host entry points of the dense-SDF family (trilinear queries, sphere tracing).
#pragma once
#include "radiant/sdf.h"

namespace radiant {

void sdf_query_cpu(const DenseSDFView& sdf, const float* points, int64_t num_points, float* out);

// t (inf on a miss), hit, steps per ray; near/far per ray.
void sdf_trace_cpu(const DenseSDFView& sdf, const float* origins, const float* directions, const float* near,
                   const float* far, int64_t num_rays, int32_t max_steps, float eps, float step_scale, float* t_out,
                   bool* hit_out, int32_t* steps_out);

}  // namespace radiant
