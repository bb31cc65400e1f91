// Radiant kernels: the fused path tracer. One call traces one camera sample through the whole path (closest hit,
// emission with MIS, emitter sampling + shadow ray, BSDF sampling, Russian roulette) with the same math as the
// torch reference (render/integrators/path.py, emitters.py, scene_data.py, textures.py), so both give the same
// expected image. Written once for the host and the device (RADIANT_HD). The scene arrives as plain pointers
// (PackedScene), packed by render/integrators/fused.py.
//
// Seam for materials without a fused kernel (neural materials): a BSDF row whose type is >= kDeferredBSDFType
// ends the path at that hit and exports its state (DeferredPath) to a queue; a torch stage continues it.
#pragma once
#include "bsdf.h"
#include "bvh.h"
#include "bvh_wide.h"
#include "frame.h"

namespace radiant {

// Emitter kinds (render/integrators/scene_data.py).
enum EmitterKind : int { kAreaMesh = 0, kAreaSphere = 1, kPoint = 2, kSpot = 3, kDirectional = 4, kConstant = 5, kEnvmap = 6 };

// Mitsuba's RayEpsilon (float epsilon * 1500) and ShadowEpsilon (10x).
constexpr float kRayEps = 1500.f / 16777216.f;
constexpr float kShadowEps = kRayEps * 10.f;

// BSDF rows with a type id at or above this are shaded outside the kernel (deferred to a torch stage).
constexpr int kDeferredBSDFType = 100;

// Table layouts shared with render/integrators/fused.py (keep the two in sync).
constexpr int kShapeInts = 4;      // flip, has_normals, bsdf row, emitter (-1: none)
constexpr int kRowTextures = 3;    // per BSDF row: up to 3 (field offset, texture) pairs, -1 when unused
constexpr int kTexInts = 8;        // type (0 bitmap, 1 checkerboard), filter (0 bilinear, 1 nearest),
                                   // wrap (0 repeat, 1 mirror, 2 clamp), width, height, channels, data offset, -
constexpr int kTexFloats = 12;     // to_uv rows 0-1 (6), color0 (3), color1 (3)
constexpr int kEmitterInts = 4;    // kind, shape, first triangle in tri_cdf / tri_faces, triangle count
constexpr int kEmitterFloats = 24;
enum EmitterFloat : int {
    kEmColor = 0,       // radiance / intensity / irradiance (3)
    kEmPos = 3,         // point / spot position, sphere center, directional direction (3)
    kEmRadius = 6,      // sphere radius
    kEmAxis = 7,        // spot: third column of to_world (3)
    kEmCutoff = 10,     // spot: cutoff angle (radians)
    kEmBeam = 11,       // spot: beam width (radians)
    kEmArea = 12,       // area mesh: total area
    kEmFrame = 13,      // envmap: to_world rotation, row-major 3x3 (9)
    kEmCosCutoff = 22,  // spot: cos(cutoff angle)
    kEmCosBeam = 23,    // spot: cos(beam width)
};
enum FilterKind : int { kFilterBox = 0, kFilterGaussian = 1, kFilterTent = 2 };

struct PackedScene {
    const WideBVHView* wide;    // CPU only: the 8-wide tree of bvh_wide.h, traced instead of nodes; else null
    const BVHNode4* nodes;
    int32_t num_nodes;
    const float* prims;
    const int32_t* prim_ids;
    int32_t num_triangles;
    int64_t num_vertices;       // V
    const float* vertices;      // (V,3)
    const int32_t* faces;       // (F,3)
    const float* normals;       // (V,3)
    const float* uvs;           // (V,2)
    const float* spheres;       // (S,4) center, radius
    const int32_t* prim_shape;  // (F+S,)
    const int32_t* shape_info;  // (shapes, kShapeInts)
    const float* shape_to_local;  // (shapes, 9): world -> sphere-local rotation (sphere uvs)
    const float* bsdf_rows;     // (R, kBSDFParamCount)
    int32_t num_bsdf_rows;      // R
    const int32_t* row_textures;  // (R, 2 * kRowTextures)
    const int32_t* tex_info;    // (T, kTexInts)
    const float* tex_params;    // (T, kTexFloats)
    const float* tex_data;      // all bitmaps, (h, w, c) each, concatenated
    int32_t num_emitters;
    const int32_t* emitter_info;    // (E, kEmitterInts)
    const float* emitter_params;    // (E, kEmitterFloats)
    const float* tri_cdf;           // per area-mesh emitter: its triangles' CDF over area, ending at 1
    const int32_t* tri_faces;       // face index of each CDF entry
    int32_t env;                    // emitter index of the environment (constant / envmap), -1 if none
    const float* env_image;         // (h, w + 1, 3), scale applied, last column = first
    const float* env_marginal;      // (h - 1,) CDF over rows of cells
    const float* env_conditional;   // (h - 1, w) CDF over columns per row
    const float* env_cell_pdf;      // (h - 1, w) probability per cell
    int32_t env_w, env_h;
};

struct PathCamera {
    float to_world[9];  // row-major camera -> world rotation
    float pos[3];
    float tan_x, tan_y, near_clip, far_clip;
    int32_t width, height;
};

// A rectangle of the film's pixels (tiled and distributed rendering). Item j of a window's layer is pixel
// (x0 + j % w, y0 + j / w); the full film is {0, 0, width, height}.
struct PixelWindow {
    int32_t x0, y0, w, h;
};

RADIANT_HD int64_t window_pixel(const PixelWindow& win, int32_t film_width, int64_t j) {
    return (int64_t)(win.y0 + (int32_t)(j / win.w)) * film_width + win.x0 + (int32_t)(j % win.w);
}

// Where film_splat's samples come from (a PixelWindow of path_trace) and which pixels its accumulator holds
// (acc rows are acc.w pixels of the film starting at (acc.x0, acc.y0)); the accumulator lies inside the film.
struct SplatWindow {
    PixelWindow src, acc;
};

struct PathSettings {
    int32_t max_depth;  // < 0: unbounded
    int32_t rr_depth;
    bool hide_emitters;
    uint64_t seed;
};

// State of a path that reached a deferred material, for the torch stage to continue from the hit.
constexpr int kDeferredFloats = 20;  // o(3) d(3) beta(3) L(3) pos(2) eta prev_pdf prev_delta depth pixel sample
struct DeferredQueue {
    float* data;          // (capacity, kDeferredFloats)
    int64_t capacity;
    unsigned long long* count;  // atomically incremented; may exceed capacity (the excess is dropped)
};

// ---------------------------------------------------------------------------------------------------------
// RNG: PCG32 (O'Neill 2014), seeded per (seed, pixel, sample index) so batching never changes the image.

// Templated on the word: uint64_t, or a vector of them (the CPU lane loop seeds a camera packet's streams at once).
template <typename U>
RADIANT_HD U splitmix64(U x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

struct PCG32 {
    static constexpr uint64_t kMultiplier = 6364136223846793005ull;
    uint64_t state, inc;
    // pcg32_srandom_r: state 0, a step, += initstate, a step (the steps' outputs unused). Templated like splitmix64.
    template <typename U>
    static RADIANT_HD void seeded(U initstate, U initseq, U& state, U& inc) {
        inc = (initseq << 1) | 1u;
        state = inc + initstate;  // 0 * kMultiplier + inc, then += initstate
        state = state * kMultiplier + inc;
    }
    RADIANT_HD void seed(uint64_t initstate, uint64_t initseq) { seeded(initstate, initseq, state, inc); }
    RADIANT_HD uint32_t next_uint() {
        uint64_t old = state;
        state = old * kMultiplier + inc;
        uint32_t xorshifted = (uint32_t)(((old >> 18) ^ old) >> 27);
        uint32_t rot = (uint32_t)(old >> 59);
        return (xorshifted >> rot) | (xorshifted << ((-rot) & 31u));
    }
    RADIANT_HD float next_float() { return (float)(next_uint() >> 8) * (1.f / 16777216.f); }  // [0, 1)
};

// PCG32::seed's arguments for sample `sample` of `pixel` (both as uint64_t; templated like splitmix64).
template <typename U>
RADIANT_HD void sample_stream(uint64_t seed, U pixel, U sample, U& initstate, U& initseq) {
    initstate = splitmix64(splitmix64(seed) ^ ((pixel << 32) | (sample & 0xFFFFFFFFull)));
    initseq = splitmix64(initstate ^ 0xDA3E39CB94B95BDBull);
}

RADIANT_HD PCG32 sample_rng(uint64_t seed, int64_t pixel, int64_t sample) {
    uint64_t key, seq;
    sample_stream(seed, (uint64_t)pixel, (uint64_t)sample, key, seq);
    PCG32 r;
    r.seed(key, seq);
    return r;
}

// ---------------------------------------------------------------------------------------------------------
// Small helpers, each the twin of a torch expression in path.py / emitters.py.

// Templated on the float type (common.h): float for the kernels, LaneF for the CPU's lane loop (cpu/path_lanes.h).
template <typename F>
RADIANT_HD mask_t<F> is_finite(F x) { return x - x == 0.f; }  // false for inf and NaN (no fast-math here)

// Power heuristic (path.py mis_weight): 0 where pdf_a is 0 or the weight is not finite.
template <typename F>
RADIANT_HD F mis_weight(F pdf_a, F pdf_b) {
    F ratio = pdf_b / max_(pdf_a, F(1e-30f));
    F w = 1.f / (1.f + ratio * ratio);
    return select_((pdf_a > 0.f) & is_finite(w), w, F(0.f));
}

// Mitsuba's SurfaceInteraction::offset_p (path.py offset_origin).
template <typename F>
RADIANT_HD Vec3T<F> offset_origin(Vec3T<F> p, Vec3T<F> ng, Vec3T<F> d) {
    F mag = (1.f + max_component(vabs(p))) * kRayEps;
    F side = select_(dot(ng, d) >= 0.f, F(1.f), F(-1.f));
    return p + ng * (mag * side);
}

template <typename F>
RADIANT_HD Vec3T<F> normalize_safe(Vec3T<F> v) { return v / max_(length(v), F(1e-30f)); }

template <typename F>
RADIANT_HD Vec3T<F> mat_vec(const float* m, Vec3T<F> v) {  // row-major 3x3 times v
    return Vec3T<F>(m[0] * v.x + m[1] * v.y + m[2] * v.z, m[3] * v.x + m[4] * v.y + m[5] * v.z,
                    m[6] * v.x + m[7] * v.y + m[8] * v.z);
}
template <typename F>
RADIANT_HD Vec3T<F> mat_t_vec(const float* m, Vec3T<F> v) {  // transpose(m) times v
    return Vec3T<F>(m[0] * v.x + m[3] * v.y + m[6] * v.z, m[1] * v.x + m[4] * v.y + m[7] * v.z,
                    m[2] * v.x + m[5] * v.y + m[8] * v.z);
}

// First index i in [0, n) with cdf[i] > u (torch.searchsorted(..., right=True)), clamped to n - 1. (The CPU's lane
// loop runs its lanes' searches in lanes: lane.h search_cdf_lanes, the same index on a non-decreasing cdf.)
RADIANT_HD int32_t search_cdf(const float* cdf, int32_t n, float u) {
    int32_t lo = 0, hi = n;
    while (lo < hi) {
        int32_t mid = (lo + hi) >> 1;
        if (cdf[mid] > u) hi = mid; else lo = mid + 1;
    }
    return min_(lo, n - 1);
}

// ---------------------------------------------------------------------------------------------------------
// Textures (render/textures.py): Mitsuba texel centers at (i + 0.5) / res, row 0 at v = 0.

RADIANT_HD int32_t wrap_texel(int32_t i, int32_t n, int32_t mode) {
    if (mode == 2) return clamp_(i, 0, n - 1);
    if (mode == 1) {
        int32_t period = i % (2 * n);
        if (period < 0) period += 2 * n;
        return period >= n ? 2 * n - 1 - period : period;
    }
    int32_t r = i % n;
    return r < 0 ? r + n : r;
}

RADIANT_HD Vec3 texel(const float* img, int32_t w, int32_t c, int32_t x, int32_t y) {
    const float* p = img + ((int64_t)y * w + x) * c;
    return c >= 3 ? Vec3(p[0], p[1], p[2]) : Vec3(p[0]);
}

RADIANT_HD Vec3 texture_eval(const PackedScene& sc, int32_t ti, float u_in, float v_in) {
    const int32_t* info = sc.tex_info + (int64_t)ti * kTexInts;
    const float* prm = sc.tex_params + (int64_t)ti * kTexFloats;
    float u = prm[0] * u_in + prm[1] * v_in + prm[2];
    float v = prm[3] * u_in + prm[4] * v_in + prm[5];
    if (info[0] == 1) {  // checkerboard: color0 where both fractions are on the same side of 0.5
        float fu = u - floorf(u), fv = v - floorf(v);
        bool same = (fu > 0.5f) == (fv > 0.5f);
        return same ? Vec3::load(prm + 6) : Vec3::load(prm + 9);
    }
    int32_t w = info[3], h = info[4], c = info[5], wrap = info[2];
    const float* img = sc.tex_data + info[6];
    float x = u * (float)w, y = v * (float)h;
    if (info[1] == 1) {
        return texel(img, w, c, wrap_texel((int32_t)floorf(x), w, wrap), wrap_texel((int32_t)floorf(y), h, wrap));
    }
    x -= 0.5f;
    y -= 0.5f;
    float x0 = floorf(x), y0 = floorf(y);
    float fx = x - x0, fy = y - y0;
    int32_t xa = wrap_texel((int32_t)x0, w, wrap), xb = wrap_texel((int32_t)x0 + 1, w, wrap);
    int32_t ya = wrap_texel((int32_t)y0, h, wrap), yb = wrap_texel((int32_t)y0 + 1, h, wrap);
    return (texel(img, w, c, xa, ya) * (1.f - fx) + texel(img, w, c, xb, ya) * fx) * (1.f - fy) +
           (texel(img, w, c, xa, yb) * (1.f - fx) + texel(img, w, c, xb, yb) * fx) * fy;
}

// ---------------------------------------------------------------------------------------------------------
// Surface attributes at a hit (scene_data.py SceneData.surface).

struct SurfaceHit {
    Vec3 p, ng, ns;
    Vec3 dp_du;  // tangent along u (zero where undefined): orients anisotropic BSDFs, as Mitsuba
    float u, v;
    int32_t shape;
};

// Templated on the float type (common.h): float for surface_at, LaneF for the CPU's lane loop (which looks the
// vertices / spheres up lane by lane and runs these in lanes).
// A triangle's attributes at barycentrics (b1, b2) of v1, v2: geometric normal, shading normal (the vertex normals
// n0..n2 interpolated where has_normals, else the geometric one), uv from the vertex uvs t0..t2, and dp_du.
template <typename F>
RADIANT_HD void triangle_surface(Vec3T<F> v0, Vec3T<F> v1, Vec3T<F> v2, Vec3T<F> n0, Vec3T<F> n1, Vec3T<F> n2,
                                 mask_t<F> has_normals, F t0u, F t0v, F t1u, F t1v, F t2u, F t2v, F b1, F b2,
                                 Vec3T<F>& ng, Vec3T<F>& ns, F& u, F& v, Vec3T<F>& dp_du) {
    ng = normalize_safe(cross(v1 - v0, v2 - v0));
    F b0 = 1.f - b1 - b2;
    ns = ng;
    if (any(has_normals)) ns = select_(has_normals, normalize_safe(n0 * b0 + n1 * b1 + n2 * b2), ns);
    u = t0u * b0 + t1u * b1 + t2u * b2;
    v = t0v * b0 + t1v * b1 + t2v * b2;
    // Mitsuba mesh.cpp: dp_du from the uv parametrization (meshes without uvs have zero uvs: det == 0).
    F du1 = t1u - t0u, dv1 = t1v - t0v, du2 = t2u - t0u, dv2 = t2v - t0v;
    F det = du1 * dv2 - dv1 * du2;
    mask_t<F> has_uv = det != 0.f;
    dp_du = Vec3T<F>(0.f);
    if (any(has_uv)) dp_du = select_(has_uv, ((v1 - v0) * dv2 - (v2 - v0) * dv1) / det, dp_du);
}

// A sphere's attributes at p (center c, radius r; m0..m2 the rows of its world -> local rotation): normal, Mitsuba's
// uv from the local frame (u = phi / 2pi, v = theta / pi) and dp_du = 2 pi (-y, x, 0) in the local frame, back to
// world by the transpose.
template <typename F>
RADIANT_HD void sphere_surface(Vec3T<F> p, Vec3T<F> c, F r, Vec3T<F> m0, Vec3T<F> m1, Vec3T<F> m2, Vec3T<F>& n,
                               F& u, F& v, Vec3T<F>& dp_du) {
    n = normalize((p - c) / r);
    Vec3T<F> loc = normalize(Vec3T<F>(dot(m0, n), dot(m1, n), dot(m2, n)));
    F phi = atan2_approx(loc.y, loc.x);
    phi = select_(phi < 0.f, phi + 2.f * kPi, phi);
    u = phi * (0.5f / kPi);
    v = acos_approx(clamp_(loc.z, F(-1.f), F(1.f))) * kInvPi;
    Vec3T<F> du(-loc.y, loc.x, F(0.f));
    dp_du = Vec3T<F>(m0.x * du.x + m1.x * du.y + m2.x * du.z, m0.y * du.x + m1.y * du.y + m2.y * du.z,
                     m0.z * du.x + m1.z * du.y + m2.z * du.z);
}

// The lookups of surface_at for hit primitive `prim`: a triangle's vertices, vertex normals (where its shape has
// them, else 0) and uvs (u0 v0 u1 v1 u2 v2), or a sphere's center, radius and to-local rows (row-major). Plain
// floats: only the fields of the primitive's kind are written (no zero-initialized Vec3s).
struct SurfaceRefs {
    float v[9], n[9], uv[6];
    float center[3], radius, m[9];
    bool triangle, has_normals, flip;
    int32_t shape;
};

RADIANT_HD SurfaceRefs surface_refs(const PackedScene& sc, int32_t prim) {
    SurfaceRefs r;
    r.shape = sc.prim_shape[prim];
    const int32_t* info = sc.shape_info + (int64_t)r.shape * kShapeInts;
    r.flip = info[0] != 0;
    r.triangle = prim < sc.num_triangles;
    r.has_normals = r.triangle && info[1] != 0;
    if (r.triangle) {
        const int32_t* f = sc.faces + (int64_t)prim * 3;
        for (int j = 0; j < 3; ++j) {
            for (int k = 0; k < 3; ++k) {
                r.v[3 * j + k] = sc.vertices[3 * (int64_t)f[j] + k];
                r.n[3 * j + k] = r.has_normals ? sc.normals[3 * (int64_t)f[j] + k] : 0.f;
            }
            r.uv[2 * j] = sc.uvs[2 * (int64_t)f[j]];
            r.uv[2 * j + 1] = sc.uvs[2 * (int64_t)f[j] + 1];
        }
    } else {
        const float* sp = sc.spheres + 4 * (int64_t)(prim - sc.num_triangles);
        for (int k = 0; k < 3; ++k) r.center[k] = sp[k];
        r.radius = sp[3];
        const float* m = sc.shape_to_local + 9 * (int64_t)r.shape;
        for (int k = 0; k < 9; ++k) r.m[k] = m[k];
    }
    return r;
}

RADIANT_HD SurfaceHit surface_at(const PackedScene& sc, Vec3 o, Vec3 d, const Hit& hit) {
    SurfaceHit s;
    s.p = o + d * hit.t;
    const SurfaceRefs r = surface_refs(sc, hit.prim);
    s.shape = r.shape;
    if (r.triangle) {
        triangle_surface(Vec3::load(r.v), Vec3::load(r.v + 3), Vec3::load(r.v + 6), Vec3::load(r.n),
                         Vec3::load(r.n + 3), Vec3::load(r.n + 6), r.has_normals, r.uv[0], r.uv[1], r.uv[2], r.uv[3],
                         r.uv[4], r.uv[5], hit.u, hit.v, s.ng, s.ns, s.u, s.v, s.dp_du);
    } else {
        sphere_surface(s.p, Vec3::load(r.center), r.radius, Vec3::load(r.m), Vec3::load(r.m + 3), Vec3::load(r.m + 6),
                       s.ng, s.u, s.v, s.dp_du);
        s.ns = s.ng;
    }
    if (r.flip) {
        s.ng = -s.ng;
        s.ns = -s.ns;
    }
    return s;
}

// BSDF row at a hit, textured fields replaced by their lookups (scene_data.py bsdf_params).
RADIANT_HD BSDFParams bsdf_at(const PackedScene& sc, int32_t row, float u, float v) {
    const float* r = sc.bsdf_rows + (int64_t)row * kBSDFParamCount;
    BSDFParams p = BSDFParams::load(r);
    const int32_t* tex = sc.row_textures + (int64_t)row * 2 * kRowTextures;
    for (int k = 0; k < kRowTextures; ++k) {
        int32_t off = tex[2 * k], ti = tex[2 * k + 1];
        if (off < 0) continue;
        Vec3 value = texture_eval(sc, ti, u, v);
        if (off == kParam_diffuse_reflectance) p.diffuse_reflectance = value;
        else if (off == kParam_specular_reflectance) p.specular_reflectance = value;
        else if (off == kParam_specular_transmittance) p.specular_transmittance = value;
    }
    return p;
}

// ---------------------------------------------------------------------------------------------------------
// Environment (emitters.py env_eval / env_pdf / _sample_env): Mitsuba 3.9's half-texel shift, cells aligned.

// Templated on the float type (common.h): float for the kernels, LaneF for the CPU's lane loop, whose table lookups
// (env_texels, env_cell_pdf_at) are its own per-lane overloads (cpu/path_lanes.h); `active`: the lanes whose results
// are used (their table lookups only).
template <typename F>
RADIANT_HD void env_uv(const PackedScene& sc, const float* frame, Vec3T<F> d, F& u, F& v) {
    Vec3T<F> loc = normalize(mat_t_vec(frame, d));
    u = atan2_approx(loc.x, -loc.z) * (0.5f / kPi);
    u = u - floor_(u);
    v = acos_approx(clamp_(loc.y, F(-1.f), F(1.f))) * kInvPi;
}

// The four texels around cell (x0, y0) of the envmap image (x0 in [0, w - 1], y0 in [0, h - 2]).
RADIANT_HD void env_texels(const PackedScene& sc, float x0, float y0, Vec3& c00, Vec3& c01, Vec3& c10, Vec3& c11,
                           bool = true) {
    const int64_t stride = sc.env_w + 1;
    const float* p = sc.env_image + 3 * ((int64_t)(int32_t)y0 * stride + (int32_t)x0);
    c00 = Vec3::load(p);
    c01 = Vec3::load(p + 3);
    c10 = Vec3::load(p + 3 * stride);
    c11 = Vec3::load(p + 3 * stride + 3);
}

// env_cell_pdf of the cell at image coordinates (x, y) (cell (int)x, (int)y, clamped to the grid).
RADIANT_HD float env_cell_pdf_at(const PackedScene& sc, float x, float y, bool = true) {
    int32_t col = clamp_((int32_t)x, 0, sc.env_w - 1), row = clamp_((int32_t)y, 0, sc.env_h - 2);
    return sc.env_cell_pdf[(int64_t)row * sc.env_w + col];
}

// Bilinear radiance of the envmap at env_uv coordinates (u, v).
template <typename F>
RADIANT_HD Vec3T<F> envmap_eval_uv(const PackedScene& sc, F u, F v, mask_t<F> active = mask_t<F>(true)) {
    int32_t w = sc.env_w, h = sc.env_h;
    u = u - 0.5f / (float)w;
    u = u - floor_(u);
    F x = u * (float)w, y = v * (float)(h - 1);
    F x0 = clamp_(floor_(x), F(0.f), F((float)(w - 1))), y0 = clamp_(floor_(y), F(0.f), F((float)(h - 2)));
    F fx = x - x0, fy = y - y0;
    Vec3T<F> c00, c01, c10, c11;
    env_texels(sc, x0, y0, c00, c01, c10, c11, active);
    return (c00 * (1.f - fx) + c01 * fx) * (1.f - fy) + (c10 * (1.f - fx) + c11 * fx) * fy;
}

// Solid-angle pdf (choice included) of envmap sampling at env_uv coordinates (u, v).
template <typename F>
RADIANT_HD F envmap_pdf_uv(const PackedScene& sc, F u, F v, mask_t<F> active = mask_t<F>(true)) {
    float choose = 1.f / (float)sc.num_emitters;
    int32_t w = sc.env_w, h = sc.env_h;
    u = u - 0.5f / (float)w;
    u = u - floor_(u);
    F pdf_uv = env_cell_pdf_at(sc, u * (float)w, v * (float)(h - 1), active) * (float)(w * (h - 1));
    F sin_t, cos_t;
    sincos_approx(v * kPi, sin_t, cos_t);
    return select_(sin_t > 0.f, choose * pdf_uv / (2.f * kPi * kPi * max_(sin_t, F(1e-12f))), F(0.f));
}

// Radiance of the environment along d, and (when pdf is not null) the pdf with which emitter sampling picks d;
// one direction -> uv conversion for both.
template <typename F>
RADIANT_HD Vec3T<F> env_eval(const PackedScene& sc, Vec3T<F> d, F* pdf = nullptr,
                             mask_t<F> active = mask_t<F>(true)) {
    if (pdf != nullptr) *pdf = F(0.f);
    if (sc.env < 0) return Vec3T<F>(0.f);
    const int32_t kind = sc.emitter_info[(int64_t)sc.env * kEmitterInts];
    const float* prm = sc.emitter_params + (int64_t)sc.env * kEmitterFloats;
    if (kind == kConstant) {
        if (pdf != nullptr) *pdf = F(1.f / (float)sc.num_emitters / (4.f * kPi));
        return Vec3T<F>::load(prm + kEmColor);
    }
    F u, v;
    env_uv(sc, prm + kEmFrame, d, u, v);
    if (pdf != nullptr) *pdf = envmap_pdf_uv(sc, u, v, active);
    return envmap_eval_uv(sc, u, v, active);
}

// ---------------------------------------------------------------------------------------------------------
// Emitter sampling (emitters.py sample_emitters) and the area pdf of hit emitters (area_pdf).

// Templated on the float type (common.h): float for the kernels, LaneF for the CPU's lane loop.
template <typename F>
struct EmitterSampleT {
    Vec3T<F> d;       // unit direction to the light
    F dist;           // inf for environment / directional
    Vec3T<F> weight;  // radiance / pdf, emitter choice included; 0 when invalid
    F pdf;            // solid-angle pdf incl. choice
    mask_t<F> delta;
    Vec3T<F> target;
};
using EmitterSample = EmitterSampleT<float>;

// sample_emitter's lookups for area-mesh emitter rows (info, prm) at u_tri: the triangle picked from the mesh's
// area CDF, its vertices, its vertex normals where the shape has them, the flip, and choose / area.
struct AreaMeshTriangle {  // plain floats: v and n are three points each (no zero-initialized Vec3s)
    float v[9], n[9];
    bool has_normals, flip;
    float choose_area;
};

// The probability density of choosing area-mesh emitter prm (uniformly among the emitters) and a point of it by area.
RADIANT_HD float area_mesh_choose_area(const PackedScene& sc, const float* prm) {
    return (1.f / (float)sc.num_emitters) / prm[kEmArea];
}

// The triangle picked at u_tri from area-mesh emitter (info, prm)'s CDF (entries info[2] .. + info[3] of the scene's
// area CDFs) and its lookups (the CPU's lane loop searches in lanes, lane.h search_cdf_lanes, and gathers them).
RADIANT_HD AreaMeshTriangle area_mesh_triangle(const PackedScene& sc, const int32_t* info, const float* prm,
                                               float u_tri) {
    AreaMeshTriangle tri;
    const int32_t* shape = sc.shape_info + (int64_t)info[1] * kShapeInts;
    tri.has_normals = shape[1] != 0;
    tri.flip = shape[0] != 0;
    const int32_t k = info[2] + search_cdf(sc.tri_cdf + info[2], info[3], u_tri);
    const int32_t* f = sc.faces + 3 * (int64_t)sc.tri_faces[k];
    for (int j = 0; j < 3; ++j) {
        for (int c = 0; c < 3; ++c) {
            tri.v[3 * j + c] = sc.vertices[3 * (int64_t)f[j] + c];
            tri.n[3 * j + c] = tri.has_normals ? sc.normals[3 * (int64_t)f[j] + c] : 0.f;
        }
    }
    tri.choose_area = area_mesh_choose_area(sc, prm);
    return tri;
}

// An area light's sample at point p, seen from the reference point along unit direction dd at distance dist with
// solid-angle pdf pdf: the weight color / pdf where the light faces the reference point (facing) and pdf > 0.
template <typename F>
RADIANT_HD EmitterSampleT<F> area_sample_at(Vec3T<F> p, Vec3T<F> dd, F dist, F pdf, mask_t<F> facing,
                                            Vec3T<F> color) {
    EmitterSampleT<F> es;
    es.d = dd;
    es.dist = dist;
    es.target = p;
    es.pdf = pdf;
    es.delta = mask_t<F>(false);
    es.weight = Vec3T<F>(0.f);
    mask_t<F> valid = facing & (pdf > 0.f);
    if (any(valid)) es.weight = select_(valid, color / max_(pdf, F(1e-30f)), es.weight);
    return es;
}

// An area-mesh emitter's sample on the triangle (v0, v1, v2) (vertex normals n0, n1, n2 where has_normals, the
// normal flipped where flip) from reference point ref: Mitsuba's square_to_uniform_triangle at uu, the solid-angle
// pdf with choose_area = (emitter choice) / (mesh area), the weight color / pdf where the light faces ref. The
// triangle and its vertices are looked up by the caller (sample_emitter; the lane loop per lane).
template <typename F>
RADIANT_HD EmitterSampleT<F> area_mesh_sample(Vec3T<F> v0, Vec3T<F> v1, Vec3T<F> v2, Vec3T<F> n0, Vec3T<F> n1,
                                              Vec3T<F> n2, mask_t<F> has_normals, mask_t<F> flip, F choose_area,
                                              Vec3T<F> color, Vec3T<F> ref, F ux, F uy) {
    // Mitsuba square_to_uniform_triangle: t = sqrt(1 - u0); barycentrics (1 - t, t * u1) of v1, v2.
    F t = sqrt_(max_(1.f - ux, F(0.f)));
    F b1 = 1.f - t, b2 = t * uy, b0 = 1.f - b1 - b2;
    Vec3T<F> p = v0 * b0 + v1 * b1 + v2 * b2;
    Vec3T<F> nrm = normalize_safe(cross(v1 - v0, v2 - v0));
    if (any(has_normals)) nrm = select_(has_normals, normalize_safe(n0 * b0 + n1 * b1 + n2 * b2), nrm);
    nrm = select_(flip, -nrm, nrm);
    Vec3T<F> dvec = p - ref;
    F dist = length(dvec);
    Vec3T<F> dd = dvec / max_(dist, F(1e-30f));
    F cos_l = dot(nrm, -dd);
    F pdf = choose_area * dist * dist / max_(abs_(cos_l), F(1e-30f));
    return area_sample_at(p, dd, dist, pdf, cos_l > 0.f, color);
}

// A point light's sample from ref (position pos, intensity color; emitter choice choose), or a spot light's where
// spot (axis: the third column of to_world; cutoff and beam angles in radians and their cosines, the emitter's
// constants; Mitsuba spot.cpp's falloff: 1 inside beam, linear in angle to 0 at cutoff).
template <typename F>
RADIANT_HD EmitterSampleT<F> point_sample(Vec3T<F> pos, Vec3T<F> color, mask_t<F> spot, Vec3T<F> axis, F cutoff,
                                          F beam, F cos_cutoff, F cos_beam, float choose, Vec3T<F> ref) {
    Vec3T<F> dvec = pos - ref;
    F dist = length(dvec);
    Vec3T<F> dd = dvec / max_(dist, F(1e-30f));
    Vec3T<F> L = color / max_(dist * dist, F(1e-30f));
    if (any(spot)) {
        F cos_t = dot(-dd, axis) / length(axis);
        F angle = acos_approx(clamp_(cos_t, F(-1.f), F(1.f)));
        F fall = select_(cos_t >= cos_beam, F(1.f), (cutoff - angle) / max_(cutoff - beam, F(1e-12f)));
        fall = select_(cos_t > cos_cutoff, fall, F(0.f));
        L = select_(spot, L * fall, L);
    }
    EmitterSampleT<F> es;
    es.d = dd;
    es.dist = dist;
    es.target = pos;
    es.weight = L / choose;
    es.pdf = F(choose);
    es.delta = mask_t<F>(true);
    return es;
}

// The cosine of the half-angle of the cone that the sphere (center, radius) subtends from ref; dc the distance to
// the center, inside where ref is in the sphere.
template <typename F>
RADIANT_HD F sphere_cone_cos(Vec3T<F> ref, Vec3T<F> center, F radius, F& dc, mask_t<F>& inside) {
    dc = length(center - ref);
    inside = dc <= radius;
    F sin_max = min_(radius / max_(dc, F(1e-30f)), F(1.f));
    return sqrt_(max_(1.f - sin_max * sin_max, F(0.f)));
}

// A spherical area light's sample from ref (center, radius, radiance color, normal flipped where flip; emitter choice
// choose): uniform on the surface where ref is inside, else uniform in the subtended cone and its near intersection
// (the tangent point where rounding misses); the solid-angle pdf and the weight color / pdf where the light faces ref.
template <typename F>
RADIANT_HD EmitterSampleT<F> sphere_sample(Vec3T<F> center, F radius, mask_t<F> flip, Vec3T<F> color, float choose,
                                           Vec3T<F> ref, F ux, F uy) {
    F dc;
    mask_t<F> inside;
    const F cos_max = sphere_cone_cos(ref, center, radius, dc, inside);
    F sin_phi, cos_phi;
    sincos_approx(2.f * kPi * uy, sin_phi, cos_phi);
    Vec3T<F> p(0.f);
    if (any(inside)) {
        F z = 1.f - 2.f * ux, rr = sqrt_(max_(1.f - z * z, F(0.f)));
        p = select_(inside, center + Vec3T<F>(rr * cos_phi, rr * sin_phi, z) * radius, p);
    }
    const mask_t<F> outside = !inside;
    if (any(outside)) {
        Vec3T<F> axis = (center - ref) / max_(dc, F(1e-30f));
        FrameT<F> fr(axis);
        F cos_t = (1.f - ux) + ux * cos_max;
        F sin_t = sqrt_(max_(1.f - cos_t * cos_t, F(0.f)));
        Vec3T<F> dirs = fr.s * (sin_t * cos_phi) + fr.t * (sin_t * sin_phi) + axis * cos_t;
        F b = dot(dirs, center - ref);
        F disc = max_(radius * radius - (dc * dc - b * b), F(0.f));
        p = select_(outside, ref + dirs * (b - sqrt_(disc)), p);
    }
    Vec3T<F> nrm = (p - center) / radius;
    nrm = select_(flip, -nrm, nrm);
    Vec3T<F> dvec = p - ref;
    F dist = length(dvec);
    Vec3T<F> dd = dvec / max_(dist, F(1e-30f));
    F pdf_sa = select_(inside, dist * dist / (max_(abs_(dot(nrm, dd)), F(1e-30f)) * 4.f * kPi * radius * radius),
                       F(1.f) / (2.f * kPi * max_(1.f - cos_max, F(1e-12f))));
    return area_sample_at(p, dd, dist, choose * pdf_sa, dot(nrm, -dd) > 0.f, color);
}

// sample_emitter's lookups for the envmap at uu: the cell picked from the marginal (row) and conditional (column)
// CDFs of the piecewise-constant density over (h-1) x w cells of luminance x sin(theta), the CDF values below and at
// each pick, and the cell's probability.
struct EnvmapCell {
    float row, col, row_lo, row_p, col_lo, col_p, cell_pdf;
};

// The cell at uu and its values (the CPU's lane loop searches in lanes and gathers them).
RADIANT_HD EnvmapCell envmap_cell(const PackedScene& sc, float ux, float uy) {
    int32_t w = sc.env_w, h = sc.env_h;
    int32_t row = min_(search_cdf(sc.env_marginal, h - 1, ux), h - 2);
    int32_t col = search_cdf(sc.env_conditional + (int64_t)row * w, w, uy);
    float row_lo = row > 0 ? sc.env_marginal[row - 1] : 0.f;
    const float* cond = sc.env_conditional + (int64_t)row * w;
    float col_lo = col > 0 ? cond[col - 1] : 0.f;
    return EnvmapCell{(float)row, (float)col, row_lo, sc.env_marginal[row] - row_lo, col_lo, cond[col] - col_lo,
                      sc.env_cell_pdf[(int64_t)row * w + col]};
}

// The envmap sample in the cell (envmap_cell's values) at uu: the direction, its solid-angle pdf with choice
// choose, the radiance at the sampled (u, v) itself over the pdf (env_eval(d) would map d back to it).
template <typename F>
RADIANT_HD EmitterSampleT<F> envmap_sample(const PackedScene& sc, const float* prm, float choose, F row, F col,
                                           F row_lo, F row_p, F col_lo, F col_p, F cell_pdf, F ux, F uy,
                                           mask_t<F> active = mask_t<F>(true)) {
    int32_t w = sc.env_w, h = sc.env_h;
    F fy = clamp_((ux - row_lo) / max_(row_p, F(1e-30f)), F(0.f), F(1.f));
    F fx = clamp_((uy - col_lo) / max_(col_p, F(1e-30f)), F(0.f), F(1.f));
    F u = (col + fx + 0.5f) / (float)w;  // undo the half-texel shift of the cells
    u = u - floor_(u);
    F v = (row + fy) / (float)(h - 1);
    F theta = v * kPi, phi = u * 2.f * kPi;
    F sin_t, cos_t, sin_p, cos_p;
    sincos_approx(theta, sin_t, cos_t);
    sincos_approx(phi, sin_p, cos_p);
    Vec3T<F> loc(sin_t * sin_p, cos_t, -sin_t * cos_p);
    EmitterSampleT<F> es;
    es.d = normalize(mat_vec(prm + kEmFrame, loc));
    es.dist = F(kInf);
    es.delta = mask_t<F>(false);
    F pdf_uv = cell_pdf * (float)(w * (h - 1));
    F pdf = choose * pdf_uv / (2.f * kPi * kPi * max_(sin_t, F(1e-12f)));
    es.pdf = select_(sin_t > 0.f, pdf, F(0.f));
    es.weight = Vec3T<F>(0.f);
    mask_t<F> valid = es.pdf > 0.f;
    valid = valid & active;
    if (any(valid)) es.weight = select_(valid, envmap_eval_uv(sc, u, v, valid) / max_(es.pdf, F(1e-30f)), es.weight);
    return es;
}

RADIANT_HD EmitterSample sample_emitter(const PackedScene& sc, Vec3 ref, float u_choose, float u_tri, Vec2 uu) {
    EmitterSample es;
    es.d = Vec3(0.f);
    es.dist = kInf;
    es.weight = Vec3(0.f);
    es.pdf = 0.f;
    es.delta = false;
    es.target = Vec3(0.f);
    int32_t ne = sc.num_emitters;
    if (ne == 0) return es;
    float choose = 1.f / (float)ne;
    int32_t e = min_((int32_t)(u_choose * (float)ne), ne - 1);
    const int32_t* info = sc.emitter_info + (int64_t)e * kEmitterInts;
    const float* prm = sc.emitter_params + (int64_t)e * kEmitterFloats;
    Vec3 color = Vec3::load(prm + kEmColor);
    switch (info[0]) {
        case kAreaMesh: {
            const AreaMeshTriangle tri = area_mesh_triangle(sc, info, prm, u_tri);
            return area_mesh_sample(Vec3::load(tri.v), Vec3::load(tri.v + 3), Vec3::load(tri.v + 6),
                                    Vec3::load(tri.n), Vec3::load(tri.n + 3), Vec3::load(tri.n + 6), tri.has_normals,
                                    tri.flip, tri.choose_area, color, ref, uu.x, uu.y);
        }
        case kAreaSphere:
            return sphere_sample(Vec3::load(prm + kEmPos), prm[kEmRadius],
                                 sc.shape_info[(int64_t)info[1] * kShapeInts] != 0, color, choose, ref, uu.x, uu.y);
        case kPoint:
        case kSpot: {
            const bool spot = info[0] == kSpot;
            return point_sample(Vec3::load(prm + kEmPos), color, spot, spot ? Vec3::load(prm + kEmAxis) : Vec3(0.f),
                                prm[kEmCutoff], prm[kEmBeam], prm[kEmCosCutoff], prm[kEmCosBeam], choose, ref);
        }
        case kDirectional:
            es.d = -Vec3::load(prm + kEmPos);
            es.weight = color / choose;
            es.pdf = choose;
            es.delta = true;
            return es;
        case kConstant: {
            float z = 1.f - 2.f * uu.x, rr = sqrtf(max_(1.f - z * z, 0.f)), phi = 2.f * kPi * uu.y;
            es.d = Vec3(rr * cosf(phi), rr * sinf(phi), z);
            es.pdf = choose / (4.f * kPi);
            es.weight = color / es.pdf;
            return es;
        }
        case kEnvmap: {
            const EnvmapCell c = envmap_cell(sc, uu.x, uu.y);
            return envmap_sample(sc, prm, choose, c.row, c.col, c.row_lo, c.row_p, c.col_lo, c.col_p, c.cell_pdf,
                                 uu.x, uu.y);
        }
        default:
            return es;
    }
}

// Solid-angle pdf (choice included) that NEE from ref samples point p (normal n) on area emitter e.
RADIANT_HD float area_emitter_pdf(const PackedScene& sc, int32_t e, Vec3 ref, Vec3 p, Vec3 n, Vec3 d) {
    float choose = 1.f / (float)sc.num_emitters;
    const int32_t* info = sc.emitter_info + (int64_t)e * kEmitterInts;
    const float* prm = sc.emitter_params + (int64_t)e * kEmitterFloats;
    Vec3 diff = p - ref;
    float dist2 = dot(diff, diff);
    if (info[0] == kAreaMesh) return choose * (1.f / prm[kEmArea]) * dist2 / max_(fabsf(dot(n, d)), 1e-30f);
    if (info[0] == kAreaSphere) {
        float radius = prm[kEmRadius], dc;
        bool inside;
        float cos_max = sphere_cone_cos(ref, Vec3::load(prm + kEmPos), radius, dc, inside);
        if (inside) return choose * dist2 / (max_(fabsf(dot(n, d)), 1e-30f) * 4.f * kPi * radius * radius);
        return choose / (2.f * kPi * max_(1.f - cos_max, 1e-12f));
    }
    return 0.f;
}

// ---------------------------------------------------------------------------------------------------------
// Film reconstruction filters (path.py Film._weight).

struct FilmFilter {
    int32_t kind;
    float radius, stddev;
    float floor;  // gaussian: its value at the radius, subtracted (Mitsuba gaussian.cpp); set by make_filter
};

RADIANT_HD FilmFilter make_filter(int32_t kind, float radius, float stddev) {
    FilmFilter f{kind, radius, stddev, 0.f};
    if (kind == kFilterGaussian) f.floor = exp_approx(-radius * radius / (2.f * stddev * stddev));
    return f;
}

// The filter's weight at offset x from the sample (pixel centre minus sample position). Templated on the float type
// (common.h): the CPU's splat computes a lane group's taps in SIMD registers (LaneF), the CUDA one each tap (float),
// with the same result per tap; the gaussian's exp is approx.h's.
template <typename F>
RADIANT_HD F filter_weight(const FilmFilter& f, F x) {
    if (f.kind == kFilterBox) return select_((x >= -0.5f) & (x < 0.5f), F(1.f), F(0.f));
    if (f.kind == kFilterGaussian) return max_(exp_approx(-x * x / (2.f * f.stddev * f.stddev)) - f.floor, F(0.f));
    return max_(1.f - abs_(x) / f.radius, F(0.f));
}

// ---------------------------------------------------------------------------------------------------------
// One camera sample through the whole path (path.py PathIntegrator.render_pass + trace, one lane).
// Writes the continuous film position (x right, y down, in pixels) and the radiance. Returns false when the path
// was handed to the deferred queue (its radiance so far is still written).

// Closest hit (ANY_HIT = false, sphere uv left to surface_at) or occlusion: through the CPU's 8-wide tree when
// WIDE (sc.wide set, bvh_wide.h), else the 4-wide one; a template parameter so each loop has only one of them.
template <bool WIDE, bool ANY_HIT>
RADIANT_HD bool trace_ray(const PackedScene& sc, Vec3 o, Vec3 d, float tmin, float tmax, Hit& hit) {
#if RADIANT_WIDE_BVH
    if (WIDE) return wide_traverse<ANY_HIT, false>(*sc.wide, sc.prims, sc.prim_ids, sc.num_triangles, o, d, tmin,
                                                   tmax, hit);
#endif
    return traverse<ANY_HIT, false>(sc.nodes, sc.num_nodes, sc.prims, sc.prim_ids, sc.num_triangles, o, d, tmin, tmax,
                                    hit);
}

// A camera sample's RNG stream and film position (the pixel's corner plus the stream's first two numbers).
RADIANT_HD void start_sample(const PathCamera& cam, const PathSettings& st, int64_t pixel, int64_t sample, PCG32& rng,
                             float& px, float& py) {
    rng = sample_rng(st.seed, pixel, sample);
    px = (float)(pixel % cam.width) + rng.next_float();
    py = (float)(pixel / cam.width) + rng.next_float();
}

// Mitsuba's perspective sensor: the ray's direction through film position (px, py) and its interval, from the near
// to the far clip plane (the ray starts at cam.pos). Templated on the float type (the CPU's lane loop makes the
// camera rays of a packet at once).
template <typename F>
RADIANT_HD void camera_ray(const PathCamera& cam, F px, F py, Vec3T<F>& d, F& tmin, F& tmax) {
    F fx = px / (float)cam.width, fy = py / (float)cam.height;
    Vec3T<F> dl = normalize(Vec3T<F>((1.f - 2.f * fx) * cam.tan_x, (1.f - 2.f * fy) * cam.tan_y, F(1.f)));
    tmin = cam.near_clip / dl.z;
    tmax = cam.far_clip / dl.z;
    d = mat_vec(cam.to_world, dl);
}

// The camera ray of sample `sample` of `pixel` (its RNG stream seeded, the film position drawn from it).
RADIANT_HD void start_path(const PathCamera& cam, const PathSettings& st, int64_t pixel, int64_t sample, PCG32& rng,
                           float& px, float& py, Vec3& o, Vec3& d, float& tmin, float& tmax) {
    start_sample(cam, st, pixel, sample, rng, px, py);
    camera_ray(cam, px, py, d, tmin, tmax);
    o = Vec3::load(cam.pos);
}

// The seam: a path at a material the kernel cannot shade goes to the queue for the torch stage.
RADIANT_HD void export_deferred(const DeferredQueue* queue, Vec3 o, Vec3 d, Vec3 beta, Vec3 L, float px, float py,
                                float eta, float prev_pdf, bool prev_delta, int32_t depth, int64_t pixel,
                                int64_t sample) {
    if (queue == nullptr) return;
#if defined(__CUDA_ARCH__)
    unsigned long long slot = atomicAdd(queue->count, 1ull);
#else
    unsigned long long slot = __atomic_fetch_add(queue->count, 1ull, __ATOMIC_RELAXED);
#endif
    if ((int64_t)slot < queue->capacity) {
        float* q = queue->data + (int64_t)slot * kDeferredFloats;
        o.store(q);
        d.store(q + 3);
        beta.store(q + 6);
        L.store(q + 9);
        q[12] = px;
        q[13] = py;
        q[14] = eta;
        q[15] = prev_pdf;
        q[16] = prev_delta ? 1.f : 0.f;
        q[17] = (float)depth;
        q[18] = (float)pixel;
        q[19] = (float)sample;
    }
}

template <bool WIDE = false>
RADIANT_HD bool trace_sample(const PackedScene& sc, const PathCamera& cam, const PathSettings& st, int64_t pixel,
                             int64_t sample, float* pos_out, float* L_out, const DeferredQueue* queue) {
    PCG32 rng;
    float px, py, tmin, tmax;
    Vec3 o, d;
    start_path(cam, st, pixel, sample, rng, px, py, o, d, tmin, tmax);
    pos_out[0] = px;
    pos_out[1] = py;

    Vec3 L(0.f), beta(1.f);
    float eta = 1.f, prev_pdf = 0.f;
    bool prev_delta = true;
    Vec3 prev_p = o;
    int32_t max_depth = st.max_depth >= 0 ? st.max_depth : (1 << 30);
    bool deferred = false;
    for (int32_t depth = 0; max_depth > 0;) {
        Hit hit;
        trace_ray<WIDE, false>(sc, o, d, tmin, tmax, hit);
        if (hit.prim < 0) {  // environment seen along the escaping ray
            if (sc.env >= 0 && !(depth == 0 && st.hide_emitters)) {
                float pdf_env;
                Vec3 Le = env_eval(sc, d, prev_delta ? nullptr : &pdf_env);
                float w = prev_delta ? 1.f : mis_weight(prev_pdf, pdf_env);
                L += beta * Le * w;
            }
            break;
        }
        SurfaceHit s = surface_at(sc, o, d, hit);
        const int32_t* shape = sc.shape_info + (int64_t)s.shape * kShapeInts;
        // Emission from a hit area light, MIS-weighted against NEE.
        int32_t em = shape[3];
        Vec3 dn = normalize(d);
        if (em >= 0 && !(depth == 0 && st.hide_emitters)) {
            if (dot(s.ns, -d) > 0.f) {
                float pdf_l = area_emitter_pdf(sc, em, prev_p, s.p, s.ns, dn);
                float w = prev_delta ? 1.f : mis_weight(prev_pdf, pdf_l);
                L += beta * Vec3::load(sc.emitter_params + (int64_t)em * kEmitterFloats + kEmColor) * w;
            }
        }
        ++depth;
        if (depth >= max_depth) break;
        int32_t row = shape[2];
        if ((int32_t)sc.bsdf_rows[(int64_t)row * kBSDFParamCount + kParam_type] >= kDeferredBSDFType) {
            export_deferred(queue, o, d, beta, L, px, py, eta, prev_pdf, prev_delta, depth, pixel, sample);
            deferred = true;
            break;
        }
        // Mitsuba's initialize_sh_frame: s = dp_du made orthogonal to ns, t = ns x s (Duff's basis if undefined).
        Frame frame(s.ns);
        Vec3 tangent = s.dp_du - s.ns * dot(s.ns, s.dp_du);
        float tlen = length(tangent);
        if (tlen > 1e-12f) {
            frame.s = tangent / tlen;
            frame.t = cross(s.ns, frame.s);
        }
        Vec3 wi = frame.to_local(-dn);
        BSDFParams bp = bsdf_at(sc, row, s.u, s.v);
        // Next-event estimation (smooth BSDFs only).
        float u_em0 = rng.next_float(), u_em1 = rng.next_float(), u_em2 = rng.next_float(), u_em3 = rng.next_float();
        if (!is_delta_type(bp.type) && sc.num_emitters > 0) {
            EmitterSample es = sample_emitter(sc, s.p, u_em0, u_em1, Vec2(u_em2, u_em3));
            if (fabsf(es.weight.x) + fabsf(es.weight.y) + fabsf(es.weight.z) > 0.f) {
                Vec3 wo_l = frame.to_local(es.d);
                Vec3 f = bsdf_eval(bp, wi, wo_l);
                if (f.x != 0.f || f.y != 0.f || f.z != 0.f) {
                    Vec3 so = offset_origin(s.p, s.ng, es.d);
                    bool finite = is_finite(es.dist);
                    Vec3 sdir = finite ? es.target - so : es.d;
                    Hit sh;
                    const float smax = finite ? 1.f - kShadowEps : kInf;
                    bool occluded = trace_ray<WIDE, true>(sc, so, sdir, 0.f, smax, sh);
                    if (!occluded) {
                        float w = es.delta ? 1.f : mis_weight(es.pdf, bsdf_pdf(bp, wi, wo_l));
                        L += beta * f * es.weight * w;
                    }
                }
            }
        }
        // BSDF sampling.
        float u_b0 = rng.next_float(), u_b1 = rng.next_float(), u_b2 = rng.next_float();
        BSDFSample bs = bsdf_sample(bp, wi, u_b0, Vec2(u_b1, u_b2));
        Vec3 wo = frame.to_world(bs.wo);
        beta = beta * bs.weight;
        eta *= bs.eta;
        prev_delta = (bs.flags & (kFlagNull | kFlagDeltaReflection | kFlagDeltaTransmission)) != 0;  // Mitsuba BSDFFlags::Delta
        prev_pdf = bs.pdf;
        prev_p = s.p;
        o = offset_origin(s.p, s.ng, wo);
        d = wo;
        tmin = 0.f;
        tmax = kInf;
        // Russian roulette (Mitsuba: q = min(max(beta) * eta^2, 0.95) from rr_depth on).
        float bmax = max_component(beta);
        if (!(bmax > 0.f)) break;
        if (depth >= st.rr_depth) {
            float q = min_(bmax * eta * eta, 0.95f);
            if (!(rng.next_float() < q)) break;
            beta = beta / max_(q, 1e-30f);
        }
    }
    L.store(L_out);
    return !deferred;
}

}  // namespace radiant
