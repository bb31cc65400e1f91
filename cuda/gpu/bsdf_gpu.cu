// Radiant kernels: CUDA eval / pdf / sample over bsdf.h (one thread per item).
#include "bsdf_gpu.h"
#include "radiant/bsdf.h"

namespace radiant {
namespace {

constexpr int kThreads = 128;

__device__ __forceinline__ const float* row_of(const float* params, int64_t rows, const int32_t* index, int64_t i) {
    int64_t r = index ? (int64_t)index[i] : (rows == 1 ? 0 : i);
    return params + r * kBSDFParamCount;
}

__global__ void bsdf_eval_kernel(const float* __restrict__ params, int64_t rows, const int32_t* __restrict__ index,
                                 const float* __restrict__ wi, const float* __restrict__ wo, int64_t n,
                                 float* value_out) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    BSDFParams p = BSDFParams::load(row_of(params, rows, index, i));
    bsdf_eval(p, Vec3::load(wi + 3 * i), Vec3::load(wo + 3 * i)).store(value_out + 3 * i);
}

__global__ void bsdf_pdf_kernel(const float* __restrict__ params, int64_t rows, const int32_t* __restrict__ index,
                                const float* __restrict__ wi, const float* __restrict__ wo, int64_t n,
                                float* pdf_out) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    BSDFParams p = BSDFParams::load(row_of(params, rows, index, i));
    pdf_out[i] = bsdf_pdf(p, Vec3::load(wi + 3 * i), Vec3::load(wo + 3 * i));
}

__global__ void bsdf_sample_kernel(const float* __restrict__ params, int64_t rows, const int32_t* __restrict__ index,
                                   const float* __restrict__ wi, const float* __restrict__ u1,
                                   const float* __restrict__ u2, int64_t n, float* wo_out, float* weight_out,
                                   float* pdf_out, float* eta_out, int32_t* flags_out) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    BSDFParams p = BSDFParams::load(row_of(params, rows, index, i));
    BSDFSample s = bsdf_sample(p, Vec3::load(wi + 3 * i), u1[i], Vec2(u2[2 * i], u2[2 * i + 1]));
    s.wo.store(wo_out + 3 * i);
    s.weight.store(weight_out + 3 * i);
    pdf_out[i] = s.pdf;
    eta_out[i] = s.eta;
    flags_out[i] = s.flags;
}

__global__ void warp_sample_kernel(int kind, const float* __restrict__ u, float param, int64_t n, float* out,
                                   float* pdf_out) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float pdf;
    warp_by_kind(kind, Vec2(u[2 * i], u[2 * i + 1]), param, pdf).store(out + 3 * i);
    pdf_out[i] = pdf;
}

unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

}  // namespace

void bsdf_eval_cuda(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* wo,
                    int64_t n, float* value_out, cudaStream_t stream) {
    if (n == 0) return;
    bsdf_eval_kernel<<<blocks_for(n), kThreads, 0, stream>>>(params, rows, index, wi, wo, n, value_out);
}

void bsdf_pdf_cuda(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* wo,
                   int64_t n, float* pdf_out, cudaStream_t stream) {
    if (n == 0) return;
    bsdf_pdf_kernel<<<blocks_for(n), kThreads, 0, stream>>>(params, rows, index, wi, wo, n, pdf_out);
}

void bsdf_sample_cuda(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* u1,
                      const float* u2, int64_t n, float* wo_out, float* weight_out, float* pdf_out, float* eta_out,
                      int32_t* flags_out, cudaStream_t stream) {
    if (n == 0) return;
    bsdf_sample_kernel<<<blocks_for(n), kThreads, 0, stream>>>(params, rows, index, wi, u1, u2, n, wo_out,
                                                               weight_out, pdf_out, eta_out, flags_out);
}

void warp_sample_cuda(int kind, const float* u, float param, int64_t n, float* out, float* pdf_out,
                      cudaStream_t stream) {
    if (n == 0) return;
    warp_sample_kernel<<<blocks_for(n), kThreads, 0, stream>>>(kind, u, param, n, out, pdf_out);
}

}  // namespace radiant
