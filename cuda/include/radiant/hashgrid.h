// Radiant kernels: multiresolution hash-grid encoding (Mueller et al. 2022, instant-ngp eq. 2-4) with its spatial
// Jacobian, for the reconstructor's SDF field. Per point and level: the 8 cell corners' table rows, their trilinear
// weights and the weights' derivatives d w / d x. Both outputs are linear in the table, so the backward pass is a
// scatter of (weights x grad_features + d weights x grad_jacobian) into the table's gradient; the points get no
// gradient (the trainer's sample points are detached). Matches render/recon/hashgrid.py (the torch reference).
#pragma once
#include <cmath>

#include "radiant/common.h"

namespace radiant {

struct HashGridView {
    int32_t levels = 0;
    int32_t features = 0;           // F per level (<= kHashMaxFeatures)
    uint32_t table_mask = 0;        // T - 1, T a power of two
    float bound = 1.f;              // the grid covers [-bound, bound]^3
    const float* resolutions = nullptr;  // (L,) level resolutions (cells per axis)
    const int32_t* offsets = nullptr;    // (L,) first table row of each level
    const uint8_t* dense = nullptr;      // (L,) 1: (res+1)^3 <= T, dense indexing; 0: spatial hash
};

constexpr int kHashMaxFeatures = 8;

struct HashCorners {
    int32_t row[8];   // table rows (corner c = 4 dx + 2 dy + dz)
    float w[8];       // trilinear weights
    float dw[8][3];   // d w / d x (zero along axes where the point was clamped to the box)
};

RADIANT_HD void hash_corners(const HashGridView& g, int32_t level, const float* p, HashCorners& out) {
    const float res = g.resolutions[level];
    const float scale = res / (2.f * g.bound);
    int32_t lo[3];
    float f[3], inside[3];
    for (int k = 0; k < 3; ++k) {
        float pk = p[k];
        inside[k] = (pk <= g.bound && pk >= -g.bound) ? 1.f : 0.f;
        float x = (clamp_(pk, -g.bound, g.bound) + g.bound) / (2.f * g.bound);
        float s = x * res;
        float c = min_(floorf(s), res - 1.f);
        f[k] = s - c;
        lo[k] = (int32_t)c;
    }
    const int32_t r1 = (int32_t)res + 1;
    const bool dense = g.dense[level] != 0;
    for (int c = 0; c < 8; ++c) {
        int32_t dx = (c >> 2) & 1, dy = (c >> 1) & 1, dz = c & 1;
        int32_t cx = lo[0] + dx, cy = lo[1] + dy, cz = lo[2] + dz;
        uint32_t index;
        if (dense) {
            index = (uint32_t)(cx * (r1 * r1) + cy * r1 + cz);
        } else {
            index = (((uint32_t)cx * 1u) ^ ((uint32_t)cy * 2654435761u) ^ ((uint32_t)cz * 805459861u)) & g.table_mask;
        }
        out.row[c] = g.offsets[level] + (int32_t)index;
        float wx = dx ? f[0] : 1.f - f[0];
        float wy = dy ? f[1] : 1.f - f[1];
        float wz = dz ? f[2] : 1.f - f[2];
        float sx = (dx ? scale : -scale) * inside[0];
        float sy = (dy ? scale : -scale) * inside[1];
        float sz = (dz ? scale : -scale) * inside[2];
        out.w[c] = (wx * wy) * wz;
        out.dw[c][0] = sx * (wy * wz);
        out.dw[c][1] = wx * (sy * wz);
        out.dw[c][2] = (wx * wy) * sz;
    }
}

// features: (L*F) for this point; jacobian: (L*F, 3) or nullptr.
RADIANT_HD void hashgrid_encode_level(const HashGridView& g, const float* table, int32_t level, const float* p,
                                      float* features, float* jacobian) {
    HashCorners hc;
    hash_corners(g, level, p, hc);
    const int32_t F = g.features;
    float acc[kHashMaxFeatures], jac[kHashMaxFeatures][3];
    for (int32_t f = 0; f < F; ++f) {
        acc[f] = 0.f;
        jac[f][0] = jac[f][1] = jac[f][2] = 0.f;
    }
    for (int c = 0; c < 8; ++c) {
        const float* v = table + (int64_t)hc.row[c] * F;
        for (int32_t f = 0; f < F; ++f) {
            acc[f] += hc.w[c] * v[f];
            if (jacobian) {
                jac[f][0] += v[f] * hc.dw[c][0];
                jac[f][1] += v[f] * hc.dw[c][1];
                jac[f][2] += v[f] * hc.dw[c][2];
            }
        }
    }
    for (int32_t f = 0; f < F; ++f) {
        features[level * F + f] = acc[f];
        if (jacobian)
            for (int k = 0; k < 3; ++k) jacobian[(level * F + f) * 3 + k] = jac[f][k];
    }
}

// Adds this point's and level's contribution to the table gradient through `add(row_times_F_plus_f, value)`.
template <typename Add>
RADIANT_HD void hashgrid_backward_level(const HashGridView& g, int32_t level, const float* p, const float* grad_features,
                                        const float* grad_jacobian, const Add& add) {
    HashCorners hc;
    hash_corners(g, level, p, hc);
    const int32_t F = g.features;
    for (int c = 0; c < 8; ++c) {
        for (int32_t f = 0; f < F; ++f) {
            float v = grad_features ? hc.w[c] * grad_features[level * F + f] : 0.f;
            if (grad_jacobian) {
                const float* gj = grad_jacobian + (level * F + f) * 3;
                v += hc.dw[c][0] * gj[0] + hc.dw[c][1] * gj[1] + hc.dw[c][2] * gj[2];
            }
            if (v != 0.f) add((int64_t)hc.row[c] * F + f, v);
        }
    }
}

}  // namespace radiant
