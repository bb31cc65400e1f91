// Radiant kernels: the CPU's 8-wide BVH (AVX2), after Embree's BVH8 + Triangle4 (Wald et al. 2014, "Embree: A
// Kernel Framework for Efficient CPU Ray Tracing"): one SIMD slab test for a node's eight children (SoA boxes),
// near-first ordering of the children hit, and leaves of SoA packets of four triangles tested at once with the
// watertight test of bvh.h (Woop et al. 2013), lane for lane the same arithmetic, so every triangle gives the
// bit-identical t, u, v of the scalar test. Spheres keep their scalar test (sphere packets only list them).
//
// Host only: compiled out under nvcc and on CPUs without AVX2 (RADIANT_WIDE_BVH == 0), where the 4-wide tree of
// bvh.h traces instead. The 8-wide tree is derived from the 4-wide one (cpu/bvh_cpu.cpp bvh_widen_cpu) and keeps
// its leaf order: a packet lane holds the leaf-order index into bvh.h's prims / prim_ids, so hits come back in the
// same terms (`best`) as bvh.h's traversal.
#pragma once
#include "bvh.h"

#if !defined(__CUDACC__) && defined(__AVX2__)
#define RADIANT_WIDE_BVH 1
#include <immintrin.h>
#else
#define RADIANT_WIDE_BVH 0
#endif

