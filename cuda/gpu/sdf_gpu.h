// Radiant kernels: CUDA launchers of the dense-SDF family. Torch-free: raw device pointers and sizes.
#pragma once
#include <cuda_runtime.h>

#include "radiant/sdf.h"

namespace radiant {

// Same contracts as sdf_query_cpu / sdf_trace_cpu; `sdf.values` and all arrays are device pointers.
void sdf_query_cuda(const DenseSDFView& sdf, const float* points, int64_t num_points, float* out, cudaStream_t stream);

void sdf_trace_cuda(const DenseSDFView& sdf, const float* origins, const float* directions, const float* near,
                    const float* far, int64_t num_rays, int32_t max_steps, float eps, float step_scale, float* t_out,
                    bool* hit_out, int32_t* steps_out, cudaStream_t stream);

}  // namespace radiant
