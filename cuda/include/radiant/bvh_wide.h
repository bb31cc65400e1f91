// Radiant kernels: the CPU's 8-wide BVH (AVX2), after Embree's BVH8 + Triangle4 (Wald et al. 2014, "Embree: A
// Kernel Framework for Efficient CPU Ray Tracing"): one SIMD slab test for a node's eight children (SoA boxes),
// near-first ordering of the children hit, and leaves of SoA packets of four triangles tested at once with the
// watertight test of bvh.h (Woop et al. 2013), lane for lane the same arithmetic, so every triangle gives the
// bit-identical t, u, v of the scalar test. Spheres keep their scalar test (sphere packets only list them). With
// AVX-512, packet_traverse (below) traces 16 rays at once through the same tree.
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
// 16-ray packets through the 8-wide tree (packet_traverse) where AVX-512 is compiled in.
#if RADIANT_WIDE_BVH && defined(__AVX512F__)
#define RADIANT_PACKET_BVH 1
#else
#define RADIANT_PACKET_BVH 0
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

// The traversal loop of one ray from the tree slot `cur` (the root, or a node where a packet hands over its rays)
// in (tmin, t): a hit shortens t and records u, v and the leaf-order index `best`. ANY_HIT: returns true at the
// first hit found.
template <bool ANY_HIT>
__attribute__((always_inline)) inline bool wide_trace_from(const WideBVHView& w, const float* prims,
                                                           WideStackEntry cur, const Vec3& org, const Vec3& dir,
                                                           const WideBoxRay& wb, const WatertightRay& wr, float tmin,
                                                           float& t, float& u, float& v, int32_t& best) {
    WideStackEntry stack[kWideMaxStack];
    int sp = 0;
    for (;;) {
        if (cur.count > 0) {
            if (wide_visit_leaf<ANY_HIT>(w.packets, prims, cur, org, dir, wr, tmin, t, u, v, best) && ANY_HIT)
                return true;
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
        if (!popped) return false;
    }
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
        wide_trace_from<ANY_HIT>(w, prims, WideStackEntry{w.root_child, w.root_count, tmin}, org, dir, wb, wr, tmin,
                                 t, u, v, best);
    }
    return finish_hit(best, ANY_HIT || !SPHERE_UV, org, dir, t, u, v, prims, prim_ids, num_triangles, hit);
}

#if RADIANT_PACKET_BVH

// ---------------------------------------------------------------------------------------------------------
// Packets of 16 rays through the 8-wide tree (AVX-512; after Embree's hybrid traversal, Benthin et al. 2012,
// "Combining Single and Packet-Ray Tracing for Arbitrary Ray Distributions on the Intel MIC Architecture"): a node's
// children are tested one at a time against all active rays of the packet (one 16-lane slab test per child), the
// children entered by some ray are visited near-first by the smallest entry distance among their rays, and a stack
// entry keeps its rays' mask and entry distances (a ray leaves it when its closest hit is nearer). Leaves test
// each triangle against the 16 rays at once with the watertight test of bvh.h, lane for lane the scalar arithmetic
// (the per-ray axis permutation by blends), so every ray's t, u, v of a triangle are bit-identical to the
// single-ray test's. Where few rays of the packet are left in a subtree (at most `single_max`), each finishes it
// alone through wide_trace_from. Each ray gets the single-ray traversal's closest hit (the same t; of several
// triangles hit at exactly the same t, which one depends on the visiting order) or, for ANY_HIT, whether anything
// is hit in (tmin, tmax).

constexpr int kPacketRays = 16;

// Rays of a packet in SoA (64-byte aligned arrays of 16), and per ray its hit record in and out: t (the ray's tmax
// on entry, its closest hit on return), u, v and best (leaf-order index; -1 on entry).
struct PacketRays {
    alignas(64) float ox[16], oy[16], oz[16], dx[16], dy[16], dz[16], tmin[16];
    alignas(64) float t[16], u[16], v[16];
    alignas(64) int32_t best[16];
};

struct alignas(64) PacketStackEntry {
    float te[16];  // entry distance of each ray of mask
    int32_t child, count;
    uint32_t mask;
};

// x where k == 0, y where k == 1, z where k == 2 (masks is1, is2 of the lanes with k == 1, 2).
inline __m512 packet_sel3(__mmask16 is1, __mmask16 is2, __m512 x, __m512 y, __m512 z) {
    return _mm512_mask_blend_ps(is1, _mm512_mask_blend_ps(is2, x, z), y);
}

