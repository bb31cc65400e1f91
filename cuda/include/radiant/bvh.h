// Radiant kernels: BVH node layout, watertight ray/triangle and robust ray/sphere tests, stack traversal.
// Written once for the host and the device (RADIANT_HD); the binned-SAH build lives in cpu/bvh.cpp.
#pragma once
#include "common.h"
#include "vec.h"

#if !defined(__CUDACC__) && (defined(__SSE2__) || defined(_M_X64))
#include <immintrin.h>
#define RADIANT_HOST_SSE 1
#else
#define RADIANT_HOST_SSE 0
#endif

namespace radiant {

// 128-byte 4-wide node (structure of arrays, so the four box tests vectorize on the CPU). Child slot k is
// empty (count < 0, inverted box), an interior node (count == 0, child = node index) or a leaf
// (count > 0, primitives [child, child + count)). The root is node 0. Built by collapsing a binary SAH tree.
struct BVHNode4 {
    float lo_x[4], hi_x[4], lo_y[4], hi_y[4], lo_z[4], hi_z[4];
    int32_t child[4];
    int32_t count[4];
};
static_assert(sizeof(BVHNode4) == 128, "BVHNode4 must stay 128 bytes");
constexpr int kNodeInts = 32;

// Primitives are stored in leaf order, 9 floats each: a triangle's three vertices, or a sphere's
// center and radius followed by a NaN marker in slot 4 (vertices are finite, so the leaf loop tells the two
// apart without reading prim_ids). `prim_ids[i]` is the caller's index: triangles first
// ([0, num_triangles)), then spheres.
constexpr int kPrimStride = 9;
constexpr int kMaxStack = 3 * 64;  // up to 3 deferred children per level of a depth-64 tree

struct Hit {
    float t;
    int32_t prim;  // caller's primitive index, -1 for a miss
    float u, v;    // triangle: barycentrics of v1, v2; sphere: (phi / 2pi, theta / pi) as Mitsuba's sphere
};

// Per-ray constants of the watertight test (Woop, Benthin, Wald 2013, "Watertight Ray/Triangle Intersection").
struct WatertightRay {
    Vec3 org;
    int kx, ky, kz;
    float sx, sy, sz;
    float okx, oky, okz;  // origin components along kx, ky, kz (vertex components are loaded by index)
};

RADIANT_HD bool is_sphere_slot(const float* p) { return p[4] != p[4]; }

RADIANT_HD float select(const Vec3& v, int k) { return k == 0 ? v.x : (k == 1 ? v.y : v.z); }

RADIANT_HD WatertightRay make_watertight_ray(const Vec3& org, const Vec3& dir) {
    WatertightRay r;
    r.org = org;
    r.kz = max_dimension(vabs(dir));
    r.kx = r.kz == 2 ? 0 : r.kz + 1;
    r.ky = r.kx == 2 ? 0 : r.kx + 1;
    // Keep the winding of the triangle when the dominant component is negative (paper, Fig. 1).
    if (select(dir, r.kz) < 0.f) swap_(r.kx, r.ky);
    float dz = select(dir, r.kz);
    r.sx = select(dir, r.kx) / dz;
    r.sy = select(dir, r.ky) / dz;
    r.sz = 1.f / dz;
    r.okx = select(org, r.kx);
    r.oky = select(org, r.ky);
    r.okz = select(org, r.kz);
    return r;
}

// Returns true and writes t, u, v when the ray hits the triangle strictly inside (tmin, tmax).
// Edges shared by two triangles are hit by exactly one of them (or both at the same t); degenerate
// triangles (zero area in the ray's projection) are never hit.
RADIANT_HD bool intersect_triangle(const WatertightRay& r, const float* p, float tmin, float tmax,
                                   float& t_out, float& u_out, float& v_out) {
    // The same arithmetic as (vertex - org) permuted to (kx, ky, kz), with the permutation done by indexed loads
    // instead of per-component selects (the leaf loop's hot spot).
    const int kx = r.kx, ky = r.ky, kz = r.kz;
    float az = p[kz] - r.okz, bz = p[3 + kz] - r.okz, cz = p[6 + kz] - r.okz;
    float ax = (p[kx] - r.okx) - r.sx * az, ay = (p[ky] - r.oky) - r.sy * az;
    float bx = (p[3 + kx] - r.okx) - r.sx * bz, by = (p[3 + ky] - r.oky) - r.sy * bz;
    float cx = (p[6 + kx] - r.okx) - r.sx * cz, cy = (p[6 + ky] - r.oky) - r.sy * cz;
    float U = cx * by - cy * bx;
    float V = ax * cy - ay * cx;
    float W = bx * ay - by * ax;
    if ((U == 0.f) | (V == 0.f) | (W == 0.f)) {
        // Exactly on an edge in float: decide in double so that neighbours agree (paper, Sec. 3.2).
        U = (float)((double)cx * (double)by - (double)cy * (double)bx);
        V = (float)((double)ax * (double)cy - (double)ay * (double)cx);
        W = (float)((double)bx * (double)ay - (double)by * (double)ax);
    }
    // Non-short-circuit ors: one well-predicted branch instead of several data-dependent ones.
    if (((U < 0.f) | (V < 0.f) | (W < 0.f)) & ((U > 0.f) | (V > 0.f) | (W > 0.f))) return false;
    float det = U + V + W;
    if (det == 0.f) return false;
    float T = U * (r.sz * az) + V * (r.sz * bz) + W * (r.sz * cz);
    float inv_det = 1.f / det;
    float t = T * inv_det;
    if (!(t > tmin && t < tmax)) return false;
    t_out = t;
    u_out = V * inv_det;
    v_out = W * inv_det;
    return true;
}

// Robust ray/sphere test (Haines et al., Ray Tracing Gems, ch. 7): the discriminant from the
// perpendicular distance, and the smaller root through c / q to avoid cancellation.
RADIANT_HD bool intersect_sphere(const Vec3& org, const Vec3& dir, const float* p, float tmin, float tmax,
                                 float& t_out) {
    Vec3 center(p[0], p[1], p[2]);
    float radius = p[3];
    Vec3 f = org - center;
    float a = dot(dir, dir);
    float b = -dot(f, dir);
    Vec3 l = f + (b / a) * dir;
    float disc = a * (radius * radius - dot(l, l));
    if (disc < 0.f) return false;
    float c = dot(f, f) - radius * radius;
    float q = b + copysignf(sqrtf(disc), b);
    float t0 = c / q, t1 = q / a;
    if (t0 > t1) swap_(t0, t1);
    if (t0 > tmin && t0 < tmax) { t_out = t0; return true; }
    if (t1 > tmin && t1 < tmax) { t_out = t1; return true; }
    return false;
}

RADIANT_HD void sphere_uv(const Vec3& org, const Vec3& dir, float t, const float* p, float& u, float& v) {
    Vec3 local = (org + t * dir - Vec3(p[0], p[1], p[2])) / p[3];
    float phi = atan2f(local.y, local.x);
    if (phi < 0.f) phi += 2.f * kPi;
    u = phi * (0.5f / kPi);
    v = acosf(clamp_(local.z, -1.f, 1.f)) * (1.f / kPi);
}

RADIANT_HD int first_bit(int mask) {
#if defined(__CUDA_ARCH__)
    return __ffs(mask) - 1;
#else
    return __builtin_ctz((unsigned)mask);
#endif
}

struct StackEntry {
    int32_t child, count;
    float t;
};

// Entry distances of a node's four children; misses get +inf. Near/far slabs are chosen by the ray's
// direction signs once per ray; a 0 * inf NaN (origin on a slab plane, parallel ray) is ignored by the
// argument order of max_/min_ (it counts as inside). Exit distances are made conservative (pbrt-v4: 1 + 2 gamma(3)).
struct BoxRay {
    float ox, oy, oz, ix, iy, iz;
    bool nx, ny, nz;  // direction component negative: near plane is hi
};

RADIANT_HD BoxRay make_box_ray(const Vec3& org, const Vec3& dir) {
    BoxRay r;
    r.ox = org.x; r.oy = org.y; r.oz = org.z;
    r.ix = 1.f / dir.x; r.iy = 1.f / dir.y; r.iz = 1.f / dir.z;
    r.nx = r.ix < 0.f; r.ny = r.iy < 0.f; r.nz = r.iz < 0.f;
    return r;
}

// Returns a bit mask of the children whose box the ray enters within [tmin, tmax], and their entry distances.
RADIANT_HD int node4_boxes(const BVHNode4& n, const BoxRay& r, float tmin, float tmax, float t_enter[4]) {
    const float* near_x = r.nx ? n.hi_x : n.lo_x;
    const float* far_x = r.nx ? n.lo_x : n.hi_x;
    const float* near_y = r.ny ? n.hi_y : n.lo_y;
    const float* far_y = r.ny ? n.lo_y : n.hi_y;
    const float* near_z = r.nz ? n.hi_z : n.lo_z;
    const float* far_z = r.nz ? n.lo_z : n.hi_z;
#if RADIANT_HOST_SSE
    // The same arithmetic four lanes at a time: maxps/minps have exactly the NaN behaviour of max_/min_.
    const __m128 ox = _mm_set1_ps(r.ox), oy = _mm_set1_ps(r.oy), oz = _mm_set1_ps(r.oz);
    const __m128 ix = _mm_set1_ps(r.ix), iy = _mm_set1_ps(r.iy), iz = _mm_set1_ps(r.iz);
    const __m128 grow = _mm_set1_ps(1.00000036f);
    __m128 t0x = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(near_x), ox), ix);
    __m128 t1x = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(far_x), ox), ix);
    __m128 t0y = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(near_y), oy), iy);
    __m128 t1y = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(far_y), oy), iy);
    __m128 t0z = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(near_z), oz), iz);
    __m128 t1z = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(far_z), oz), iz);
    __m128 t0 = _mm_max_ps(t0x, _mm_max_ps(t0y, _mm_max_ps(t0z, _mm_set1_ps(tmin))));
    __m128 t1 = _mm_min_ps(_mm_mul_ps(t1x, grow),
                           _mm_min_ps(_mm_mul_ps(t1y, grow), _mm_min_ps(_mm_mul_ps(t1z, grow), _mm_set1_ps(tmax))));
    _mm_storeu_ps(t_enter, t0);
    return _mm_movemask_ps(_mm_cmple_ps(t0, t1));
