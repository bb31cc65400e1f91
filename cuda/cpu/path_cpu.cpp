// Radiant kernels: CPU loops of the fused path tracer: parallel_chunks over camera samples (kLanes paths at a time
// through path_lanes.h's trace_lanes where the scene's BSDFs have lane forms, else one trace_sample each), and a
// film splat parallel over bands of image rows (each band owned by one worker, so no atomics).
#include "path_cpu.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "bvh_cpu.h"
#include "parallel.h"
#include "path_lanes.h"

namespace radiant {

#if RADIANT_WIDE_BVH
namespace {

// 64-bit hash of a byte range, 8 bytes a step (splitmix64 finalizer per word): a few ms for a million triangles,
// against ~100 ms to widen them again.
uint64_t hash_bytes(const void* data, size_t n, uint64_t h) {
    const unsigned char* p = static_cast<const unsigned char*>(data);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        h = splitmix64(h ^ w);
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p + i, n - i);
    return splitmix64(h ^ tail ^ (uint64_t)n);
}

// The 8-wide tree of the last scene traced, reused while the 4-wide tree and primitives are the same (by content:
// the tensors may be freed and their memory reused between calls).
std::shared_ptr<const WideBVH> cached_wide_tree(const PackedScene& scene) {
    static std::mutex mutex;
    static uint64_t cached_key = 0;
    static std::shared_ptr<const WideBVH> cached;
    int64_t num_prims = 0;  // leaf ranges end at the primitive count
    for (int32_t i = 0; i < scene.num_nodes; ++i)
        for (int k = 0; k < 4; ++k)
            if (scene.nodes[i].count[k] > 0)
                num_prims = std::max<int64_t>(num_prims, (int64_t)scene.nodes[i].child[k] + scene.nodes[i].count[k]);
    uint64_t key = hash_bytes(scene.nodes, sizeof(BVHNode4) * (size_t)scene.num_nodes, 0x5EEDull);
    key = hash_bytes(scene.prims, sizeof(float) * kPrimStride * (size_t)num_prims, key);
    std::lock_guard<std::mutex> lock(mutex);
    if (!cached || key != cached_key) {
        cached = std::make_shared<const WideBVH>(
            bvh_widen_cpu(scene.nodes, scene.num_nodes, scene.prims, num_prims, kWideLeafPrims));
        cached_key = key;
    }
    return cached;
}

}  // namespace
#endif

#if RADIANT_PACKET_BVH
constexpr int kCameraPacketSwitch = 2;
constexpr int64_t kPacketNodes = 16;
#endif