namespace radiant {

constexpr int kWide = 8;

// 256-byte node: child slot k is empty (count < 0, inverted box), an interior node (count == 0, child = node
// index) or a leaf (count > 0: packets [child, child + count)). Box arrays in the order lo_x, hi_x, lo_y, hi_y,
// lo_z, hi_z, so the near/far plane of an axis is at a fixed offset per ray.
struct alignas(32) WideNode {
    float box[6][kWide];
    int32_t child[kWide];
    int32_t count[kWide];
};
static_assert(sizeof(WideNode) == 256, "WideNode must stay 256 bytes");

// Four primitives of one leaf: v[3 * vertex + axis][lane] for triangles; unused lanes have NaN vertices (never hit)
// and id -1. Sphere packets carry only ids (their data stays in prims) and kind 1.
struct alignas(16) TriPacket {
    float v[9][4];
    int32_t id[4];    // leaf-order index into prims / prim_ids, -1 for an unused lane
    int32_t kind;     // 0 triangles, 1 spheres
    int32_t pad[3];
};
static_assert(sizeof(TriPacket) == 176, "TriPacket layout");

struct WideBVHView {
    const WideNode* nodes;
    const TriPacket* packets;
    int32_t root_child, root_count;  // the root slot (a leaf when the whole scene fits one)
};

#if RADIANT_WIDE_BVH

struct WideStackEntry {
    int32_t child, count;
    float t;
};
constexpr int kWideMaxStack = (kWide - 1) * 64;

// Watertight test of a triangle packet (bvh.h intersect_triangle, four lanes): returns the mask of lanes hit inside
// (tmin, tmax) and their t, u, v.
inline int packet_triangles(const TriPacket& pk, const WatertightRay& r, float tmin, float tmax, __m128& t_out,
                            __m128& u_out, __m128& v_out) {
    const int kx = r.kx, ky = r.ky, kz = r.kz;
    const __m128 okx = _mm_set1_ps(r.okx), oky = _mm_set1_ps(r.oky), okz = _mm_set1_ps(r.okz);
    const __m128 sx = _mm_set1_ps(r.sx), sy = _mm_set1_ps(r.sy), sz = _mm_set1_ps(r.sz);
    const __m128 az = _mm_sub_ps(_mm_load_ps(pk.v[kz]), okz);
    const __m128 bz = _mm_sub_ps(_mm_load_ps(pk.v[3 + kz]), okz);
    const __m128 cz = _mm_sub_ps(_mm_load_ps(pk.v[6 + kz]), okz);
    const __m128 ax = _mm_sub_ps(_mm_sub_ps(_mm_load_ps(pk.v[kx]), okx), _mm_mul_ps(sx, az));
    const __m128 ay = _mm_sub_ps(_mm_sub_ps(_mm_load_ps(pk.v[ky]), oky), _mm_mul_ps(sy, az));
    const __m128 bx = _mm_sub_ps(_mm_sub_ps(_mm_load_ps(pk.v[3 + kx]), okx), _mm_mul_ps(sx, bz));
    const __m128 by = _mm_sub_ps(_mm_sub_ps(_mm_load_ps(pk.v[3 + ky]), oky), _mm_mul_ps(sy, bz));
    const __m128 cx = _mm_sub_ps(_mm_sub_ps(_mm_load_ps(pk.v[6 + kx]), okx), _mm_mul_ps(sx, cz));
    const __m128 cy = _mm_sub_ps(_mm_sub_ps(_mm_load_ps(pk.v[6 + ky]), oky), _mm_mul_ps(sy, cz));
    __m128 U = _mm_sub_ps(_mm_mul_ps(cx, by), _mm_mul_ps(cy, bx));
    __m128 V = _mm_sub_ps(_mm_mul_ps(ax, cy), _mm_mul_ps(ay, cx));
    __m128 W = _mm_sub_ps(_mm_mul_ps(bx, ay), _mm_mul_ps(by, ax));
    const __m128 zero = _mm_setzero_ps();
    __m128 on_edge = _mm_or_ps(_mm_or_ps(_mm_cmpeq_ps(U, zero), _mm_cmpeq_ps(V, zero)), _mm_cmpeq_ps(W, zero));
    if (_mm_movemask_ps(on_edge)) {
        // Exactly on an edge in float: those lanes in double, as the scalar test.
        const __m256d dax = _mm256_cvtps_pd(ax), day = _mm256_cvtps_pd(ay), dbx = _mm256_cvtps_pd(bx);
        const __m256d dby = _mm256_cvtps_pd(by), dcx = _mm256_cvtps_pd(cx), dcy = _mm256_cvtps_pd(cy);
        __m128 Ud = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_mul_pd(dcx, dby), _mm256_mul_pd(dcy, dbx)));
        __m128 Vd = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_mul_pd(dax, dcy), _mm256_mul_pd(day, dcx)));
        __m128 Wd = _mm256_cvtpd_ps(_mm256_sub_pd(_mm256_mul_pd(dbx, day), _mm256_mul_pd(dby, dax)));
        U = _mm_blendv_ps(U, Ud, on_edge);
        V = _mm_blendv_ps(V, Vd, on_edge);
        W = _mm_blendv_ps(W, Wd, on_edge);
    }
    const __m128 neg = _mm_or_ps(_mm_or_ps(_mm_cmplt_ps(U, zero), _mm_cmplt_ps(V, zero)), _mm_cmplt_ps(W, zero));
    const __m128 pos = _mm_or_ps(_mm_or_ps(_mm_cmpgt_ps(U, zero), _mm_cmpgt_ps(V, zero)), _mm_cmpgt_ps(W, zero));
    const __m128 miss = _mm_and_ps(neg, pos);
    if (_mm_movemask_ps(miss) == 0xF) return 0;  // every lane outside its triangle (the common case)
    const __m128 det = _mm_add_ps(_mm_add_ps(U, V), W);
    const __m128 T = _mm_add_ps(_mm_add_ps(_mm_mul_ps(U, _mm_mul_ps(sz, az)), _mm_mul_ps(V, _mm_mul_ps(sz, bz))),
                                _mm_mul_ps(W, _mm_mul_ps(sz, cz)));
    const __m128 inv_det = _mm_div_ps(_mm_set1_ps(1.f), det);
    const __m128 t = _mm_mul_ps(T, inv_det);
    __m128 ok = _mm_andnot_ps(miss, _mm_cmp_ps(det, zero, _CMP_NEQ_UQ));
    ok = _mm_and_ps(ok, _mm_and_ps(_mm_cmpgt_ps(t, _mm_set1_ps(tmin)), _mm_cmplt_ps(t, _mm_set1_ps(tmax))));
    t_out = t;
    u_out = _mm_mul_ps(V, inv_det);
    v_out = _mm_mul_ps(W, inv_det);
    return _mm_movemask_ps(ok);
}

