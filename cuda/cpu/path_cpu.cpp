// Radiant kernels: CPU loops of the fused path tracer: parallel_chunks over camera samples (one trace_sample each),
// and a film splat parallel over bands of image rows (each band owned by one worker, so no atomics).
#include "path_cpu.h"

#include <cmath>

#include "parallel.h"

namespace radiant {

void path_trace_cpu(const PackedScene& scene, const PathCamera& cam, const PathSettings& settings,
                    int64_t first_sample, int64_t layers, float* pos_out, float* L_out, const DeferredQueue* queue) {
    const int64_t n_pix = (int64_t)cam.width * cam.height;
    // Small chunks: path lengths vary a lot, dynamic scheduling keeps the threads busy.
    parallel_chunks(layers * n_pix, 256, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            trace_sample(scene, cam, settings, i % n_pix, first_sample + i / n_pix, pos_out + 2 * i, L_out + 3 * i,
                         queue);
        }
    });
}

void film_splat_cpu(double* acc, int32_t width, int32_t height, int32_t channels, const FilmFilter& filter,
                    const float* pos, const float* values, int64_t layers) {
    const int64_t n_pix = (int64_t)width * height;
    const int64_t stride = channels + 1;
    if (filter.kind == kFilterBox) {  // a sample lands in its own pixel only
        parallel_chunks(height, 8, [&](int64_t r0, int64_t r1) {
            for (int64_t l = 0; l < layers; ++l) {
                for (int64_t i = l * n_pix + r0 * width; i < l * n_pix + r1 * width; ++i) {
                    int32_t x = clamp_((int32_t)floorf(pos[2 * i]), 0, width - 1);
                    int32_t y = clamp_((int32_t)floorf(pos[2 * i + 1]), 0, height - 1);
                    double* a = acc + ((int64_t)y * width + x) * stride;
                    for (int c = 0; c < channels; ++c) a[c] += (double)values[channels * i + c];
                    a[channels] += 1.0;
                }
            }
        });
        return;
    }
    const float r = filter.radius;
    const int span = (int)std::ceil(2.f * r) + 1;
    const int margin = (int)std::ceil(r) + 1;  // pixel rows whose samples can reach a band
    parallel_chunks(height, 16, [&](int64_t r0, int64_t r1) {
        float wx[16], wy[16];
        int64_t lo = std::max<int64_t>(0, r0 - margin), hi = std::min<int64_t>(height, r1 + margin);
        for (int64_t l = 0; l < layers; ++l) {
            for (int64_t i = l * n_pix + lo * width; i < l * n_pix + hi * width; ++i) {
                float sx = pos[2 * i], sy = pos[2 * i + 1];
                int32_t bx = (int32_t)floorf(sx - r + 0.5f), by = (int32_t)floorf(sy - r + 0.5f);
                bool any = false;
                for (int k = 0; k < span; ++k) {
                    int32_t py = by + k;
                    wy[k] = (py >= r0 && py < r1) ? filter_weight(filter, (float)py + 0.5f - sy) : 0.f;
                    any |= wy[k] > 0.f;
                }
                if (!any) continue;
                for (int k = 0; k < span; ++k) {
                    int32_t px = bx + k;
                    wx[k] = (px >= 0 && px < width) ? filter_weight(filter, (float)px + 0.5f - sx) : 0.f;
                }
                const float* v = values + channels * i;
                for (int ky = 0; ky < span; ++ky) {
                    if (!(wy[ky] > 0.f)) continue;
                    double* row = acc + (int64_t)(by + ky) * width * stride;
                    for (int kx = 0; kx < span; ++kx) {
                        float w = wy[ky] * wx[kx];
                        if (!(w > 0.f)) continue;
                        double* a = row + (int64_t)(bx + kx) * stride;
                        for (int c = 0; c < channels; ++c) a[c] += (double)v[c] * (double)w;
                        a[channels] += (double)w;
                    }
                }
            }
        }
    });
}

}  // namespace radiant
