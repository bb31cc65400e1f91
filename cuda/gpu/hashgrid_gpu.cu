// Radiant kernels: CUDA hash-grid encoding over hashgrid.h, one thread per (point, level); the backward pass
// scatters into the table gradient with atomicAdd. The view's small per-level arrays live in device memory.
#include "hashgrid_gpu.h"

namespace radiant {
namespace {

constexpr int kThreads = 128;

__global__ void hashgrid_forward_kernel(HashGridView g, const float* __restrict__ table,
                                        const float* __restrict__ points, int64_t n, float* features,
                                        float* jacobian) {
    int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n * g.levels) return;
    int64_t i = k / g.levels;
    int32_t l = (int32_t)(k % g.levels);
    const int64_t width = (int64_t)g.levels * g.features;
    hashgrid_encode_level(g, table, l, points + 3 * i, features + i * width,
                          jacobian ? jacobian + i * width * 3 : nullptr);
}

struct AtomicAdd {
    float* dst;
    __device__ void operator()(int64_t k, float v) const { atomicAdd(dst + k, v); }
};

__global__ void hashgrid_backward_kernel(HashGridView g, const float* __restrict__ points, int64_t n,
                                         const float* __restrict__ grad_features,
                                         const float* __restrict__ grad_jacobian, float* grad_table) {
    int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n * g.levels) return;
    int64_t i = k / g.levels;
    int32_t l = (int32_t)(k % g.levels);
    const int64_t width = (int64_t)g.levels * g.features;
    hashgrid_backward_level(g, l, points + 3 * i, grad_features ? grad_features + i * width : nullptr,
                            grad_jacobian ? grad_jacobian + i * width * 3 : nullptr, AtomicAdd{grad_table});
}

unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

}  // namespace

void hashgrid_forward_cuda(const HashGridView& g, const float* table, const float* points, int64_t n, float* features,
                           float* jacobian, cudaStream_t stream) {
    if (n == 0) return;
    hashgrid_forward_kernel<<<blocks_for(n * g.levels), kThreads, 0, stream>>>(g, table, points, n, features,
                                                                              jacobian);
}

void hashgrid_backward_cuda(const HashGridView& g, const float* points, int64_t n, const float* grad_features,
                            const float* grad_jacobian, float* grad_table, cudaStream_t stream) {
    if (n == 0) return;
    hashgrid_backward_kernel<<<blocks_for(n * g.levels), kThreads, 0, stream>>>(g, points, n, grad_features,
                                                                               grad_jacobian, grad_table);
}

}  // namespace radiant