void path_trace_cpu(const PackedScene& scene, const PathCamera& cam, const PathSettings& settings,
                    const PixelWindow& win, int64_t first_sample, int64_t layers, float* pos_out, float* L_out,
                    const DeferredQueue* queue) {
    const int64_t n_pix = (int64_t)win.w * win.h;
#if RADIANT_WIDE_BVH
    // The 8-wide tree of this scene (built on the first call). Traced where widening made a smaller tree; where it
    // is the 4-wide tree again (a handful of primitives, e.g. the spheres scene) the 4-wide traversal measured a few
    // percent faster in the whole path tracer.
    const std::shared_ptr<const WideBVH> wide = cached_wide_tree(scene);
    const WideBVHView view = wide->view();
    PackedScene sc = scene;
    sc.wide = &view;
    const bool use_wide = (int64_t)wide->nodes.size() < scene.num_nodes;
#else
    const PackedScene& sc = scene;
    const bool use_wide = false;
#endif
    // The lane loop (path_lanes.h) where every BSDF of the scene has its eval, pdf and sampling in lane form
    // (diffuse, plastic, dielectric, roughconductor / roughplastic with either distribution); elsewhere the scalar
    // loop, which measured faster where BSDFs go lane by lane. Beckmann lobes run in lanes since their libm calls
    // (erf / log / exp of the visible-normal sampling and D) are made on the lanes that need them only (lights:
    // lanes 1.15x of scalar, before that 0.86x). RADIANT_SCALAR_PATHS=1 / 0 forces the scalar / the lane loop (same
    // image either way, bit for bit: tests/render/test_lanes_path.py compares the two).
    bool lanes = true;
    for (int32_t r = 0; r < scene.num_bsdf_rows; ++r) {
        const int type = (int)scene.bsdf_rows[(int64_t)r * kBSDFParamCount + kParam_type];
        lanes = lanes && (type == kBSDF_diffuse || type == kBSDF_plastic || type == kBSDF_dielectric ||
                          type == kBSDF_roughconductor || type == kBSDF_roughplastic);
    }
    // The lane loop's gathers index their tables with int32 element offsets (lane.h gather_): 3 x the faces and the
    // vertices, 3 x (w + 1) x h for the envmap image.
    const int64_t kGatherMax = (int64_t)1 << 31;
    lanes = lanes && 3 * (int64_t)scene.num_triangles < kGatherMax && 3 * scene.num_vertices < kGatherMax &&
            3 * (int64_t)(scene.env_w + 1) * scene.env_h < kGatherMax;
    const char* force = std::getenv("RADIANT_SCALAR_PATHS");
    if (force != nullptr && (force[0] == '0' || force[0] == '1')) lanes = force[0] == '0';
    if (lanes) {
        // Rays as packets (bvh_wide.h packet_traverse: 16 rays with AVX-512, 8 with AVX2): the camera rays of a lane
        // group's worth of consecutive samples, traced ahead as one packet, hand a subtree's rays over to single-ray
        // traversal where at most
        // kCameraPacketSwitch of them are left in it; the lane group's other rays (closest hits after the first
        // bounce, shadow rays; incoherent) go as pure packets on small trees (at most kPacketNodes 8-wide nodes:
        // there a packet visits about the nodes each of its rays would, and saves the per-ray setup and branches)
        // and one ray at a time on larger ones, where packets of incoherent rays measured slower. -1: one ray at a
        // time. RADIANT_PACKET_RAYS=n sets both (n = -1: no packets).
        int packet_camera = -1, packet = -1;
#if RADIANT_PACKET_BVH
        packet_camera = kCameraPacketSwitch;
        packet = (int64_t)wide->nodes.size() <= kPacketNodes ? 0 : -1;
        if (const char* p = std::getenv("RADIANT_PACKET_RAYS")) packet = packet_camera = std::atoi(p);
#endif
        // Chunks of whole lane groups: idle lanes refill from their chunk, only its tail runs partly empty.
        parallel_chunks(layers * n_pix, 64 * kLanes, [&](int64_t begin, int64_t end) {
            if (use_wide)
                trace_lanes<true>(sc, cam, settings, win, first_sample, begin, end, pos_out, L_out, queue,
                                  packet_camera, packet);
            else
                trace_lanes<false>(sc, cam, settings, win, first_sample, begin, end, pos_out, L_out, queue,
                                   packet_camera, packet);
        });
        return;
    }
    // Small chunks: path lengths vary a lot, dynamic scheduling keeps the threads busy.
    parallel_chunks(layers * n_pix, 256, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
            const int64_t pixel = window_pixel(win, cam.width, i % n_pix), sample = first_sample + i / n_pix;
            if (use_wide)
                trace_sample<true>(sc, cam, settings, pixel, sample, pos_out + 2 * i, L_out + 3 * i, queue);
            else
                trace_sample<false>(sc, cam, settings, pixel, sample, pos_out + 2 * i, L_out + 3 * i, queue);
        }
    });
}