#else
    int mask = 0;
    for (int k = 0; k < 4; ++k) {
        float t0x = (near_x[k] - r.ox) * r.ix, t1x = (far_x[k] - r.ox) * r.ix;
        float t0y = (near_y[k] - r.oy) * r.iy, t1y = (far_y[k] - r.oy) * r.iy;
        float t0z = (near_z[k] - r.oz) * r.iz, t1z = (far_z[k] - r.oz) * r.iz;
        float t0 = max_(t0x, max_(t0y, max_(t0z, tmin)));
        float t1 = min_(t1x * 1.00000036f, min_(t1y * 1.00000036f, min_(t1z * 1.00000036f, tmax)));
        t_enter[k] = t0;
        mask |= (t0 <= t1) << k;
    }
    return mask;
#endif
}


// Tests the primitives of leaf `cur` against the ray in (tmin, t); a hit shortens t and records u, v and the
// leaf-order index `best`. ANY_HIT: returns true at the first hit.
template <bool ANY_HIT>
RADIANT_HD bool visit_leaf(const float* prims, const StackEntry& cur, const Vec3& org, const Vec3& dir,
                           const WatertightRay& wr, float tmin, float& t, float& u, float& v, int32_t& best) {
    bool any = false;
    for (int32_t i = cur.child; i < cur.child + cur.count; ++i) {
        const float* p = prims + (size_t)i * kPrimStride;
        float ti, ui = 0.f, vi = 0.f;
        bool h = is_sphere_slot(p) ? intersect_sphere(org, dir, p, tmin, t, ti)
                                   : intersect_triangle(wr, p, tmin, t, ti, ui, vi);
        if (h) {
            t = ti;
            u = ui;
            v = vi;
            best = i;
            any = true;
            if (ANY_HIT) return true;
        }
    }
    return any;
}

