// Radiant kernels: CUDA fused path tracer over path.h (one thread per camera sample, the whole path), and the
// film splat with atomics.
#include "path_gpu.h"

namespace radiant {
namespace {

constexpr int kThreads = 128;

__global__ void path_trace_kernel(PackedScene scene, PathCamera cam, PathSettings settings, PixelWindow win,
                                  int64_t first_sample, int64_t n, float* pos_out, float* L_out, DeferredQueue queue,
                                  bool has_queue) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const int64_t n_pix = (int64_t)win.w * win.h;
    trace_sample(scene, cam, settings, window_pixel(win, cam.width, i % n_pix), first_sample + i / n_pix,
                 pos_out + 2 * i, L_out + 3 * i, has_queue ? &queue : nullptr);
}

__global__ void film_splat_kernel(double* acc, int32_t width, int32_t height, int32_t channels, FilmFilter filter,
                                  SplatWindow window, const float* pos, const float* values, int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const PixelWindow dst = window.acc;
    const int64_t stride = channels + 1;
    float sx = pos[2 * i], sy = pos[2 * i + 1];
    const float* v = values + channels * i;
    if (filter.kind == kFilterBox) {
        int32_t x = clamp_((int32_t)floorf(sx), 0, width - 1) - dst.x0;
        int32_t y = clamp_((int32_t)floorf(sy), 0, height - 1) - dst.y0;
        if (x < 0 || x >= dst.w || y < 0 || y >= dst.h) return;
        double* a = acc + ((int64_t)y * dst.w + x) * stride;
        for (int c = 0; c < channels; ++c) atomicAdd(a + c, (double)v[c]);
        atomicAdd(a + channels, 1.0);
        return;
    }
    float r = filter.radius;
    int span = (int)ceilf(2.f * r) + 1;
    int32_t bx = (int32_t)floorf(sx - r + 0.5f), by = (int32_t)floorf(sy - r + 0.5f);
    for (int ky = 0; ky < span; ++ky) {
        int32_t py = by + ky;
        if (py < dst.y0 || py >= dst.y0 + dst.h) continue;
        float wy = filter_weight(filter, (float)py + 0.5f - sy);
        if (!(wy > 0.f)) continue;
        for (int kx = 0; kx < span; ++kx) {
            int32_t px = bx + kx;
            if (px < dst.x0 || px >= dst.x0 + dst.w) continue;
            float w = wy * filter_weight(filter, (float)px + 0.5f - sx);
            if (!(w > 0.f)) continue;
            double* a = acc + ((int64_t)(py - dst.y0) * dst.w + (px - dst.x0)) * stride;
            for (int c = 0; c < channels; ++c) atomicAdd(a + c, (double)v[c] * (double)w);
            atomicAdd(a + channels, (double)w);
        }
    }
}

unsigned blocks_for(int64_t n) { return (unsigned)((n + kThreads - 1) / kThreads); }

}  // namespace

void path_trace_cuda(const PackedScene& scene, const PathCamera& cam, const PathSettings& settings,
                     const PixelWindow& win, int64_t first_sample, int64_t layers, float* pos_out, float* L_out,
                     const DeferredQueue* queue, cudaStream_t stream) {
    int64_t n = layers * (int64_t)win.w * win.h;
    if (n == 0) return;
    DeferredQueue q = queue ? *queue : DeferredQueue{nullptr, 0, nullptr};
    path_trace_kernel<<<blocks_for(n), kThreads, 0, stream>>>(scene, cam, settings, win, first_sample, n, pos_out,
                                                              L_out, q, queue != nullptr);
}

void film_splat_cuda(double* acc, int32_t width, int32_t height, int32_t channels, const FilmFilter& filter,
                     const SplatWindow& window, const float* pos, const float* values, int64_t layers,
                     cudaStream_t stream) {
    int64_t n = layers * (int64_t)window.src.w * window.src.h;
    if (n == 0) return;
    film_splat_kernel<<<blocks_for(n), kThreads, 0, stream>>>(acc, width, height, channels, filter, window, pos,
                                                              values, n);
}

}  // namespace radiant