// Per-ray constants of a packet: the slab test's (bvh.h make_box_ray) and the watertight test's
// (make_watertight_ray), the same per-lane arithmetic and choices, so each ray's are the single-ray traversal's.
struct PacketConsts {
    __m512 ox, oy, oz, ix, iy, iz, tmin;
    __m512 okx, oky, okz, sx, sy, sz;
    __mmask16 nx, ny, nz;                    // direction component negative (near plane is hi)
    __mmask16 kx1, kx2, ky1, ky2, kz1, kz2;  // kx == 1, kx == 2, ...
};

// Returns the rays of `active` with a finite origin and direction (bvh.h finite_ray).
inline uint32_t packet_consts(const PacketRays& r, uint32_t active, PacketConsts& c) {
    const __m512 ox = _mm512_load_ps(r.ox), oy = _mm512_load_ps(r.oy), oz = _mm512_load_ps(r.oz);
    const __m512 dx = _mm512_load_ps(r.dx), dy = _mm512_load_ps(r.dy), dz = _mm512_load_ps(r.dz);
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.f);
    __m512 f = _mm512_add_ps(_mm512_sub_ps(ox, ox), _mm512_sub_ps(oy, oy));
    f = _mm512_add_ps(_mm512_add_ps(f, _mm512_sub_ps(oz, oz)), _mm512_sub_ps(dx, dx));
    f = _mm512_add_ps(_mm512_add_ps(f, _mm512_sub_ps(dy, dy)), _mm512_sub_ps(dz, dz));
    const uint32_t live = _mm512_mask_cmp_ps_mask((__mmask16)active, f, zero, _CMP_EQ_OQ);
    c.ox = ox; c.oy = oy; c.oz = oz;
    c.ix = _mm512_div_ps(one, dx);
    c.iy = _mm512_div_ps(one, dy);
    c.iz = _mm512_div_ps(one, dz);
    c.nx = _mm512_cmp_ps_mask(c.ix, zero, _CMP_LT_OQ);
    c.ny = _mm512_cmp_ps_mask(c.iy, zero, _CMP_LT_OQ);
    c.nz = _mm512_cmp_ps_mask(c.iz, zero, _CMP_LT_OQ);
    c.tmin = _mm512_load_ps(r.tmin);
    // kz = max_dimension(|d|), kx and ky the next two axes, swapped where d[kz] < 0.
    const __m512 ax = _mm512_abs_ps(dx), ay = _mm512_abs_ps(dy), az = _mm512_abs_ps(dz);
    const __mmask16 gxy = _mm512_cmp_ps_mask(ax, ay, _CMP_GT_OQ), gxz = _mm512_cmp_ps_mask(ax, az, _CMP_GT_OQ),
                    gyz = _mm512_cmp_ps_mask(ay, az, _CMP_GT_OQ);
    const __mmask16 kz0 = gxy & gxz, kz1 = ~gxy & gyz, kz2 = ~(kz0 | kz1);
    const __m512 dkz = packet_sel3(kz1, kz2, dx, dy, dz);
    const __mmask16 neg = _mm512_cmp_ps_mask(dkz, zero, _CMP_LT_OQ);
    c.kz1 = kz1;
    c.kz2 = kz2;
    c.kx1 = (kz0 & ~neg) | (kz2 & neg);
    c.kx2 = (kz0 & neg) | (kz1 & ~neg);
    c.ky1 = (kz0 & neg) | (kz2 & ~neg);
    c.ky2 = (kz0 & ~neg) | (kz1 & neg);
    c.sx = _mm512_div_ps(packet_sel3(c.kx1, c.kx2, dx, dy, dz), dkz);
    c.sy = _mm512_div_ps(packet_sel3(c.ky1, c.ky2, dx, dy, dz), dkz);
    c.sz = _mm512_div_ps(one, dkz);
    c.okx = packet_sel3(c.kx1, c.kx2, ox, oy, oz);
    c.oky = packet_sel3(c.ky1, c.ky2, ox, oy, oz);
    c.okz = packet_sel3(kz1, kz2, ox, oy, oz);
    return live;
}