// Tests the four children of an interior node; on a hit, `cur` becomes the nearest child and the others are
// pushed farthest first. Returns false when no child is entered (the caller pops).
RADIANT_HD bool visit_node(const BVHNode4& n, const BoxRay& br, float tmin, float tmax, StackEntry& cur,
                           StackEntry* stack, int& sp) {
    float te[4];
    int mask = node4_boxes(n, br, tmin, tmax, te);
    if (mask == 0) return false;
    int k0 = first_bit(mask);
    mask &= mask - 1;
    if (mask == 0) {  // one child hit: descend, no stack traffic
        cur = StackEntry{n.child[k0], n.count[k0], te[k0]};
        return true;
    }
    int k1 = first_bit(mask);
    mask &= mask - 1;
    StackEntry a{n.child[k0], n.count[k0], te[k0]}, b{n.child[k1], n.count[k1], te[k1]};
    if (b.t < a.t) swap_(a, b);
    if (mask == 0) {  // two: visit the nearer, defer the farther
        stack[sp++] = b;
        cur = a;
        return true;
    }
    // Three or four: insertion sort by entry distance (Embree special-cases 1 and 2 the same way).
    StackEntry hits[4] = {a, b, a, a};
    int nh = 2;
    while (mask != 0) {
        int k = first_bit(mask);
        mask &= mask - 1;
        StackEntry e{n.child[k], n.count[k], te[k]};
        int j = nh++;
        while (j > 0 && hits[j - 1].t > e.t) { hits[j] = hits[j - 1]; --j; }
        hits[j] = e;
    }
    for (int j = nh - 1; j > 0; --j) stack[sp++] = hits[j];
    cur = hits[0];
    return true;
}

