// Radiant kernels: CUDA launchers of the BSDF family. Torch-free: raw device pointers and sizes.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace radiant {

// Same contracts as bsdf_cpu.h; all pointers are device pointers; run on `stream`.
void bsdf_eval_cuda(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* wo,
                    int64_t n, float* value_out, cudaStream_t stream);
void bsdf_pdf_cuda(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* wo,
                   int64_t n, float* pdf_out, cudaStream_t stream);
void bsdf_sample_cuda(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* u1,
                      const float* u2, int64_t n, float* wo_out, float* weight_out, float* pdf_out, float* eta_out,
                      int32_t* flags_out, cudaStream_t stream);

void warp_sample_cuda(int kind, const float* u, float param, int64_t n, float* out, float* pdf_out,
                      cudaStream_t stream);

}  // namespace radiant
