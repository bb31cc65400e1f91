// Radiant kernels: the CPU's 8-wide BVH (AVX2), after Embree's BVH8 + Triangle4 (Wald et al. 2014, "Embree: A
// Kernel Framework for Efficient CPU Ray Tracing"): one SIMD slab test for a node's eight children (SoA boxes),
// near-first ordering of the children hit, and leaves of SoA packets of four triangles tested at once with the
// watertight test of bvh.h (Woop et al. 2013), lane for lane the same arithmetic, so every triangle gives the
// bit-identical t, u, v of the scalar test. Spheres keep their scalar test (sphere packets only list them).
// packet_traverse (below) traces a packet of rays at once through the same tree (16 with AVX-512, 8 with AVX2).
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

#include <cmath>
#include <cstring>
#else
#define RADIANT_WIDE_BVH 0
#endif
// Ray packets through the 8-wide tree (packet_traverse): 16 rays with AVX-512, 8 with AVX2; a build may set 8 on
// AVX-512 (-DRADIANT_PACKET_WIDTH=8: AVX2 registers, e.g. a 16-lane group traced as two packets) or 16 without it
// (generic vector code: the AVX-512 build's traversal, slowly, for tests on AVX2 CPUs).
#if RADIANT_WIDE_BVH
#define RADIANT_PACKET_BVH 1
#if !defined(RADIANT_PACKET_WIDTH)
#if defined(__AVX512F__) && !(defined(RADIANT_LANES) && RADIANT_LANES == 8)  // lane.h's width, 8 if set so
#define RADIANT_PACKET_WIDTH 16
#else
#define RADIANT_PACKET_WIDTH 8
#endif
#endif
#if !(RADIANT_PACKET_WIDTH == 8 || RADIANT_PACKET_WIDTH == 16)
#error "RADIANT_PACKET_WIDTH: 8 or 16"
#endif
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
// Ray packets through the 8-wide tree: 16 rays with AVX-512, 8 with AVX2 (one register of floats either way; after
// Embree's hybrid traversal, Benthin et al. 2012, "Combining Single and Packet-Ray Tracing for Arbitrary Ray
// Distributions on the Intel MIC Architecture"): a node's children are tested one at a time against all active
// rays of the packet (one slab test per child for all rays), the children entered by some ray are visited
// near-first by the smallest entry distance among their rays, and a stack entry keeps its rays' mask and entry
// distances (a ray leaves it when its closest hit is nearer). Leaves test each triangle against all rays at once
// with the watertight test of bvh.h, lane for lane the scalar arithmetic (the per-ray axis permutation by blends),
// so every ray's t, u, v of a triangle are bit-identical to the single-ray test's. Where few rays of the packet are
// left in a subtree (at most `single_max`), each finishes it alone through wide_trace_from. Each ray gets the
// single-ray traversal's closest hit (the same t; of several triangles hit at exactly the same t, which one depends
// on the visiting order) or, for ANY_HIT, whether anything is hit in (tmin, tmax).
//
// The packet's registers through a few pk_ helpers: AVX-512 registers and k-masks, or AVX2 registers and vector
// masks (all ones where true); the traversal below is written once over them.
// The float operations both backends spell alike but for the intrinsics' prefix (_mm512 / _mm256).
#define RADIANT_PK_FLOAT_OPS(P)                                                          \
    inline PacketF pk_load(const float* p) { return P##_load_ps(p); }                    \
    inline void pk_store(float* p, PacketF a) { P##_store_ps(p, a); }                    \
    inline PacketF pk_set1(float x) { return P##_set1_ps(x); }                           \
    inline PacketF pk_add(PacketF a, PacketF b) { return P##_add_ps(a, b); }             \
    inline PacketF pk_sub(PacketF a, PacketF b) { return P##_sub_ps(a, b); }             \
    inline PacketF pk_mul(PacketF a, PacketF b) { return P##_mul_ps(a, b); }             \
    inline PacketF pk_div(PacketF a, PacketF b) { return P##_div_ps(a, b); }             \
    inline PacketF pk_min(PacketF a, PacketF b) { return P##_min_ps(a, b); }             \
    inline PacketF pk_max(PacketF a, PacketF b) { return P##_max_ps(a, b); }            \
    inline PacketF pk_sqrt(PacketF a) { return P##_sqrt_ps(a); }
#if RADIANT_PACKET_WIDTH == 16 && defined(__AVX512F__)
constexpr int kPacketRays = 16;
using PacketF = __m512;
using PacketI = __m512i;
using PacketM = __mmask16;
RADIANT_PK_FLOAT_OPS(_mm512)
inline PacketF pk_abs(PacketF a) { return _mm512_abs_ps(a); }
inline PacketM pk_signbit(PacketF a) { return _mm512_cmplt_epi32_mask(_mm512_castps_si512(a), _mm512_setzero_si512()); }
inline PacketF pk_blend(PacketM m, PacketF a, PacketF b) { return _mm512_mask_blend_ps(m, a, b); }  // b where m
template <int OP>
inline PacketM pk_cmp(PacketF a, PacketF b) { return _mm512_cmp_ps_mask(a, b, OP); }
template <int OP>
inline PacketM pk_cmp(PacketM in, PacketF a, PacketF b) { return _mm512_mask_cmp_ps_mask(in, a, b, OP); }
inline uint32_t pk_bits(PacketM m) { return m; }
inline PacketM pk_mask(uint32_t b) { return (PacketM)b; }
inline PacketM pk_and(PacketM a, PacketM b) { return a & b; }
inline PacketM pk_or(PacketM a, PacketM b) { return a | b; }
inline PacketM pk_andnot(PacketM a, PacketM b) { return (PacketM)(a & ~b); }  // a and not b
inline PacketM pk_not(PacketM a) { return (PacketM)~a; }
inline float pk_min_of(PacketM m, PacketF a) { return _mm512_mask_reduce_min_ps(m, a); }  // over the lanes of m
inline PacketI pk_load_i(const int32_t* p) { return _mm512_load_si512((const void*)p); }
inline void pk_store_i(int32_t* p, PacketI a) { _mm512_store_si512((void*)p, a); }
inline PacketI pk_blend_i(PacketM m, PacketI a, int32_t b) { return _mm512_mask_mov_epi32(a, m, _mm512_set1_epi32(b)); }
inline uint32_t pk_nonneg_bits(PacketI a) {
    return _mm512_cmp_epi32_mask(a, _mm512_setzero_si512(), _MM_CMPINT_NLT);
}
#elif RADIANT_PACKET_WIDTH == 16
// 16 rays without AVX-512: GCC vectors and loops, the AVX-512 forms' per-lane results (min / max keep the
// intrinsics' `a < b ? a : b`; comparisons their ordered / unordered NaN rules).
constexpr int kPacketRays = 16;
typedef float PacketF __attribute__((vector_size(64)));
typedef int32_t PacketI __attribute__((vector_size(64)));
struct PacketM {
    PacketI v;  // all ones where true
};
inline PacketF pk_load(const float* p) {
    PacketF r;
    std::memcpy(&r, p, sizeof(r));
    return r;
}
inline void pk_store(float* p, PacketF a) { std::memcpy(p, &a, sizeof(a)); }
inline PacketF pk_set1(float x) { return PacketF{} + x; }
inline PacketF pk_add(PacketF a, PacketF b) { return a + b; }
inline PacketF pk_sub(PacketF a, PacketF b) { return a - b; }
inline PacketF pk_mul(PacketF a, PacketF b) { return a * b; }
inline PacketF pk_div(PacketF a, PacketF b) { return a / b; }
inline PacketF pk_min(PacketF a, PacketF b) { return a < b ? a : b; }
inline PacketF pk_max(PacketF a, PacketF b) { return a > b ? a : b; }
inline PacketF pk_sqrt(PacketF a) {
    for (int i = 0; i < kPacketRays; ++i) a[i] = sqrtf(a[i]);
    return a;
}
inline PacketF pk_abs(PacketF a) { return (PacketF)((PacketI)a & 0x7fffffff); }
inline PacketM pk_signbit(PacketF a) { return PacketM{(PacketI)a < 0}; }
inline PacketF pk_blend(PacketM m, PacketF a, PacketF b) { return m.v != 0 ? b : a; }  // b where m
template <int OP>
inline PacketM pk_cmp(PacketF a, PacketF b) {
    static_assert(OP == _CMP_EQ_OQ || OP == _CMP_LT_OQ || OP == _CMP_GT_OQ || OP == _CMP_LE_OQ || OP == _CMP_NEQ_UQ ||
                      OP == _CMP_NLT_UQ,
                  "a comparison packet_traverse uses");
    if constexpr (OP == _CMP_EQ_OQ) return PacketM{a == b};
    if constexpr (OP == _CMP_LT_OQ) return PacketM{a < b};
    if constexpr (OP == _CMP_GT_OQ) return PacketM{a > b};
    if constexpr (OP == _CMP_LE_OQ) return PacketM{a <= b};
    if constexpr (OP == _CMP_NEQ_UQ) return PacketM{~(a == b)};  // unordered: true where either is NaN
    return PacketM{~(a < b)};                                     // _CMP_NLT_UQ
}
template <int OP>
inline PacketM pk_cmp(PacketM in, PacketF a, PacketF b) { return PacketM{in.v & pk_cmp<OP>(a, b).v}; }
inline uint32_t pk_bits(PacketM m) {
    uint32_t r = 0;
    for (int i = 0; i < kPacketRays; ++i) r |= (uint32_t)(m.v[i] != 0) << i;
    return r;
}
inline PacketM pk_mask(uint32_t b) {
    PacketI bit;
    for (int i = 0; i < kPacketRays; ++i) bit[i] = 1 << i;
    return PacketM{((PacketI{} + (int32_t)b) & bit) != 0};
}
inline PacketM pk_and(PacketM a, PacketM b) { return PacketM{a.v & b.v}; }
inline PacketM pk_or(PacketM a, PacketM b) { return PacketM{a.v | b.v}; }
inline PacketM pk_andnot(PacketM a, PacketM b) { return PacketM{a.v & ~b.v}; }  // a and not b
inline PacketM pk_not(PacketM a) { return PacketM{~a.v}; }
inline float pk_min_of(PacketM m, PacketF a) {  // over the lanes of m
    float r = kInf;
    for (int i = 0; i < kPacketRays; ++i)
        if (m.v[i] && a[i] < r) r = a[i];
    return r;
}
inline PacketI pk_load_i(const int32_t* p) {
    PacketI r;
    std::memcpy(&r, p, sizeof(r));
    return r;
}
inline void pk_store_i(int32_t* p, PacketI a) { std::memcpy(p, &a, sizeof(a)); }
inline PacketI pk_blend_i(PacketM m, PacketI a, int32_t b) { return m.v != 0 ? PacketI{} + b : a; }
inline uint32_t pk_nonneg_bits(PacketI a) { return pk_bits(PacketM{a >= 0}); }
#else
constexpr int kPacketRays = 8;
using PacketF = __m256;
using PacketI = __m256i;
struct PacketM {
    __m256 v;
};
RADIANT_PK_FLOAT_OPS(_mm256)
inline PacketF pk_abs(PacketF a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
inline PacketM pk_signbit(PacketF a) { return PacketM{_mm256_castsi256_ps(_mm256_srai_epi32(_mm256_castps_si256(a), 31))}; }
inline PacketF pk_blend(PacketM m, PacketF a, PacketF b) { return _mm256_blendv_ps(a, b, m.v); }  // b where m
template <int OP>
inline PacketM pk_cmp(PacketF a, PacketF b) { return PacketM{_mm256_cmp_ps(a, b, OP)}; }
template <int OP>
inline PacketM pk_cmp(PacketM in, PacketF a, PacketF b) { return PacketM{_mm256_and_ps(in.v, _mm256_cmp_ps(a, b, OP))}; }
inline uint32_t pk_bits(PacketM m) { return (uint32_t)_mm256_movemask_ps(m.v); }
inline PacketM pk_mask(uint32_t b) {
    const __m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    return PacketM{_mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)b), bit), bit))};
}
inline PacketM pk_and(PacketM a, PacketM b) { return PacketM{_mm256_and_ps(a.v, b.v)}; }
inline PacketM pk_or(PacketM a, PacketM b) { return PacketM{_mm256_or_ps(a.v, b.v)}; }
inline PacketM pk_andnot(PacketM a, PacketM b) { return PacketM{_mm256_andnot_ps(b.v, a.v)}; }  // a and not b
inline PacketM pk_not(PacketM a) { return PacketM{_mm256_xor_ps(a.v, _mm256_castsi256_ps(_mm256_set1_epi32(-1)))}; }
inline float pk_min_of(PacketM m, PacketF a) {  // over the lanes of m
    const __m256 x = _mm256_blendv_ps(_mm256_set1_ps(kInf), a, m.v);
    __m128 h = _mm_min_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
    h = _mm_min_ps(h, _mm_movehl_ps(h, h));
    h = _mm_min_ss(h, _mm_shuffle_ps(h, h, 1));
    return _mm_cvtss_f32(h);
}
inline PacketI pk_load_i(const int32_t* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
inline void pk_store_i(int32_t* p, PacketI a) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), a); }
inline PacketI pk_blend_i(PacketM m, PacketI a, int32_t b) {
    return _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(a), _mm256_castsi256_ps(_mm256_set1_epi32(b)), m.v));
}
inline uint32_t pk_nonneg_bits(PacketI a) { return ~(uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(a)) & 0xFFu; }
#endif
#undef RADIANT_PK_FLOAT_OPS

// Rays of a packet in SoA (64-byte aligned arrays of kPacketRays), and per ray its hit record in and out: t (the
// ray's tmax on entry, its closest hit on return), u, v and best (leaf-order index; -1 on entry).
struct PacketRays {
    alignas(64) float ox[kPacketRays], oy[kPacketRays], oz[kPacketRays], dx[kPacketRays], dy[kPacketRays],
        dz[kPacketRays], tmin[kPacketRays];
    alignas(64) float t[kPacketRays], u[kPacketRays], v[kPacketRays];
    alignas(64) int32_t best[kPacketRays];
};

struct alignas(64) PacketStackEntry {
    float te[kPacketRays];  // entry distance of each ray of mask
    int32_t child, count;
    uint32_t mask;
};

// x where k == 0, y where k == 1, z where k == 2 (masks is1, is2 of the lanes with k == 1, 2).
inline PacketF packet_sel3(PacketM is1, PacketM is2, PacketF x, PacketF y, PacketF z) {
    return pk_blend(is1, pk_blend(is2, x, z), y);
}

// Per-ray constants of a packet: the slab test's (bvh.h make_box_ray) and the watertight test's
// (make_watertight_ray), the same per-lane arithmetic and choices, so each ray's are the single-ray traversal's.
struct PacketConsts {
    PacketF ox, oy, oz, ix, iy, iz, tmin;
    PacketF okx, oky, okz, sx, sy, sz;
    PacketM nx, ny, nz;                    // direction component negative (near plane is hi)
    PacketM kx1, kx2, ky1, ky2, kz1, kz2;  // kx == 1, kx == 2, ...
};

// Returns the rays of `active` with a finite origin and direction (bvh.h finite_ray).
inline uint32_t packet_consts(const PacketRays& r, uint32_t active, PacketConsts& c) {
    const PacketF ox = pk_load(r.ox), oy = pk_load(r.oy), oz = pk_load(r.oz);
    const PacketF dx = pk_load(r.dx), dy = pk_load(r.dy), dz = pk_load(r.dz);
    const PacketF zero = pk_set1(0.f), one = pk_set1(1.f);
    PacketF f = pk_add(pk_sub(ox, ox), pk_sub(oy, oy));
    f = pk_add(pk_add(f, pk_sub(oz, oz)), pk_sub(dx, dx));
    f = pk_add(pk_add(f, pk_sub(dy, dy)), pk_sub(dz, dz));
    const uint32_t live = pk_bits(pk_cmp<_CMP_EQ_OQ>(pk_mask(active), f, zero));
    c.ox = ox; c.oy = oy; c.oz = oz;
    c.ix = pk_div(one, dx);
    c.iy = pk_div(one, dy);
    c.iz = pk_div(one, dz);
    c.nx = pk_cmp<_CMP_LT_OQ>(c.ix, zero);
    c.ny = pk_cmp<_CMP_LT_OQ>(c.iy, zero);
    c.nz = pk_cmp<_CMP_LT_OQ>(c.iz, zero);
    c.tmin = pk_load(r.tmin);
    // kz = max_dimension(|d|), kx and ky the next two axes, swapped where d[kz] < 0.
    const PacketF ax = pk_abs(dx), ay = pk_abs(dy), az = pk_abs(dz);
    const PacketM gxy = pk_cmp<_CMP_GT_OQ>(ax, ay), gxz = pk_cmp<_CMP_GT_OQ>(ax, az),
                  gyz = pk_cmp<_CMP_GT_OQ>(ay, az);
    const PacketM kz0 = pk_and(gxy, gxz), kz1 = pk_andnot(gyz, gxy), kz2 = pk_not(pk_or(kz0, kz1));
    const PacketF dkz = packet_sel3(kz1, kz2, dx, dy, dz);
    const PacketM neg = pk_cmp<_CMP_LT_OQ>(dkz, zero);
    c.kz1 = kz1;
    c.kz2 = kz2;
    c.kx1 = pk_or(pk_andnot(kz0, neg), pk_and(kz2, neg));
    c.kx2 = pk_or(pk_and(kz0, neg), pk_andnot(kz1, neg));
    c.ky1 = pk_or(pk_and(kz0, neg), pk_andnot(kz2, neg));
    c.ky2 = pk_or(pk_andnot(kz0, neg), pk_and(kz1, neg));
    c.sx = pk_div(packet_sel3(c.kx1, c.kx2, dx, dy, dz), dkz);
    c.sy = pk_div(packet_sel3(c.ky1, c.ky2, dx, dy, dz), dkz);
    c.sz = pk_div(one, dkz);
    c.okx = packet_sel3(c.kx1, c.kx2, ox, oy, oz);
    c.oky = packet_sel3(c.ky1, c.ky2, ox, oy, oz);
    c.okz = packet_sel3(kz1, kz2, ox, oy, oz);
    return live;
}

// Mask of the rays of `m` entering child slot k of n within [tmin, t]; te their entry distances (wide_node_boxes'
// arithmetic per ray).
inline PacketM packet_box(const WideNode& n, int k, const PacketConsts& c, PacketF t, PacketM m, PacketF& te) {
    const PacketF grow = pk_set1(1.00000036f);
    const PacketF lx = pk_mul(pk_sub(pk_set1(n.box[0][k]), c.ox), c.ix);
    const PacketF hx = pk_mul(pk_sub(pk_set1(n.box[1][k]), c.ox), c.ix);
    const PacketF ly = pk_mul(pk_sub(pk_set1(n.box[2][k]), c.oy), c.iy);
    const PacketF hy = pk_mul(pk_sub(pk_set1(n.box[3][k]), c.oy), c.iy);
    const PacketF lz = pk_mul(pk_sub(pk_set1(n.box[4][k]), c.oz), c.iz);
    const PacketF hz = pk_mul(pk_sub(pk_set1(n.box[5][k]), c.oz), c.iz);
    const PacketF t0x = pk_blend(c.nx, lx, hx), t1x = pk_blend(c.nx, hx, lx);
    const PacketF t0y = pk_blend(c.ny, ly, hy), t1y = pk_blend(c.ny, hy, ly);
    const PacketF t0z = pk_blend(c.nz, lz, hz), t1z = pk_blend(c.nz, hz, lz);
    const PacketF t0 = pk_max(t0x, pk_max(t0y, pk_max(t0z, c.tmin)));
    const PacketF t1 = pk_min(pk_mul(t1x, grow), pk_min(pk_mul(t1y, grow), pk_min(pk_mul(t1z, grow), t)));
    te = t0;
    return pk_cmp<_CMP_LE_OQ>(m, t0, t1);
}

// The rays of m against the sphere at p (center, radius): bvh.h intersect_sphere lane for lane (the same operations
// in the same order, so each ray's t is the single-ray test's bit for bit). Returns the rays hit inside (tmin, t);
// t_out their t.
inline PacketM packet_sphere(const float* p, const PacketConsts& c, PacketF dx, PacketF dy, PacketF dz, PacketF t,
                             PacketM m, PacketF& t_out) {
    const PacketF zero = pk_set1(0.f), minus = pk_set1(-1.f), rr = pk_set1(p[3] * p[3]);
    auto dot3 = [](PacketF ax, PacketF ay, PacketF az, PacketF bx, PacketF by, PacketF bz) {
        return pk_add(pk_add(pk_mul(ax, bx), pk_mul(ay, by)), pk_mul(az, bz));
    };
    const PacketF fx = pk_sub(c.ox, pk_set1(p[0])), fy = pk_sub(c.oy, pk_set1(p[1])), fz = pk_sub(c.oz, pk_set1(p[2]));
    const PacketF a = dot3(dx, dy, dz, dx, dy, dz);
    const PacketF b = pk_mul(minus, dot3(fx, fy, fz, dx, dy, dz));  // -dot (an exact negation)
    const PacketF s = pk_div(b, a);
    const PacketF lx = pk_add(fx, pk_mul(s, dx)), ly = pk_add(fy, pk_mul(s, dy)), lz = pk_add(fz, pk_mul(s, dz));
    const PacketF disc = pk_mul(a, pk_sub(rr, dot3(lx, ly, lz, lx, ly, lz)));
    const PacketM in = pk_cmp<_CMP_NLT_UQ>(m, disc, zero);  // not disc < 0 (NaN goes on, as in the scalar test)
    if (pk_bits(in) == 0) return in;
    const PacketF cc = pk_sub(dot3(fx, fy, fz, fx, fy, fz), rr);
    const PacketF root = pk_abs(pk_sqrt(disc));
    const PacketF q = pk_add(b, pk_blend(pk_signbit(b), root, pk_mul(minus, root)));  // b + copysign(root, b)
    const PacketF t0 = pk_div(cc, q), t1 = pk_div(q, a);
    const PacketM swap = pk_cmp<_CMP_GT_OQ>(t0, t1);
    const PacketF lo = pk_blend(swap, t0, t1), hi = pk_blend(swap, t1, t0);
    const PacketM ok0 = pk_cmp<_CMP_LT_OQ>(pk_cmp<_CMP_GT_OQ>(in, lo, c.tmin), lo, t);
    const PacketM ok1 = pk_cmp<_CMP_LT_OQ>(pk_cmp<_CMP_GT_OQ>(pk_andnot(in, ok0), hi, c.tmin), hi, t);
    t_out = pk_blend(ok0, hi, lo);
    return pk_or(ok0, ok1);
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
    PacketF tv, uv, vv;
    PacketI bv;
    auto reload = [&]() {
        tv = pk_load(r.t);
        uv = pk_load(r.u);
        vv = pk_load(r.v);
        bv = pk_load_i(r.best);
    };
    auto spill = [&]() {
        pk_store(r.t, tv);
        pk_store(r.u, uv);
        pk_store(r.v, vv);
        pk_store_i(r.best, bv);
    };
    reload();
    PacketStackEntry stack[kWideMaxStack];
    int sp = 0;
    PacketStackEntry cur;
    pk_store(cur.te, c.tmin);
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
                if (pk.kind != 0) {  // spheres: each tested against all rays at once
                    const PacketF dx = pk_load(r.dx), dy = pk_load(r.dy), dz = pk_load(r.dz), zero = pk_set1(0.f);
                    for (int k = 0; k < 4 && pk.id[k] >= 0 && m; ++k) {
                        PacketF ts;
                        const PacketM ok = packet_sphere(prims + (size_t)pk.id[k] * kPrimStride, c, dx, dy, dz, tv,
                                                         pk_mask(m), ts);
                        const uint32_t ok_bits = pk_bits(ok);
                        if (ok_bits == 0) continue;
                        tv = pk_blend(ok, tv, ts);
                        uv = pk_blend(ok, uv, zero);
                        vv = pk_blend(ok, vv, zero);
                        bv = pk_blend_i(ok, bv, pk.id[k]);
                        if (ANY_HIT) {
                            found |= ok_bits;
                            m &= ~ok_bits;
                        }
                    }
                    continue;
                }
                for (int j = 0; j < 4 && pk.id[j] >= 0 && m; ++j) {
                    const PacketM mm = pk_mask(m);
                    const PacketF vx0 = pk_set1(pk.v[0][j]), vy0 = pk_set1(pk.v[1][j]), vz0 = pk_set1(pk.v[2][j]);
                    const PacketF vx1 = pk_set1(pk.v[3][j]), vy1 = pk_set1(pk.v[4][j]), vz1 = pk_set1(pk.v[5][j]);
                    const PacketF vx2 = pk_set1(pk.v[6][j]), vy2 = pk_set1(pk.v[7][j]), vz2 = pk_set1(pk.v[8][j]);
                    const PacketF az = pk_sub(packet_sel3(c.kz1, c.kz2, vx0, vy0, vz0), c.okz);
                    const PacketF bz = pk_sub(packet_sel3(c.kz1, c.kz2, vx1, vy1, vz1), c.okz);
                    const PacketF cz = pk_sub(packet_sel3(c.kz1, c.kz2, vx2, vy2, vz2), c.okz);
                    // A vertex's sheared x or y in the ray's frame: (v_k - o_k) - s_k v_z.
                    auto shear = [](PacketF v, PacketF o, PacketF s, PacketF z) {
                        return pk_sub(pk_sub(v, o), pk_mul(s, z));
                    };
                    const PacketF ax = shear(packet_sel3(c.kx1, c.kx2, vx0, vy0, vz0), c.okx, c.sx, az);
                    const PacketF ay = shear(packet_sel3(c.ky1, c.ky2, vx0, vy0, vz0), c.oky, c.sy, az);
                    const PacketF bx = shear(packet_sel3(c.kx1, c.kx2, vx1, vy1, vz1), c.okx, c.sx, bz);
                    const PacketF by = shear(packet_sel3(c.ky1, c.ky2, vx1, vy1, vz1), c.oky, c.sy, bz);
                    const PacketF cx = shear(packet_sel3(c.kx1, c.kx2, vx2, vy2, vz2), c.okx, c.sx, cz);
                    const PacketF cy = shear(packet_sel3(c.ky1, c.ky2, vx2, vy2, vz2), c.oky, c.sy, cz);
                    PacketF U = pk_sub(pk_mul(cx, by), pk_mul(cy, bx));
                    PacketF V = pk_sub(pk_mul(ax, cy), pk_mul(ay, cx));
                    PacketF W = pk_sub(pk_mul(bx, ay), pk_mul(by, ax));
                    const PacketF zero = pk_set1(0.f);
                    const uint32_t on_edge = pk_bits(pk_or(pk_or(pk_cmp<_CMP_EQ_OQ>(mm, U, zero),
                                                                 pk_cmp<_CMP_EQ_OQ>(mm, V, zero)),
                                                           pk_cmp<_CMP_EQ_OQ>(mm, W, zero)));
                    if (on_edge) {
                        // Exactly on an edge in float: those rays in double, as the scalar test.
                        alignas(64) float fax[kPacketRays], fay[kPacketRays], fbx[kPacketRays], fby[kPacketRays],
                            fcx[kPacketRays], fcy[kPacketRays], fU[kPacketRays], fV[kPacketRays], fW[kPacketRays];
                        pk_store(fax, ax); pk_store(fay, ay);
                        pk_store(fbx, bx); pk_store(fby, by);
                        pk_store(fcx, cx); pk_store(fcy, cy);
                        pk_store(fU, U); pk_store(fV, V); pk_store(fW, W);
                        for (uint32_t q = on_edge; q; q &= q - 1) {
                            const int i = __builtin_ctz(q);
                            fU[i] = (float)((double)fcx[i] * (double)fby[i] - (double)fcy[i] * (double)fbx[i]);
                            fV[i] = (float)((double)fax[i] * (double)fcy[i] - (double)fay[i] * (double)fcx[i]);
                            fW[i] = (float)((double)fbx[i] * (double)fay[i] - (double)fby[i] * (double)fax[i]);
                        }
                        U = pk_load(fU);
                        V = pk_load(fV);
                        W = pk_load(fW);
                    }
                    const PacketM neg = pk_or(pk_or(pk_cmp<_CMP_LT_OQ>(U, zero), pk_cmp<_CMP_LT_OQ>(V, zero)),
                                              pk_cmp<_CMP_LT_OQ>(W, zero));
                    const PacketM pos = pk_or(pk_or(pk_cmp<_CMP_GT_OQ>(U, zero), pk_cmp<_CMP_GT_OQ>(V, zero)),
                                              pk_cmp<_CMP_GT_OQ>(W, zero));
                    const PacketM cand = pk_andnot(mm, pk_and(neg, pos));
                    if (pk_bits(cand) == 0) continue;  // every ray outside the triangle (the common case)
                    const PacketF det = pk_add(pk_add(U, V), W);
                    const PacketF T = pk_add(pk_add(pk_mul(U, pk_mul(c.sz, az)), pk_mul(V, pk_mul(c.sz, bz))),
                                             pk_mul(W, pk_mul(c.sz, cz)));
                    const PacketF inv_det = pk_div(pk_set1(1.f), det);
                    const PacketF t = pk_mul(T, inv_det);
                    PacketM ok = pk_cmp<_CMP_NEQ_UQ>(cand, det, zero);
                    ok = pk_cmp<_CMP_GT_OQ>(ok, t, c.tmin);
                    ok = pk_cmp<_CMP_LT_OQ>(ok, t, tv);
                    const uint32_t ok_bits = pk_bits(ok);
                    if (ok_bits == 0) continue;
                    tv = pk_blend(ok, tv, t);
                    uv = pk_blend(ok, uv, pk_mul(V, inv_det));
                    vv = pk_blend(ok, vv, pk_mul(W, inv_det));
                    bv = pk_blend_i(ok, bv, pk.id[j]);
                    if (ANY_HIT) {
                        found |= ok_bits;
                        m &= ~ok_bits;
                    }
                }
            }
        } else {
            const WideNode& n = w.nodes[cur.child];
            const PacketM mm = pk_mask(m);
            uint32_t valid = ~(uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(
                                 _mm256_load_si256(reinterpret_cast<const __m256i*>(n.count)))) & 0xFFu;
            PacketStackEntry hits[kWide];
            float key[kWide];
            int order[kWide];
            int nh = 0;
            // Every valid child's test is written out and kept where some ray enters it, without a branch on the
            // (unpredictable) outcome; then the children kept in order of their nearest entry (stable).
            for (; valid; valid &= valid - 1) {
                const int k = __builtin_ctz(valid);
                PacketF te;
                const PacketM hm = packet_box(n, k, c, tv, mm, te);
                const uint32_t hm_bits = pk_bits(hm);
                PacketStackEntry& e = hits[nh];
                pk_store(e.te, te);
                e.child = n.child[k];
                e.count = n.count[k];
                e.mask = hm_bits;
                key[nh] = pk_min_of(hm, te);
                nh += hm_bits != 0;
            }
            order[0] = 0;
            for (int i = 1; i < nh; ++i) {
                const float kk = key[i];
                int j = i;
                while (j > 0 && key[j - 1] > kk) {
                    key[j] = key[j - 1];
                    order[j] = order[j - 1];
                    --j;
                }
                key[j] = kk;
                order[j] = i;
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
            uint32_t q = pk_bits(pk_cmp<_CMP_LE_OQ>(pk_mask(cur.mask & live), pk_load(cur.te), tv));
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
    return pk_nonneg_bits(bv) & active;
}

#endif  // RADIANT_PACKET_BVH

#endif  // RADIANT_WIDE_BVH

}  // namespace radiant