// Pops the nearest deferred node still in front of the closest hit into `cur`; false when none is left.
RADIANT_HD bool pop_node(StackEntry& cur, const StackEntry* stack, int& sp, float t) {
    while (sp > 0) {
        cur = stack[--sp];
        if (cur.t <= t) return true;
    }
    return false;
}

// Non-finite origins or directions hit nothing. (Their inf - inf NaNs would also let the NaN-tolerant slab test
// enter empty child slots, whose child index is not a node: an out-of-bounds read.)
RADIANT_HD bool finite_ray(const Vec3& org, const Vec3& dir) {
    float finite = (org.x - org.x) + (org.y - org.y) + (org.z - org.z) + (dir.x - dir.x) + (dir.y - dir.y) +
                   (dir.z - dir.z);
    return finite == 0.f;
}

// One ray's traversal as a resumable state machine, so the CPU loop can interleave several rays and overlap
// their cache misses (incoherent traversal of large scenes is memory-latency bound). `traverse` below is the
// same traversal as one tight loop (state in registers), for callers that trace one ray at a time.
struct BVHQuery {
    Vec3 org, dir;
    float tmin;
    BoxRay br;
    WatertightRay wr;
    Hit hit;
    int32_t best;  // leaf-order index of the closest primitive so far
    StackEntry cur;
    int sp;
    bool done, found;
    StackEntry stack[kMaxStack];
};

