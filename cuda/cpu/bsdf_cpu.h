// Radiant kernels: host entry points of the BSDF family (batched eval / pdf / sample over bsdf.h, CPU loops).
#pragma once
#include <cstdint>

namespace radiant {

// params: (rows, kBSDFParamCount) packed rows (bsdf_params.h). Row of item i: index[i] when index is non-null,
// else 0 when rows == 1 (broadcast), else i. Directions are local-frame float3 arrays of n items.
void bsdf_eval_cpu(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* wo,
                   int64_t n, float* value_out);
void bsdf_pdf_cpu(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* wo,
                  int64_t n, float* pdf_out);
// u1 (n,), u2 (n,2) uniform samples; outputs wo (n,3), weight (n,3), pdf, eta (n,), flags (n,) int32.
void bsdf_sample_cpu(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* u1,
                     const float* u2, int64_t n, float* wo_out, float* weight_out, float* pdf_out, float* eta_out,
                     int32_t* flags_out);

// Warps of warp.h (WarpKind) for tests: u (n,2) -> points (n,3), pdf (n,).
void warp_sample_cpu(int kind, const float* u, float param, int64_t n, float* out, float* pdf_out);

}  // namespace radiant