// Tests the packets of leaf `cur` in (tmin, t); a hit shortens t and records u, v and the leaf-order index `best`
// (the first of equal nearest hits in leaf order, as bvh.h's visit_leaf). ANY_HIT: returns true at the first hit.
template <bool ANY_HIT>
inline bool wide_visit_leaf(const TriPacket* packets, const float* prims, const WideStackEntry& cur, const Vec3& org,
                            const Vec3& dir, const WatertightRay& wr, float tmin, float& t, float& u, float& v,
                            int32_t& best) {
    bool any = false;
    for (int32_t i = cur.child; i < cur.child + cur.count; ++i) {
        const TriPacket& pk = packets[i];
        if (pk.kind != 0) {
            for (int k = 0; k < 4 && pk.id[k] >= 0; ++k) {
                float ti;
                if (intersect_sphere(org, dir, prims + (size_t)pk.id[k] * kPrimStride, tmin, t, ti)) {
                    t = ti;
                    u = v = 0.f;
                    best = pk.id[k];
                    any = true;
                    if (ANY_HIT) return true;
                }
            }
            continue;
        }
        __m128 tt, uu, vv;
        int mask = packet_triangles(pk, wr, tmin, t, tt, uu, vv);
        if (mask == 0) continue;
        any = true;
        alignas(16) float ts[4], us[4], vs[4];
        _mm_store_ps(ts, tt);
        int k = first_bit(mask);
        if (!ANY_HIT) {
            for (int m = mask & (mask - 1); m != 0; m &= m - 1) {
                int j = first_bit(m);
                if (ts[j] < ts[k]) k = j;  // strict: the first lane of equal t wins
            }
        }
        _mm_store_ps(us, uu);
        _mm_store_ps(vs, vv);
        t = ts[k];
        u = us[k];
        v = vs[k];
        best = pk.id[k];
        if (ANY_HIT) return true;
    }
    return any;
}

// Per-ray constants of the 8-wide slab test (bvh.h node4_boxes, eight lanes; the same NaN behaviour of max/min).
struct WideBoxRay {
    __m256 ox, oy, oz, ix, iy, iz;
    int near_x, far_x, near_y, far_y, near_z, far_z;  // rows of WideNode::box
};

inline WideBoxRay make_wide_box_ray(const BoxRay& r) {
    WideBoxRay w;
    w.ox = _mm256_set1_ps(r.ox); w.oy = _mm256_set1_ps(r.oy); w.oz = _mm256_set1_ps(r.oz);
    w.ix = _mm256_set1_ps(r.ix); w.iy = _mm256_set1_ps(r.iy); w.iz = _mm256_set1_ps(r.iz);
    w.near_x = r.nx ? 1 : 0; w.far_x = 1 - w.near_x;
    w.near_y = r.ny ? 3 : 2; w.far_y = 5 - w.near_y;
    w.near_z = r.nz ? 5 : 4; w.far_z = 9 - w.near_z;
    return w;
}

inline int wide_node_boxes(const WideNode& n, const WideBoxRay& r, float tmin, float tmax, float t_enter[kWide]) {
    const __m256 grow = _mm256_set1_ps(1.00000036f);
    __m256 t0x = _mm256_mul_ps(_mm256_sub_ps(_mm256_load_ps(n.box[r.near_x]), r.ox), r.ix);
    __m256 t1x = _mm256_mul_ps(_mm256_sub_ps(_mm256_load_ps(n.box[r.far_x]), r.ox), r.ix);
    __m256 t0y = _mm256_mul_ps(_mm256_sub_ps(_mm256_load_ps(n.box[r.near_y]), r.oy), r.iy);
    __m256 t1y = _mm256_mul_ps(_mm256_sub_ps(_mm256_load_ps(n.box[r.far_y]), r.oy), r.iy);
    __m256 t0z = _mm256_mul_ps(_mm256_sub_ps(_mm256_load_ps(n.box[r.near_z]), r.oz), r.iz);
    __m256 t1z = _mm256_mul_ps(_mm256_sub_ps(_mm256_load_ps(n.box[r.far_z]), r.oz), r.iz);
    __m256 t0 = _mm256_max_ps(t0x, _mm256_max_ps(t0y, _mm256_max_ps(t0z, _mm256_set1_ps(tmin))));
    __m256 t1 = _mm256_min_ps(_mm256_mul_ps(t1x, grow),
                              _mm256_min_ps(_mm256_mul_ps(t1y, grow),
                                            _mm256_min_ps(_mm256_mul_ps(t1z, grow), _mm256_set1_ps(tmax))));
    _mm256_storeu_ps(t_enter, t0);
    return _mm256_movemask_ps(_mm256_cmp_ps(t0, t1, _CMP_LE_OQ));
}