RADIANT_HD void query_begin(BVHQuery& q, int32_t num_nodes, const Vec3& org, const Vec3& dir, float tmin, float tmax) {
    q.org = org;
    q.dir = dir;
    q.tmin = tmin;
    q.br = make_box_ray(org, dir);
    q.wr = make_watertight_ray(org, dir);
    q.hit.t = tmax;
    q.hit.prim = -1;
    q.hit.u = q.hit.v = 0.f;
    q.best = -1;
    q.cur = StackEntry{0, 0, tmin};
    q.sp = 0;
    q.done = num_nodes == 0 || !finite_ray(org, dir);
    q.found = false;
}

// Visits the current node or leaf and picks the next one; returns true once the query is finished.
template <bool ANY_HIT>
RADIANT_HD bool query_step(BVHQuery& q, const BVHNode4* nodes, const float* prims) {
    if (q.cur.count > 0) {
        if (visit_leaf<ANY_HIT>(prims, q.cur, q.org, q.dir, q.wr, q.tmin, q.hit.t, q.hit.u, q.hit.v, q.best) &&
            ANY_HIT) {
            q.found = q.done = true;
            return true;
        }
    } else if (visit_node(nodes[q.cur.child], q.br, q.tmin, q.hit.t, q.cur, q.stack, q.sp)) {
        return false;
    }
    if (pop_node(q.cur, q.stack, q.sp, q.hit.t)) return false;
    q.done = true;
    return true;
}

// Hit record of a finished traversal (closest or, for any-hit, the first found, leaf-order index `best`, -1 for
// none; no_uv: leave a sphere's u, v as they are); returns whether anything was hit.
RADIANT_HD bool finish_hit(int32_t best, bool no_uv, const Vec3& org, const Vec3& dir, float t, float u, float v,
                           const float* prims, const int32_t* prim_ids, int32_t num_triangles, Hit& hit) {
    if (best < 0) {
        hit.t = kInf;
        hit.prim = -1;
        hit.u = hit.v = 0.f;
        return false;
    }
    hit.t = t;
    hit.u = u;
    hit.v = v;
    hit.prim = prim_ids[best];
    if (!no_uv && hit.prim >= num_triangles) sphere_uv(org, dir, t, prims + (size_t)best * kPrimStride, hit.u, hit.v);
    return true;
}

// Final hit record of a finished query; returns whether anything was hit.
RADIANT_HD bool query_end(BVHQuery& q, const float* prims, const int32_t* prim_ids, int32_t num_triangles, Hit& hit) {
    return finish_hit(q.best, q.found, q.org, q.dir, q.hit.t, q.hit.u, q.hit.v, prims, prim_ids, num_triangles, hit);
}

// Closest hit (ANY_HIT = false) or first hit found (ANY_HIT = true) in (tmin, tmax): BVHQuery's traversal in one
// loop (no per-step state stores). SPHERE_UV = false leaves a sphere hit's u, v at 0 (for callers that make their
// own surface parametrization).
template <bool ANY_HIT, bool SPHERE_UV = true>
RADIANT_HD bool traverse(const BVHNode4* nodes, int32_t num_nodes, const float* prims, const int32_t* prim_ids,
                         int32_t num_triangles, const Vec3& org, const Vec3& dir, float tmin, float tmax, Hit& hit) {
    float t = tmax, u = 0.f, v = 0.f;
    int32_t best = -1;
    if (num_nodes > 0 && finite_ray(org, dir)) {
        const BoxRay br = make_box_ray(org, dir);
        const WatertightRay wr = make_watertight_ray(org, dir);
        StackEntry stack[kMaxStack];
        int sp = 0;
        StackEntry cur{0, 0, tmin};
        for (;;) {
            if (cur.count > 0) {
                if (visit_leaf<ANY_HIT>(prims, cur, org, dir, wr, tmin, t, u, v, best) && ANY_HIT) break;
            } else if (visit_node(nodes[cur.child], br, tmin, t, cur, stack, sp)) {
                continue;
            }
            if (!pop_node(cur, stack, sp, t)) break;
        }
    }
    return finish_hit(best, ANY_HIT || !SPHERE_UV, org, dir, t, u, v, prims, prim_ids, num_triangles, hit);
}

}  // namespace radiant
