// Radiant kernels: CPU loops of the fused path tracer (trace whole paths per camera sample, splat to the film).
#pragma once
#include "radiant/path.h"

namespace radiant {

// Items i in [0, layers * win.w * win.h): pixel window_pixel(win, i % (w h)), sample index first_sample + i / (w h).
// Writes pos (N,2) (film coordinates) and L (N,3); paths that reach a deferred material go to `queue` (may be null).
void path_trace_cpu(const PackedScene& scene, const PathCamera& cam, const PathSettings& settings,
                    const PixelWindow& win, int64_t first_sample, int64_t layers, float* pos_out, float* L_out,
                    const DeferredQueue* queue);

// Adds the samples of path_trace_cpu's layout over window.src to acc (window.acc.h * window.acc.w, channels + 1)
// float64 (weighted values and the weight sum), with the film's reconstruction filter (render/integrators/path.py
// Film.splat); samples clamp to the film of width x height as in Film.splat.
void film_splat_cpu(double* acc, int32_t width, int32_t height, int32_t channels, const FilmFilter& filter,
                    const SplatWindow& window, const float* pos, const float* values, int64_t layers);

}  // namespace radiant
