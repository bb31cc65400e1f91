// Radiant kernels: CPU loops of the BSDF family (parallel_chunks over items, one bsdf.h call each).
#include "bsdf_cpu.h"

#include "parallel.h"

#include "radiant/bsdf.h"

namespace radiant {
namespace {

constexpr int64_t kGrain = 2048;

inline const float* row_of(const float* params, int64_t rows, const int32_t* index, int64_t i) {
    int64_t r = index ? (int64_t)index[i] : (rows == 1 ? 0 : i);
    return params + r * kBSDFParamCount;
}

}  // namespace

void bsdf_eval_cpu(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* wo,
                   int64_t n, float* value_out) {
    parallel_chunks(n, kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            BSDFParams p = BSDFParams::load(row_of(params, rows, index, i));
            bsdf_eval(p, Vec3::load(wi + 3 * i), Vec3::load(wo + 3 * i)).store(value_out + 3 * i);
        }
    });
}

void bsdf_pdf_cpu(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* wo,
                  int64_t n, float* pdf_out) {
    parallel_chunks(n, kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            BSDFParams p = BSDFParams::load(row_of(params, rows, index, i));
            pdf_out[i] = bsdf_pdf(p, Vec3::load(wi + 3 * i), Vec3::load(wo + 3 * i));
        }
    });
}

void bsdf_sample_cpu(const float* params, int64_t rows, const int32_t* index, const float* wi, const float* u1,
                     const float* u2, int64_t n, float* wo_out, float* weight_out, float* pdf_out, float* eta_out,
                     int32_t* flags_out) {
    parallel_chunks(n, kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            BSDFParams p = BSDFParams::load(row_of(params, rows, index, i));
            BSDFSample s = bsdf_sample(p, Vec3::load(wi + 3 * i), u1[i], Vec2(u2[2 * i], u2[2 * i + 1]));
            s.wo.store(wo_out + 3 * i);
            s.weight.store(weight_out + 3 * i);
            pdf_out[i] = s.pdf;
            eta_out[i] = s.eta;
            flags_out[i] = s.flags;
        }
    });
}

void warp_sample_cpu(int kind, const float* u, float param, int64_t n, float* out, float* pdf_out) {
    parallel_chunks(n, kGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            float pdf;
            warp_by_kind(kind, Vec2(u[2 * i], u[2 * i + 1]), param, pdf).store(out + 3 * i);
            pdf_out[i] = pdf;
        }
    });
}

}  // namespace radiant