#if defined(__AVX512F__) && defined(__AVX512VL__)
// One footprint row of an RGB sample: for taps k < n (n <= 6), acc[4k .. 4k + 3] += (r, g, b, 1) * w_k with
// w_k = (double)(wy * wx[k]): the scalar loop's operations per element (float product, double product and sum;
// 1 * w is w), two taps (eight doubles) per AVX-512 register.
using SplatVals = __m512d;
inline SplatVals splat_vals(const float* v) {  // (r, g, b, 1) twice
    return _mm512_set_pd(1.0, (double)v[2], (double)v[1], (double)v[0], 1.0, (double)v[2], (double)v[1], (double)v[0]);
}
inline void splat_row_rgb(double* a, const float* wx, float wy, int n, SplatVals vals) {
    const __m256 wf = _mm256_mul_ps(_mm256_set1_ps(wy), _mm256_maskz_loadu_ps((__mmask8)((1u << n) - 1u), wx));
    const __m512d wd = _mm512_cvtps_pd(wf);
    const int m = 4 * n;  // doubles in the row
    for (int j = 0; j < 3 && 8 * j < m; ++j) {
        const __m512d w = _mm512_permutexvar_pd(
            _mm512_set_epi64(2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j + 1, 2 * j, 2 * j, 2 * j, 2 * j), wd);
        const int left = m - 8 * j;
        const __mmask8 mask = (__mmask8)(left >= 8 ? 0xFFu : (1u << left) - 1u);
        double* p = a + 8 * j;
        _mm512_mask_storeu_pd(p, mask, _mm512_add_pd(_mm512_maskz_loadu_pd(mask, p), _mm512_mul_pd(vals, w)));
    }
}
#define RADIANT_SPLAT_ROWS 1
#elif defined(__AVX2__)
// The same with AVX2: one tap (four doubles) per register.
using SplatVals = __m256d;
inline SplatVals splat_vals(const float* v) { return _mm256_set_pd(1.0, (double)v[2], (double)v[1], (double)v[0]); }
inline void splat_row_rgb(double* a, const float* wx, float wy, int n, SplatVals vals) {
    for (int k = 0; k < n; ++k) {
        const __m256d w = _mm256_set1_pd((double)(wy * wx[k]));
        double* p = a + 4 * k;
        _mm256_storeu_pd(p, _mm256_add_pd(_mm256_loadu_pd(p), _mm256_mul_pd(vals, w)));
    }
}
#define RADIANT_SPLAT_ROWS 1
#else
#define RADIANT_SPLAT_ROWS 0
#endif

