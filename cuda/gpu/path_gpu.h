// Radiant kernels: CUDA launchers of the fused path tracer. Torch-free: the packed scene holds device pointers.
#pragma once
#include <cuda_runtime.h>

#include "radiant/path.h"

namespace radiant {

// Same contracts as path_cpu.h; all pointers are device pointers (queue itself is a host struct of device
// pointers, or null); run on `stream`.
void path_trace_cuda(const PackedScene& scene, const PathCamera& cam, const PathSettings& settings,
                     const PixelWindow& win, int64_t first_sample, int64_t layers, float* pos_out, float* L_out,
                     const DeferredQueue* queue, cudaStream_t stream);
void film_splat_cuda(double* acc, int32_t width, int32_t height, int32_t channels, const FilmFilter& filter,
                     const SplatWindow& window, const float* pos, const float* values, int64_t layers,
                     cudaStream_t stream);

}  // namespace radiant
