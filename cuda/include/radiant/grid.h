// Radiant kernels: multi-level occupancy grid (instant-ngp cascades) and its ray marcher with empty-cell skipping.
// Written once for the host and the device (RADIANT_HD); render/kernels/grid.py holds the pure-torch twin.
#pragma once
#include "clip.h"
#include "common.h"
#include "exact.h"
#include "vec.h"

namespace radiant {

constexpr int kGridMaxLevels = 16;

// Cascades as in instant-ngp (Mueller et al. 2022, Sec. 4 "Occupancy grids"): level l covers the base box
// scaled by 2^l about its center, each level res[0] x res[1] x res[2] cells. The per-level boxes and
// scales are computed once in torch (float32) and passed in, so the kernel and the reference use the same
// numbers. `binary` is one byte per cell (0 empty, nonzero occupied), layout [level][x][y][z].
struct GridView {
    const uint8_t* binary;
    const float* level_lo;     // (levels, 3)
    const float* level_hi;     // (levels, 3)
    const float* level_scale;  // (levels, 3) = res / (hi - lo)
    int32_t levels;
    int32_t res[3];
};

// Where a point falls: the finest level whose box contains it (-1: outside every level) and its cell.
struct GridCell {
    int32_t level;
    int32_t idx[3];
};

RADIANT_HD bool in_level_box(const GridView& g, int l, const Vec3& p) {
    const float* lo = g.level_lo + 3 * l;
    const float* hi = g.level_hi + 3 * l;
    return p.x >= lo[0] && p.x <= hi[0] && p.y >= lo[1] && p.y <= hi[1] && p.z >= lo[2] && p.z <= hi[2];
}

// Cell index along one axis: floor((p - lo) * scale), clamped to [0, res - 1] (the box's far face belongs
// to the last cell). Monotone in p, which the skip verification below relies on.
RADIANT_HD int32_t cell_index(float p, float lo, float scale, int32_t res) {
    float f = floorf((p - lo) * scale);
    f = f > 0.f ? f : 0.f;  // also maps NaN to 0, so a malformed input can never index out of bounds
    f = f < (float)(res - 1) ? f : (float)(res - 1);
    return (int32_t)f;
}

RADIANT_HD GridCell locate(const GridView& g, const Vec3& p) {
    GridCell c;
    c.level = -1;
    c.idx[0] = c.idx[1] = c.idx[2] = 0;
    for (int l = 0; l < g.levels; ++l) {
        if (!in_level_box(g, l, p)) continue;
        c.level = l;
        for (int a = 0; a < 3; ++a) c.idx[a] = cell_index(p[a], g.level_lo[3 * l + a], g.level_scale[3 * l + a], g.res[a]);
        break;
    }
    return c;
}

RADIANT_HD bool cell_occupied(const GridView& g, const GridCell& c) {
    if (c.level < 0) return false;
    int64_t i = (((int64_t)c.level * g.res[0] + c.idx[0]) * g.res[1] + c.idx[1]) * g.res[2] + c.idx[2];
    return g.binary[i] != 0;
}

// The marching interval of one ray: [near, far] clipped to the outermost level's box (a miss gives t0 > t1).
// t_exit is finite for a nonzero direction, so the candidates below are finitely many.
RADIANT_HD void grid_ray_interval(const GridView& g, const Vec3& o, const Vec3& d, float near, float far, float& t0,
                                  float& t1) {
    int l = g.levels - 1;
    clip_ray_to_box(o, d, Vec3::load(g.level_lo + 3 * l), Vec3::load(g.level_hi + 3 * l), near, far, t0, t1);
}

// Candidate k of a ray: the interval [t_enter + k*step, +step]; the reference (grid.py) does the same float ops.
RADIANT_HD float sample_start(float t_enter, int64_t k, float step) { return add_rn(t_enter, mul_rn((float)k, step)); }
RADIANT_HD Vec3 sample_midpoint(const Vec3& o, const Vec3& d, float t_start, float half_step) {
    float t_mid = t_start + half_step;
    return ray_point(o, t_mid, d);
}

// True when every candidate strictly between two samples a and b (both in the same cell `c`) must land in `c`
// too, by monotonicity along the ray: each coordinate of o + t*d, the cell index and each box test per axis are
// monotone in k. Same cell index at both ends pins the index in between; both inside level c.level's box pins
// that; and for each finer level, an axis on which both ends lie outside on the same side keeps everything in
// between outside it, so the finest containing level cannot change.
RADIANT_HD bool same_cell_between(const GridView& g, const GridCell& c, const Vec3& pa, const Vec3& pb) {
    GridCell cb = locate(g, pb);
    if (cb.level != c.level || cb.idx[0] != c.idx[0] || cb.idx[1] != c.idx[1] || cb.idx[2] != c.idx[2]) return false;
    for (int l = 0; l < c.level; ++l) {
        const float* lo = g.level_lo + 3 * l;
        const float* hi = g.level_hi + 3 * l;
        bool separated = false;
        for (int a = 0; a < 3 && !separated; ++a)
            separated = (pa[a] < lo[a] && pb[a] < lo[a]) || (pa[a] > hi[a] && pb[a] > hi[a]);
        if (!separated) return false;
    }
    return true;
}

// Estimate of the last candidate whose midpoint is still in the empty cell `c` (the DDA step of Amanatides &
// Woo 1987, "A Fast Voxel Traversal Algorithm"): the ray's exit from the cell, or its entry into the next finer
// level's box if that comes first. Only a guess; march_ray verifies it with same_cell_between.
RADIANT_HD int64_t empty_cell_last_k(const GridView& g, const GridCell& c, const Vec3& o, const Vec3& d,
                                     float t_enter, float t_mid, float step, float half_step) {
    int l = c.level;
    const float* lo = g.level_lo + 3 * l;
    const float* scale = g.level_scale + 3 * l;
    float t_leave = kInf;
    for (int a = 0; a < 3; ++a) {
        if (d[a] == 0.f) continue;
        int32_t face = c.idx[a] + (d[a] > 0.f ? 1 : 0);
        float x = lo[a] + (float)face / scale[a];
        t_leave = min_(t_leave, (x - o[a]) / d[a]);
    }
    if (l > 0) {
        float f0, f1;
        clip_ray_to_box(o, d, Vec3::load(g.level_lo + 3 * (l - 1)), Vec3::load(g.level_hi + 3 * (l - 1)), t_mid, kInf,
                        f0, f1);
        if (f0 <= f1) t_leave = min_(t_leave, f0);
    }
    // Largest k with t_enter + k*step + step/2 < t_leave, less one for rounding; in double to avoid overflow.
    double k = floor(((double)t_leave - (double)t_enter - (double)half_step) / (double)step) - 1.0;
    if (!(k < 4.0e18)) k = 4.0e18;
    return (int64_t)k;
}

// Marches one ray and calls emit(t_start, t_end) for each kept sample, in order, at most max_samples times.
// DEFINITION (the reference enumerates every k): candidate k = 0, 1, ... has t_start = t_enter + k*step and
// t_end = t_start + step, and exists while t_end <= t_exit; it is kept iff its midpoint lies in an occupied
// cell of the finest level containing it. Empty cells are skipped in jumps that are verified exact.
template <typename Emit>
RADIANT_HD int64_t march_ray(const GridView& g, const Vec3& o, const Vec3& d, float near, float far, float step,
                             int64_t max_samples, Emit&& emit) {
    float t_enter, t_exit;
    grid_ray_interval(g, o, d, near, far, t_enter, t_exit);
    int64_t count = 0;
    if (!(t_enter <= t_exit) || max_samples <= 0) return 0;
    float half_step = step * 0.5f;
    int64_t k = 0;
    while (true) {
        float t_start = sample_start(t_enter, k, step);
        float t_end = t_start + step;
        if (!(t_end <= t_exit)) break;
        Vec3 p = sample_midpoint(o, d, t_start, half_step);
        GridCell c = locate(g, p);
        if (cell_occupied(g, c)) {
            emit(t_start, t_end);
            if (++count >= max_samples) break;
            ++k;
            continue;
        }
        if (c.level < 0) { ++k; continue; }
        // Empty cell: jump to the estimated last candidate in it, halving the jump until the verification holds.
        int64_t kb = empty_cell_last_k(g, c, o, d, t_enter, t_start + half_step, step, half_step);
        while (kb > k + 1) {
            float tb = sample_start(t_enter, kb, step);
            if (tb + step <= t_exit && same_cell_between(g, c, p, sample_midpoint(o, d, tb, half_step))) break;
            kb = k + (kb - k) / 2;
        }
        // kb (when > k + 1) is verified to be in the same empty cell, so k + 1 .. kb are all skipped.
        k = kb > k + 1 ? kb + 1 : k + 1;
    }
    return count;
}

}  // namespace radiant
