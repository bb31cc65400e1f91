// Radiant kernels: CUDA entry points of the hash-grid encoding (same semantics as cpu/hashgrid_cpu.h).
#pragma once
#include <cuda_runtime.h>

#include "radiant/hashgrid.h"

namespace radiant {

void hashgrid_forward_cuda(const HashGridView& g, const float* table, const float* points, int64_t n, float* features,
                           float* jacobian, cudaStream_t stream);

void hashgrid_backward_cuda(const HashGridView& g, const float* points, int64_t n, const float* grad_features,
                            const float* grad_jacobian, float* grad_table, cudaStream_t stream);

}  // namespace radiant
