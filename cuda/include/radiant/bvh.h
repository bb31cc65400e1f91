// Radiant kernels: BVH node layout, watertight ray/triangle and robust ray/sphere tests, stack traversal.
// Written once for the host and the device (RADIANT_HD); the binned-SAH build lives in cpu/bvh.cpp.
#pragma once
#include "common.h"
#include "vec.h"

namespace radiant {

// 32-byte flattened node, depth-first order: an interior node's left child is the next node,
// its right child is `offset`. A leaf (count > 0) owns primitives [offset, offset + count).
struct BVHNode {
    float lo[3];
    int32_t offset;
    float hi[3];
    int32_t count;
};
static_assert(sizeof(BVHNode) == 32, "BVHNode must stay 32 bytes");

// Primitives are stored in leaf order, 9 floats each: a triangle's three vertices, or a sphere's
// center and radius (the rest unused). `prim_ids[i]` is the caller's index: triangles first
// ([0, num_triangles)), then spheres.
constexpr int kPrimStride = 9;
constexpr int kMaxStack = 64;

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
};

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
    return r;
}

// Returns true and writes t, u, v when the ray hits the triangle strictly inside (tmin, tmax).
// Edges shared by two triangles are hit by exactly one of them (or both at the same t); degenerate
// triangles (zero area in the ray's projection) are never hit.
RADIANT_HD bool intersect_triangle(const WatertightRay& r, const float* p, float tmin, float tmax,
                                   float& t_out, float& u_out, float& v_out) {
    Vec3 a = Vec3(p[0], p[1], p[2]) - r.org;
    Vec3 b = Vec3(p[3], p[4], p[5]) - r.org;
    Vec3 c = Vec3(p[6], p[7], p[8]) - r.org;
    float az = select(a, r.kz), bz = select(b, r.kz), cz = select(c, r.kz);
    float ax = select(a, r.kx) - r.sx * az, ay = select(a, r.ky) - r.sy * az;
    float bx = select(b, r.kx) - r.sx * bz, by = select(b, r.ky) - r.sy * bz;
    float cx = select(c, r.kx) - r.sx * cz, cy = select(c, r.ky) - r.sy * cz;
    float U = cx * by - cy * bx;
    float V = ax * cy - ay * cx;
    float W = bx * ay - by * ax;
    if (U == 0.f || V == 0.f || W == 0.f) {
        // Exactly on an edge in float: decide in double so that neighbours agree (paper, Sec. 3.2).
        U = (float)((double)cx * (double)by - (double)cy * (double)bx);
        V = (float)((double)ax * (double)cy - (double)ay * (double)cx);
        W = (float)((double)bx * (double)ay - (double)by * (double)ax);
    }
    if ((U < 0.f || V < 0.f || W < 0.f) && (U > 0.f || V > 0.f || W > 0.f)) return false;
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

RADIANT_HD bool node_box(const BVHNode& n, const Vec3& org, const Vec3& inv_dir, float tmin, float tmax,
                         float& t0) {
    float t1;
    ray_box(org, inv_dir, AABB(Vec3(n.lo[0], n.lo[1], n.lo[2]), Vec3(n.hi[0], n.hi[1], n.hi[2])), tmin, tmax, t0, t1);
    return t0 <= t1;
}

// Closest hit (ANY_HIT = false) or first hit found (ANY_HIT = true) in (tmin, tmax).
// Children are tested at their parent and the nearer one is visited first.
template <bool ANY_HIT>
RADIANT_HD bool traverse(const BVHNode* nodes, int32_t num_nodes, const float* prims, const int32_t* prim_ids,
                         int32_t num_triangles, const Vec3& org, const Vec3& dir, float tmin, float tmax, Hit& hit) {
    hit.t = tmax;
    hit.prim = -1;
    hit.u = hit.v = 0.f;
    if (num_nodes == 0) return false;
    Vec3 inv_dir(1.f / dir.x, 1.f / dir.y, 1.f / dir.z);
    WatertightRay wr = make_watertight_ray(org, dir);
    float t_root;
    if (!node_box(nodes[0], org, inv_dir, tmin, tmax, t_root)) return false;

    int32_t stack[kMaxStack];
    float stack_t[kMaxStack];  // entry distance of each deferred node, to skip it once a closer hit is known
    int sp = 0;
    int32_t ni = 0;
    int32_t best = -1;  // leaf-order index of the closest primitive so far
    while (true) {
        const BVHNode& n = nodes[ni];
        if (n.count > 0) {
            for (int32_t i = n.offset; i < n.offset + n.count; ++i) {
                const float* p = prims + (size_t)i * kPrimStride;
                float t, u = 0.f, v = 0.f;
                bool h = prim_ids[i] < num_triangles ? intersect_triangle(wr, p, tmin, hit.t, t, u, v)
                                                     : intersect_sphere(org, dir, p, tmin, hit.t, t);
                if (h) {
                    hit.t = t;
                    hit.u = u;
                    hit.v = v;
                    best = i;
                    if (ANY_HIT) {
                        hit.prim = prim_ids[i];
                        return true;
                    }
                }
            }
        } else {
            int32_t left = ni + 1, right = n.offset;
            float tl, tr;
            bool hl = node_box(nodes[left], org, inv_dir, tmin, hit.t, tl);
            bool hr = node_box(nodes[right], org, inv_dir, tmin, hit.t, tr);
            if (hl && hr) {
                if (tr < tl) { swap_(left, right); swap_(tl, tr); }
                stack_t[sp] = tr;
                stack[sp++] = right;
                ni = left;
                continue;
            }
            if (hl) { ni = left; continue; }
            if (hr) { ni = right; continue; }
        }
        bool found = false;
        while (sp > 0) {
            --sp;
            if (stack_t[sp] <= hit.t) { ni = stack[sp]; found = true; break; }
        }
        if (!found) break;
    }
    if (best < 0) {
        hit.t = kInf;
        return false;
    }
    hit.prim = prim_ids[best];
    if (hit.prim >= num_triangles) sphere_uv(org, dir, hit.t, prims + (size_t)best * kPrimStride, hit.u, hit.v);
    return true;
}

}  // namespace radiant