// Mask of the rays of `m` entering child slot k of n within [tmin, t]; te their entry distances (wide_node_boxes'
// arithmetic per ray).
inline __mmask16 packet_box(const WideNode& n, int k, const PacketConsts& c, __m512 t, __mmask16 m, __m512& te) {
    const __m512 grow = _mm512_set1_ps(1.00000036f);
    const __m512 lx = _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(n.box[0][k]), c.ox), c.ix);
    const __m512 hx = _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(n.box[1][k]), c.ox), c.ix);
    const __m512 ly = _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(n.box[2][k]), c.oy), c.iy);
    const __m512 hy = _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(n.box[3][k]), c.oy), c.iy);
    const __m512 lz = _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(n.box[4][k]), c.oz), c.iz);
    const __m512 hz = _mm512_mul_ps(_mm512_sub_ps(_mm512_set1_ps(n.box[5][k]), c.oz), c.iz);
    const __m512 t0x = _mm512_mask_blend_ps(c.nx, lx, hx), t1x = _mm512_mask_blend_ps(c.nx, hx, lx);
    const __m512 t0y = _mm512_mask_blend_ps(c.ny, ly, hy), t1y = _mm512_mask_blend_ps(c.ny, hy, ly);
    const __m512 t0z = _mm512_mask_blend_ps(c.nz, lz, hz), t1z = _mm512_mask_blend_ps(c.nz, hz, lz);
    const __m512 t0 = _mm512_max_ps(t0x, _mm512_max_ps(t0y, _mm512_max_ps(t0z, c.tmin)));
    const __m512 t1 = _mm512_min_ps(_mm512_mul_ps(t1x, grow),
                                    _mm512_min_ps(_mm512_mul_ps(t1y, grow), _mm512_min_ps(_mm512_mul_ps(t1z, grow), t)));
    te = t0;
    return _mm512_mask_cmp_ps_mask(m, t0, t1, _CMP_LE_OQ);
}