void film_splat_cpu(double* acc, int32_t width, int32_t height, int32_t channels, const FilmFilter& filter,
                    const SplatWindow& window, const float* pos, const float* values, int64_t layers) {
    const PixelWindow& src = window.src;
    const PixelWindow& dst = window.acc;
    const int64_t n_src = (int64_t)src.w * src.h;
    const int64_t stride = channels + 1;
    if (filter.kind == kFilterBox) {  // a sample lands in its own pixel only
        parallel_chunks(src.h, 8, [&](int64_t r0, int64_t r1) {
            for (int64_t l = 0; l < layers; ++l) {
                for (int64_t i = l * n_src + r0 * src.w; i < l * n_src + r1 * src.w; ++i) {
                    int32_t x = clamp_((int32_t)floorf(pos[2 * i]), 0, width - 1) - dst.x0;
                    int32_t y = clamp_((int32_t)floorf(pos[2 * i + 1]), 0, height - 1) - dst.y0;
                    if (x < 0 || x >= dst.w || y < 0 || y >= dst.h) continue;
                    double* a = acc + ((int64_t)y * dst.w + x) * stride;
                    for (int c = 0; c < channels; ++c) a[c] += (double)values[channels * i + c];
                    a[channels] += 1.0;
                }
            }
        });
        return;
    }
    // RADIANT_SCALAR_SPLAT=1: the scalar accumulation loop only (tests compare the two, bit for bit).
    const char* scalar_env = std::getenv("RADIANT_SCALAR_SPLAT");
    [[maybe_unused]] const bool scalar_splat = scalar_env != nullptr && scalar_env[0] == '1';
    const float r = filter.radius;
    const int span = (int)std::ceil(2.f * r) + 1;
    const int margin = (int)std::ceil(r) + 1;  // pixel rows whose samples can reach a band
    // Bands of accumulator rows, each owned by one worker (no atomics); rows and columns in film coordinates.
    parallel_chunks(dst.h, 16, [&](int64_t b0, int64_t b1) {
        const int64_t r0 = dst.y0 + b0, r1 = dst.y0 + b1;
        float wx[16], wy[16];
        int64_t lo = std::max<int64_t>(0, r0 - margin - src.y0), hi = std::min<int64_t>(src.h, r1 + margin - src.y0);
        if (lo >= hi) return;
        for (int64_t l = 0; l < layers; ++l) {
            const int64_t i_end = l * n_src + hi * src.w;
            for (int64_t g = l * n_src + lo * src.w; g < i_end; g += kLanes) {
                // The taps of kLanes samples at once, in lanes (filter_weight<LaneF>): sample g + j's tap k in
                // tx[k][j] and ty[k][j] (a short last group repeats its last sample); tap k of a footprint that
                // starts at pixel b has its centre at b + k + 0.5.
                const int n = (int)std::min<int64_t>(kLanes, i_end - g);
                float gx[kLanes], gy[kLanes], bxs[kLanes], bys[kLanes], tx[16][kLanes], ty[16][kLanes];
                for (int j = 0; j < kLanes; ++j) {
                    const int64_t i = g + min_(j, n - 1);
                    gx[j] = pos[2 * i];
                    gy[j] = pos[2 * i + 1];
                }
                const LaneF sxl = LaneF::load(gx), syl = LaneF::load(gy);
                const LaneF bxl = floor_(sxl - r + 0.5f), byl = floor_(syl - r + 0.5f);
                bxl.store(bxs);
                byl.store(bys);
                for (int k = 0; k < span; ++k) {
                    filter_weight(filter, bxl + (float)k + 0.5f - sxl).store(tx[k]);
                    filter_weight(filter, byl + (float)k + 0.5f - syl).store(ty[k]);
                }
                for (int j = 0; j < n; ++j) {
                    const int64_t i = g + j;
                    const int32_t bx = (int32_t)bxs[j], by = (int32_t)bys[j];
                    if (by + span <= r0 || by >= r1) continue;  // no footprint row in this band
                    for (int k = 0; k < span; ++k) {
                        wx[k] = tx[k][j];
                        wy[k] = ty[k][j];
                    }
                    // Footprint rows inside the band and columns inside the accumulator with a positive weight: the
                    // filters are unimodal, so each is one run of taps [lo, hi).
                    int y_lo = max_(0, (int)(r0 - by)), y_hi = min_(span, (int)(r1 - by));
                    while (y_lo < y_hi && !(wy[y_lo] > 0.f)) ++y_lo;
                    while (y_hi > y_lo && !(wy[y_hi - 1] > 0.f)) --y_hi;
                    if (y_lo >= y_hi) continue;
                    int x_lo = max_(0, dst.x0 - bx), x_hi = min_(span, dst.x0 + dst.w - bx);
                    while (x_lo < x_hi && !(wx[x_lo] > 0.f)) ++x_lo;
                    while (x_hi > x_lo && !(wx[x_hi - 1] > 0.f)) --x_hi;
                    const float* v = values + channels * i;
#if RADIANT_SPLAT_ROWS
                    if (channels == 3 && x_hi - x_lo <= 6 && !scalar_splat) {  // the rows below, vectorized
                        const SplatVals vals = splat_vals(v);
                        for (int ky = y_lo; ky < y_hi; ++ky)
                            splat_row_rgb(acc + ((int64_t)(by + ky - dst.y0) * dst.w + (bx + x_lo - dst.x0)) * stride,
                                          wx + x_lo, wy[ky], x_hi - x_lo, vals);
                        continue;
                    }
#endif
                    for (int ky = y_lo; ky < y_hi; ++ky) {
                        double* row = acc + (int64_t)(by + ky - dst.y0) * dst.w * stride;
                        for (int kx = x_lo; kx < x_hi; ++kx) {
                            double w = (double)(wy[ky] * wx[kx]);
                            double* a = row + (int64_t)(bx + kx - dst.x0) * stride;
                            if (channels == 3) {  // colour: unrolled
                                a[0] += (double)v[0] * w;
                                a[1] += (double)v[1] * w;
                                a[2] += (double)v[2] * w;
                                a[3] += w;
                            } else {
                                for (int c = 0; c < channels; ++c) a[c] += (double)v[c] * w;
                                a[channels] += w;
                            }
                        }
                    }
                }
            }
        }
    });
}

}  // namespace radiant