// Closest hit (ANY_HIT = false) or first hit found (ANY_HIT = true) in (tmin, tmax) over the 8-wide tree; the same
// contract and hit record as bvh.h traverse.
template <bool ANY_HIT, bool SPHERE_UV = true>
inline bool wide_traverse(const WideBVHView& w, const float* prims, const int32_t* prim_ids, int32_t num_triangles,
                          const Vec3& org, const Vec3& dir, float tmin, float tmax, Hit& hit) {
    float t = tmax, u = 0.f, v = 0.f;
    int32_t best = -1;
    if (w.root_count >= 0 && finite_ray(org, dir)) {
        const BoxRay br = make_box_ray(org, dir);
        const WideBoxRay wb = make_wide_box_ray(br);
        const WatertightRay wr = make_watertight_ray(org, dir);
        WideStackEntry stack[kWideMaxStack];
        int sp = 0;
        WideStackEntry cur{w.root_child, w.root_count, tmin};
        for (;;) {
            if (cur.count > 0) {
                if (wide_visit_leaf<ANY_HIT>(w.packets, prims, cur, org, dir, wr, tmin, t, u, v, best) && ANY_HIT)
                    break;
            } else {
                const WideNode& n = w.nodes[cur.child];
                alignas(32) float te[kWide];
                int mask = wide_node_boxes(n, wb, tmin, t, te);
                if (mask != 0) {
                    int k0 = first_bit(mask);
                    mask &= mask - 1;
                    if (mask == 0) {  // one child: descend without stack traffic
                        cur = WideStackEntry{n.child[k0], n.count[k0], te[k0]};
                        continue;
                    }
                    int k1 = first_bit(mask);
                    mask &= mask - 1;
                    WideStackEntry a{n.child[k0], n.count[k0], te[k0]}, b{n.child[k1], n.count[k1], te[k1]};
                    if (b.t < a.t) swap_(a, b);
                    if (mask == 0) {  // two: visit the nearer, defer the farther
                        stack[sp++] = b;
                        cur = a;
                        continue;
                    }
                    // More: insertion sort by entry distance, push all but the nearest farthest first. (The
                    // same ordering as bvh.h visit_node; one template shared by both measured 5 % slower renders.)
                    WideStackEntry hits[kWide];
                    hits[0] = a;
                    hits[1] = b;
                    int nh = 2;
                    while (mask != 0) {
                        int k = first_bit(mask);
                        mask &= mask - 1;
                        WideStackEntry e{n.child[k], n.count[k], te[k]};
                        int j = nh++;
                        while (j > 0 && hits[j - 1].t > e.t) { hits[j] = hits[j - 1]; --j; }
                        hits[j] = e;
                    }
                    for (int j = nh - 1; j > 0; --j) stack[sp++] = hits[j];
                    cur = hits[0];
                    continue;
                }
            }
            bool popped = false;
            while (sp > 0) {
                cur = stack[--sp];
                if (cur.t <= t) { popped = true; break; }
            }
            if (!popped) break;
        }
    }
    return finish_hit(best, ANY_HIT || !SPHERE_UV, org, dir, t, u, v, prims, prim_ids, num_triangles, hit);
}

#endif  // RADIANT_WIDE_BVH

}  // namespace radiant