// Returns the rays of `active` that hit something (ANY_HIT: occluded in (tmin, t)); closest hits in r.t, u, v, best.
template <bool ANY_HIT>
inline uint32_t packet_traverse(const WideBVHView& w, const float* prims, PacketRays& r, uint32_t active,
                                int single_max) {
    PacketConsts c;
    uint32_t live = packet_consts(r, active, c);
    uint32_t found = 0;
    if (w.root_count < 0 || live == 0) return 0;
    // The rays' hit records live in registers; they go to r and back where rays are tested one at a time.
    __m512 tv, uv, vv;
    __m512i bv;
    auto reload = [&]() {
        tv = _mm512_load_ps(r.t);
        uv = _mm512_load_ps(r.u);
        vv = _mm512_load_ps(r.v);
        bv = _mm512_load_si512((const void*)r.best);
    };
    auto spill = [&]() {
        _mm512_store_ps(r.t, tv);
        _mm512_store_ps(r.u, uv);
        _mm512_store_ps(r.v, vv);
        _mm512_store_si512((void*)r.best, bv);
    };
    reload();
    PacketStackEntry stack[kWideMaxStack];
    int sp = 0;
    PacketStackEntry cur;
    _mm512_store_ps(cur.te, c.tmin);
    cur.child = w.root_child;
    cur.count = w.root_count;
    cur.mask = live;
    for (;;) {
        uint32_t m = cur.mask;
        if (__builtin_popcount(m) <= single_max) {
            // Few rays here: each finishes this subtree alone.
            spill();
            for (; m; m &= m - 1) {
                const int i = __builtin_ctz(m);
                const Vec3 o(r.ox[i], r.oy[i], r.oz[i]), d(r.dx[i], r.dy[i], r.dz[i]);
                const WideBoxRay wb = make_wide_box_ray(make_box_ray(o, d));
                if (wide_trace_from<ANY_HIT>(w, prims, WideStackEntry{cur.child, cur.count, cur.te[i]}, o, d, wb,
                                             make_watertight_ray(o, d), r.tmin[i], r.t[i], r.u[i], r.v[i],
                                             r.best[i]) &&
                    ANY_HIT)
                    found |= 1u << i;
            }
            reload();
        } else if (cur.count > 0) {
            for (int32_t p = cur.child; p < cur.child + cur.count && m; ++p) {
                const TriPacket& pk = w.packets[p];
                if (pk.kind != 0) {  // spheres: per ray, bvh.h intersect_sphere
                    spill();
                    for (int k = 0; k < 4 && pk.id[k] >= 0; ++k) {
                        const float* sp_ = prims + (size_t)pk.id[k] * kPrimStride;
                        for (uint32_t q = m; q; q &= q - 1) {
                            const int i = __builtin_ctz(q);
                            float ti;
                            if (intersect_sphere(Vec3(r.ox[i], r.oy[i], r.oz[i]), Vec3(r.dx[i], r.dy[i], r.dz[i]), sp_,
                                                 r.tmin[i], r.t[i], ti)) {
                                r.t[i] = ti;
                                r.u[i] = r.v[i] = 0.f;
                                r.best[i] = pk.id[k];
                                if (ANY_HIT) {
                                    found |= 1u << i;
                                    m &= ~(1u << i);
                                }
                            }
                        }
                    }
                    reload();
                    continue;
                }
                for (int j = 0; j < 4 && pk.id[j] >= 0 && m; ++j) {
                    const __mmask16 mm = (__mmask16)m;
                    const __m512 vx0 = _mm512_set1_ps(pk.v[0][j]), vy0 = _mm512_set1_ps(pk.v[1][j]),
                                 vz0 = _mm512_set1_ps(pk.v[2][j]);
                    const __m512 vx1 = _mm512_set1_ps(pk.v[3][j]), vy1 = _mm512_set1_ps(pk.v[4][j]),
                                 vz1 = _mm512_set1_ps(pk.v[5][j]);
                    const __m512 vx2 = _mm512_set1_ps(pk.v[6][j]), vy2 = _mm512_set1_ps(pk.v[7][j]),
                                 vz2 = _mm512_set1_ps(pk.v[8][j]);
                    const __m512 az = _mm512_sub_ps(packet_sel3(c.kz1, c.kz2, vx0, vy0, vz0), c.okz);
                    const __m512 bz = _mm512_sub_ps(packet_sel3(c.kz1, c.kz2, vx1, vy1, vz1), c.okz);
                    const __m512 cz = _mm512_sub_ps(packet_sel3(c.kz1, c.kz2, vx2, vy2, vz2), c.okz);
                    // A vertex's sheared x or y in the ray's frame: (v_k - o_k) - s_k v_z.
                    auto shear = [](__m512 v, __m512 o, __m512 s, __m512 z) {
                        return _mm512_sub_ps(_mm512_sub_ps(v, o), _mm512_mul_ps(s, z));
                    };
                    const __m512 ax = shear(packet_sel3(c.kx1, c.kx2, vx0, vy0, vz0), c.okx, c.sx, az);
                    const __m512 ay = shear(packet_sel3(c.ky1, c.ky2, vx0, vy0, vz0), c.oky, c.sy, az);
                    const __m512 bx = shear(packet_sel3(c.kx1, c.kx2, vx1, vy1, vz1), c.okx, c.sx, bz);
                    const __m512 by = shear(packet_sel3(c.ky1, c.ky2, vx1, vy1, vz1), c.oky, c.sy, bz);
                    const __m512 cx = shear(packet_sel3(c.kx1, c.kx2, vx2, vy2, vz2), c.okx, c.sx, cz);
                    const __m512 cy = shear(packet_sel3(c.ky1, c.ky2, vx2, vy2, vz2), c.oky, c.sy, cz);
                    __m512 U = _mm512_sub_ps(_mm512_mul_ps(cx, by), _mm512_mul_ps(cy, bx));
                    __m512 V = _mm512_sub_ps(_mm512_mul_ps(ax, cy), _mm512_mul_ps(ay, cx));
                    __m512 W = _mm512_sub_ps(_mm512_mul_ps(bx, ay), _mm512_mul_ps(by, ax));
                    const __m512 zero = _mm512_setzero_ps();
                    const __mmask16 on_edge = _mm512_mask_cmp_ps_mask(mm, U, zero, _CMP_EQ_OQ) |
                                              _mm512_mask_cmp_ps_mask(mm, V, zero, _CMP_EQ_OQ) |
                                              _mm512_mask_cmp_ps_mask(mm, W, zero, _CMP_EQ_OQ);
                    if (on_edge) {
                        // Exactly on an edge in float: those rays in double, as the scalar test.
                        alignas(64) float fax[16], fay[16], fbx[16], fby[16], fcx[16], fcy[16], fU[16], fV[16], fW[16];
                        _mm512_store_ps(fax, ax); _mm512_store_ps(fay, ay);
                        _mm512_store_ps(fbx, bx); _mm512_store_ps(fby, by);
                        _mm512_store_ps(fcx, cx); _mm512_store_ps(fcy, cy);
                        _mm512_store_ps(fU, U); _mm512_store_ps(fV, V); _mm512_store_ps(fW, W);
                        for (uint32_t q = on_edge; q; q &= q - 1) {
                            const int i = __builtin_ctz(q);
                            fU[i] = (float)((double)fcx[i] * (double)fby[i] - (double)fcy[i] * (double)fbx[i]);
                            fV[i] = (float)((double)fax[i] * (double)fcy[i] - (double)fay[i] * (double)fcx[i]);
                            fW[i] = (float)((double)fbx[i] * (double)fay[i] - (double)fby[i] * (double)fax[i]);
                        }
                        U = _mm512_load_ps(fU);
                        V = _mm512_load_ps(fV);
                        W = _mm512_load_ps(fW);
                    }
                    const __mmask16 neg = _mm512_cmp_ps_mask(U, zero, _CMP_LT_OQ) |
                                          _mm512_cmp_ps_mask(V, zero, _CMP_LT_OQ) |
                                          _mm512_cmp_ps_mask(W, zero, _CMP_LT_OQ);
                    const __mmask16 pos = _mm512_cmp_ps_mask(U, zero, _CMP_GT_OQ) |
                                          _mm512_cmp_ps_mask(V, zero, _CMP_GT_OQ) |
                                          _mm512_cmp_ps_mask(W, zero, _CMP_GT_OQ);
                    const __mmask16 cand = mm & ~(neg & pos);
                    if (cand == 0) continue;  // every ray outside the triangle (the common case)
                    const __m512 det = _mm512_add_ps(_mm512_add_ps(U, V), W);
                    const __m512 T = _mm512_add_ps(
                        _mm512_add_ps(_mm512_mul_ps(U, _mm512_mul_ps(c.sz, az)), _mm512_mul_ps(V, _mm512_mul_ps(c.sz, bz))),
                        _mm512_mul_ps(W, _mm512_mul_ps(c.sz, cz)));
                    const __m512 inv_det = _mm512_div_ps(_mm512_set1_ps(1.f), det);
                    const __m512 t = _mm512_mul_ps(T, inv_det);
                    __mmask16 ok = _mm512_mask_cmp_ps_mask(cand, det, zero, _CMP_NEQ_UQ);
                    ok = _mm512_mask_cmp_ps_mask(ok, t, c.tmin, _CMP_GT_OQ);
                    ok = _mm512_mask_cmp_ps_mask(ok, t, tv, _CMP_LT_OQ);
                    if (ok == 0) continue;
                    tv = _mm512_mask_mov_ps(tv, ok, t);
                    uv = _mm512_mask_mov_ps(uv, ok, _mm512_mul_ps(V, inv_det));
                    vv = _mm512_mask_mov_ps(vv, ok, _mm512_mul_ps(W, inv_det));
                    bv = _mm512_mask_mov_epi32(bv, ok, _mm512_set1_epi32(pk.id[j]));
                    if (ANY_HIT) {
                        found |= ok;
                        m &= ~(uint32_t)ok;
                    }
                }
            }
        } else {
            const WideNode& n = w.nodes[cur.child];
            const __mmask16 mm = (__mmask16)m;
            uint32_t valid = ~(uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(
                                 _mm256_load_si256(reinterpret_cast<const __m256i*>(n.count)))) & 0xFFu;
            PacketStackEntry hits[kWide];
            float key[kWide];
            int order[kWide];
            int nh = 0;
            for (; valid; valid &= valid - 1) {
                const int k = __builtin_ctz(valid);
                __m512 te;
                const __mmask16 hm = packet_box(n, k, c, tv, mm, te);
                if (hm == 0) continue;
                PacketStackEntry& e = hits[nh];
                _mm512_store_ps(e.te, te);
                e.child = n.child[k];
                e.count = n.count[k];
                e.mask = hm;
                const float kk = _mm512_mask_reduce_min_ps(hm, te);
                int j = nh++;
                while (j > 0 && key[j - 1] > kk) {
                    key[j] = key[j - 1];
                    order[j] = order[j - 1];
                    --j;
                }
                key[j] = kk;
                order[j] = nh - 1;
            }
            if (nh > 0) {
                for (int j = nh - 1; j > 0; --j) stack[sp++] = hits[order[j]];
                cur = hits[order[0]];
                continue;
            }
        }
        if (ANY_HIT) live &= ~found;
        // Pop the next entry with rays still in front of their closest hit (any-hit: not yet occluded).
        bool popped = false;
        while (sp > 0) {
            cur = stack[--sp];
            uint32_t q = _mm512_mask_cmp_ps_mask((__mmask16)(cur.mask & live), _mm512_load_ps(cur.te), tv, _CMP_LE_OQ);
            if (q) {
                cur.mask = q;
                popped = true;
                break;
            }
        }
        if (!popped) break;
    }
    spill();
    if (ANY_HIT) return found;
    return (uint32_t)_mm512_cmp_epi32_mask(bv, _mm512_setzero_si512(), _MM_CMPINT_NLT) & active;
}

#endif  // RADIANT_PACKET_BVH

#endif  // RADIANT_WIDE_BVH

}  // namespace radiant
