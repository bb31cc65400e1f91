// Radiant kernels: one shading stage of the path tracer run both ways from the same templated header code (frame.h,
// warp.h, microfacet.h over vec.h): F = float, one path at a time as the scalar kernels do, and F = LaneF (lane.h),
// kLanes paths in lockstep (16 with AVX-512, else 8). Built straight from the headers by tests/kernels/test_lanes.py
// (lane results must be bit-identical to the scalar ones) and scripts/lane_stage_bench.py (time per path of each).
//
// The stage, per path: the shading frame of a normal, the incoming direction into it, a cosine-weighted direction
// sampled from two uniforms and its pdf, the microfacet reflection terms at that direction (D G / (4 cos_i), and
// the visible-normal pdf of the half vector) with a per-path roughness, microfacet normals sampled (visible and all
// normals, isotropic and anisotropic) with their pdfs, and the Fresnel terms at the half vector
// (dielectric with per-path IOR and its refracted direction, conductor RGB, mirror direction): the frame / sample /
// eval / pdf work the fused path loop does at every bounce.
//
// Usage: lane_stage [check|bench] [n] [repeats]. check prints "mismatches <count> of <values>" and the same for
// lane.h's helpers against the scalar ones, of path.h's search_cdf against a linear scan and of path_lanes.h's
// camera-sample streams against path.h sample_rng ("helper_mismatches
// <count> lanes <kLanes>"); bench prints
// "scalar_ns <ns per path> lanes_ns <ns per path>" (best of the repeats, the two interleaved, one thread).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "radiant/approx.h"
#include "radiant/fresnel.h"
#include "radiant/frame.h"
#include "radiant/lane.h"
#include "radiant/microfacet.h"
#include "radiant/path.h"
#include "../cpu/path_lanes.h"

using namespace radiant;

namespace {

struct Inputs {
    // (N,3) unit normals, (N,3) unit ray directions, (N,2) uniforms, (N,) roughness, (N,) dielectric IOR,
    // (N,3) + (N,3) conductor IOR
    std::vector<float> n, d, u, alpha, eta, cond_eta, cond_k;
};
constexpr int kOut = 28;  // values per path: see the end of stage()
struct Outputs {
    std::vector<float> v;  // (N, kOut)
    explicit Outputs(size_t n) : v(kOut * n) {}
};

template <typename F>
F load_lanes(const float* p, int stride, int k);
template <>
float load_lanes<float>(const float* p, int stride, int k) { return p[k]; }
template <>
LaneF load_lanes<LaneF>(const float* p, int stride, int k) {
    LaneF r;
    for (int i = 0; i < kLanes; ++i) r.set(i, p[i * stride + k]);
    return r;
}
inline void store_lanes(float x, float* p, int, int k) { p[k] = x; }
inline void store_lanes(LaneF x, float* p, int stride, int k) {
    for (int i = 0; i < kLanes; ++i) p[i * stride + k] = x[i];
}

// The stage on one path (F = float) or kLanes (F = LaneF) starting at item i.
template <typename F>
void stage(const Inputs& in, int type, size_t i, Outputs& out) {
    Vec3T<F> n(load_lanes<F>(&in.n[3 * i], 3, 0), load_lanes<F>(&in.n[3 * i], 3, 1), load_lanes<F>(&in.n[3 * i], 3, 2));
    Vec3T<F> d(load_lanes<F>(&in.d[3 * i], 3, 0), load_lanes<F>(&in.d[3 * i], 3, 1), load_lanes<F>(&in.d[3 * i], 3, 2));
    Vec2T<F> u(load_lanes<F>(&in.u[2 * i], 2, 0), load_lanes<F>(&in.u[2 * i], 2, 1));
    F alpha = load_lanes<F>(&in.alpha[i], 1, 0), eta = load_lanes<F>(&in.eta[i], 1, 0);
    Vec3T<F> cond_eta(load_lanes<F>(&in.cond_eta[3 * i], 3, 0), load_lanes<F>(&in.cond_eta[3 * i], 3, 1),
                      load_lanes<F>(&in.cond_eta[3 * i], 3, 2));
    Vec3T<F> cond_k(load_lanes<F>(&in.cond_k[3 * i], 3, 0), load_lanes<F>(&in.cond_k[3 * i], 3, 1),
                    load_lanes<F>(&in.cond_k[3 * i], 3, 2));
    MicrofacetT<F> mf(type, alpha, alpha, true);
    FrameT<F> frame(n);
    Vec3T<F> wi = frame.to_local(-d);
    Vec3T<F> wo = square_to_cosine_hemisphere(u);
    F pdf = square_to_cosine_hemisphere_pdf(wo);
    Vec3T<F> h = normalize(wi + wo);
    F value = mf.D(h) * mf.G(wi, wo, h) / (4.f * wi.z);
    F pdf_m = mf.pdf(wi, h);
    mask_t<F> valid = (wi.z > 0.f) & (wo.z > 0.f);
    // Fresnel (fresnel.h): the dielectric at the half vector (either side, index-matched and total internal
    // reflection cases included) with its refracted direction, the conductor's RGB reflectance, the mirror direction.
    FresnelDielectricT<F> fd = fresnel_dielectric(dot(wi, h), eta);
    Vec3T<F> refr = refract(wi, h, fd.cos_t, fd.eta_ti);
    Vec3T<F> fc = fresnel_conductor_rgb(abs_(dot(wi, h)), cond_eta, cond_k);
    Vec3T<F> refl = reflect(wi, h);
    Vec3T<F> w = frame.to_world(wo);
    // Microfacet normal sampling (upper-hemisphere wi): visible normals with per-path roughness, and all normals
    // with isotropic and anisotropic paths mixed in one group.
    Vec3T<F> wi_up(wi.x, wi.y, abs_(wi.z));
    F pdf_vis, pdf_all;
    Vec3T<F> m_vis = mf.sample(wi_up, u, pdf_vis);
    MicrofacetT<F> mf_all(type, alpha, select_(alpha < 0.5f, alpha, 1.7f * alpha), false);
    Vec3T<F> m_all = mf_all.sample(wi_up, u, pdf_all);
    const F values[kOut] = {w.x, w.y, w.z, select_(valid, pdf, F(0.f)), select_(valid, value, F(0.f)),
                            select_(valid, pdf_m, F(0.f)), fd.r, fd.cos_t, fd.eta_it, fd.eta_ti, refr.x, refr.y,
                            refr.z, fc.x, fc.y, fc.z, refl.x, refl.y, refl.z, reflect_local(wi).x, m_vis.x, m_vis.y,
                            m_vis.z, pdf_vis, m_all.x, m_all.y, m_all.z, pdf_all};
    for (int k = 0; k < kOut; ++k) store_lanes(values[k], &out.v[kOut * i], kOut, k);
}

__attribute__((noinline)) void run_scalar(const Inputs& in, int type, size_t n, Outputs& out) {
    for (size_t i = 0; i < n; ++i) stage<float>(in, type, i, out);
}
// Groups of kLanes; the inputs are padded to a multiple of kLanes (run_scalar covers only the first n).
__attribute__((noinline)) void run_lanes(const Inputs& in, int type, size_t n, Outputs& out) {
    for (size_t i = 0; i < n; i += kLanes) stage<LaneF>(in, type, i, out);
}

Inputs make_inputs(size_t n, size_t padded) {
    std::mt19937 g(11);
    std::uniform_real_distribution<float> U(0.f, 1.f);
    std::normal_distribution<float> N(0.f, 1.f);
    Inputs in;
    in.n.resize(3 * padded);
    in.d.resize(3 * padded);
    in.u.resize(2 * padded);
    in.alpha.resize(padded);
    in.eta.resize(padded);
    in.cond_eta.resize(3 * padded);
    in.cond_k.resize(3 * padded);
    for (size_t i = 0; i < padded; ++i) {
        Vec3 a = normalize(Vec3(N(g), N(g), N(g))), b = normalize(Vec3(N(g), N(g), N(g)));
        float u0 = U(g), u1 = U(g);
        switch (i % 97) {  // edge cases among the random ones
            case 0: a = Vec3(0.f, 0.f, 1.f); break;
            case 1: a = Vec3(0.f, 0.f, -1.f); break;
            case 2: u0 = u1 = 0.5f; break;  // the concentric map's centre
            case 3: u0 = 0.f; u1 = 0.f; break;
            case 4: b = -a; break;  // normal incidence
            case 5: b = a; break;   // from behind
            default: break;
        }
        a.store(&in.n[3 * i]);
        b.store(&in.d[3 * i]);
        in.u[2 * i] = u0;
        in.u[2 * i + 1] = u1;
        in.alpha[i] = i % 89 == 0 ? 1e-4f : 0.01f + U(g);
        in.eta[i] = i % 53 == 0 ? 1.f : (i % 2 ? 1.f + U(g) : 1.f / (1.f + U(g)));
        for (int c = 0; c < 3; ++c) {
            in.cond_eta[3 * i + c] = 0.1f + 2.f * U(g);
            in.cond_k[3 * i + c] = 4.f * U(g);
        }
    }
    (void)n;
    return in;
}

bool same(float a, float b) { return std::memcmp(&a, &b, 4) == 0 || (std::isnan(a) && std::isnan(b)); }

// path.h search_cdf against a linear scan (first index with cdf > u, clamped to n - 1) on random non-decreasing
// CDFs with runs of equal values, at u on, between, below and above their values, and lane.h search_cdf_lanes
// (kLanes searches in rows of a table of such CDFs, some lanes masked off) against search_cdf; returns mismatches.
long check_search_cdf() {
    std::mt19937 g(7);
    std::uniform_real_distribution<float> U(0.f, 1.f);
    long bad = 0;
    std::vector<float> cdf;
    for (int n = 1; n <= 300; ++n) {
        for (int rep = 0; rep < 20; ++rep) {
            cdf.assign(n, 0.f);
            float acc = 0.f;
            for (int i = 0; i < n; ++i) {
                if (U(g) < 0.7f) acc += U(g);  // else a zero-probability step (equal values)
                cdf[i] = acc;
            }
            for (int i = 0; i < n; ++i) cdf[i] = acc > 0.f ? cdf[i] / acc : 0.f;
            std::vector<float> us = {0.f, -1.f, 1.f, 2.f, U(g), U(g), U(g), U(g)};
            for (int i = 0; i < n; ++i) {
                us.push_back(cdf[i]);
                us.push_back(std::nextafter(cdf[i], 2.f));
                us.push_back(std::nextafter(cdf[i], -1.f));
            }
            for (float u : us) {
                int expect = 0;
                while (expect < n && !(cdf[expect] > u)) ++expect;
                if (expect > n - 1) expect = n - 1;
                bad += search_cdf(cdf.data(), n, u) != expect;
            }
            // Lanes: row k of the table is this cdf scaled by k / 4 (rows of different shapes), u from us.
            const int rows = 5;
            std::vector<float> table((size_t)rows * n);
            for (int k = 0; k < rows; ++k)
                for (int i = 0; i < n; ++i) table[(size_t)k * n + i] = cdf[i] * (float)(k + 1) * 0.25f;
            for (size_t j = 0; j < us.size(); j += kLanes) {
                lane_vi offset;
                LaneF u;
                LaneM m;
                for (int i = 0; i < kLanes; ++i) {
                    offset[i] = (int32_t)((i + j) % rows) * n;
                    u.set(i, us[(j + i) % us.size()]);
                    m.set(i, (i + j + n) % 5 != 0);
                }
                const lane_vi out = search_cdf_lanes(table.data(), offset, n, u, m);
                for (int i = 0; i < kLanes; ++i)
                    bad += out[i] != (m[i] ? search_cdf(table.data() + offset[i], n, u[i]) : 0);
            }
        }
    }
    return bad;
}

// lane.h gather_ (float and int32 tables) against plain indexing on random masks; the masked-off lanes' indices
// point far outside the table (a read there would fault) and their results must be 0. Returns mismatches.
long check_gather() {
    std::mt19937 g(11);
    std::vector<float> tf(1000);
    std::vector<int32_t> ti(1000);
    for (int i = 0; i < 1000; ++i) {
        tf[i] = (float)i * 0.37f - 100.f;
        ti[i] = 7 * i - 3000;
    }
    long bad = 0;
    for (int k = 0; k < 1000; ++k) {
        lane_vi idx;
        LaneM m;
        for (int i = 0; i < kLanes; ++i) {
            const bool on = g() % 3 != 0;
            m.set(i, on);
            idx[i] = on ? (int32_t)(g() % 1000) : (1 << 30);
        }
        const LaneF f = gather_(tf.data(), idx, m);
        const lane_vi n = gather_(ti.data(), idx, m);
        for (int i = 0; i < kLanes; ++i) {
            bad += !same(f[i], m[i] ? tf[idx[i]] : 0.f);
            bad += n[i] != (m[i] ? ti[idx[i]] : 0);
        }
    }
    return bad;
}

// path_lanes.h LaneRNG::seed_samples and next_float against path.h sample_rng and PCG32::next_float (the camera
// packet's streams and film positions): random pixels and sample indices (those past 2^32 too, whose high bits the
// key drops), the first draws and the streams after them. Returns mismatches.
long check_sample_streams() {
    std::mt19937_64 g(13);
    long bad = 0;
    for (int k = 0; k < 1000; ++k) {
        const uint64_t seed = k % 7 == 0 ? 0 : g();
        lane_vu64 pixel, sample;
        for (int i = 0; i < kLanes; ++i) {
            pixel[i] = g() >> (g() % 64);
            sample[i] = g() >> (g() % 64);
        }
        LaneRNG lanes;
        lanes.seed_samples(seed, pixel, sample);
        const LaneM all(true);
        const LaneF u1 = lanes.next_float(all), u2 = lanes.next_float(all);
        for (int i = 0; i < kLanes; ++i) {
            PCG32 r = sample_rng(seed, (int64_t)pixel[i], (int64_t)sample[i]);
            bad += !same(u1[i], r.next_float());
            bad += !same(u2[i], r.next_float());
            bad += lanes.state[i] != r.state || lanes.inc[i] != r.inc;
        }
    }
    return bad;
}

// lane.h's helpers and approx.h's polynomials against common.h's scalar ones on all pairs of special and ordinary
// values (the masked libm calls: the scalar call on the lanes of the mask, 0 elsewhere); returns mismatches.
long check_helpers() {
    const float v[] = {0.f, -0.f, 1.f, -1.f, 0.5f, -2.5f, 1e-30f, 3e38f, INFINITY, -INFINITY, NAN, 1e-42f, 7.25f,
                       -88.f, 89.f, 0.1f, 88.37626f, -87.5f, 3.92f, -0.999f, 0.7071f, 1e-38f};
    const int nv = sizeof(v) / sizeof(v[0]);
    long bad = 0;
    for (int j = 0; j < nv; ++j) {
        LaneF a, b;
        LaneM m;
        for (int i = 0; i < kLanes; ++i) {
            a.set(i, v[(i + j) % nv]);
            b.set(i, v[(3 * i + 7 * j + 1) % nv]);
            m.set(i, ((i * 5 + j) & 2) != 0);
        }
        LaneF sc_s, sc_c;
        sincos_approx(a, sc_s, sc_c);
        LaneF r[] = {a + b, a - b, a * b, a / b, -a, min_(a, b), max_(a, b), clamp_(a, b, LaneF(1.f)), abs_(a),
                     sqrt_(a), exp_approx(a), log_approx(a), erf_approx(a), sin_(a), cos_(a), tan_(a),
                     erfinv_approx(a), select_(m, a, b), select_(a < b, a, b), select_(a <= b, a, b),
                     select_(a == b, a, b), select_(a != b, a, b), select_((a > b) & !(a >= 1.f), a, b),
                     select_((a > b) | m, a, b), sin_(a, m), cos_(a, m),
                     tan_(a, m), select_(m, erfinv_approx(a, m), b), acos_approx(a), floor_(a),
                     copysign_(a, b), select_(signbit_(a), a, b), atan2_approx(a, b), sc_s, sc_c};
        for (int i = 0; i < kLanes; ++i) {
            float x = a[i], y = b[i];
            bool mi = m[i];
            float sc_x, cc_x;
            sincos_approx(x, sc_x, cc_x);
            float s[] = {x + y, x - y, x * y, x / y, -x, min_(x, y), max_(x, y), clamp_(x, y, 1.f), abs_(x),
                         sqrt_(x), exp_approx(x), log_approx(x), erf_approx(x), sin_(x), cos_(x), tan_(x),
                         erfinv_approx(x), select_(mi, x, y), select_(x < y, x, y), select_(x <= y, x, y),
                         select_(x == y, x, y), select_(x != y, x, y), select_((x > y) && !(x >= 1.f), x, y),
                         select_((x > y) || mi, x, y),
                         mi ? sin_(x) : 0.f, mi ? cos_(x) : 0.f, mi ? tan_(x) : 0.f, mi ? erfinv_approx(x) : y,
                         acos_approx(x), floor_(x), copysign_(x, y), select_(signbit_(x), x, y),
                         atan2_approx(x, y), sc_x, cc_x};
            for (int k = 0; k < (int)(sizeof(s) / sizeof(s[0])); ++k) bad += !same(r[k][i], s[k]);
        }
        uint32_t expect = 0;
        for (int i = 0; i < kLanes; ++i) expect |= (uint32_t)m[i] << i;
        bad += bits(m) != expect;
        bad += any(m) != (expect != 0);
        bad += all_(m) != (expect == (1u << kLanes) - 1u) || all_(LaneM(true)) != true;
        bad += all(LaneM(true)) != true || none(LaneM(false)) != true || any(LaneM(false)) != false;
    }
    return bad;
}

}  // namespace

int main(int argc, char** argv) {
    const bool bench = argc > 1 && std::strcmp(argv[1], "bench") == 0;
    const size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : (bench ? 1u << 16 : (1u << 20) + 5);
    const int repeats = argc > 3 ? std::atoi(argv[3]) : 21;
    const size_t padded = (n + kLanes - 1) / kLanes * kLanes;
    Inputs in = make_inputs(n, padded);
    if (!bench) {
        long mismatches = 0, values = 0;
        for (int type : {kBeckmann, kGGX}) {
            Outputs a(padded), b(padded);
            run_scalar(in, type, n, a);
            run_lanes(in, type, n, b);
            for (size_t i = 0; i < kOut * n; ++i) mismatches += !same(a.v[i], b.v[i]);
            values += kOut * n;
        }
        std::printf("mismatches %ld of %ld\n", mismatches, values);
        const long helpers = check_helpers() + check_search_cdf() + check_gather() + check_sample_streams();
        std::printf("helper_mismatches %ld lanes %d\n", helpers, kLanes);
        return 0;
    }
    Outputs a(padded), b(padded);
    double best[2] = {1e30, 1e30};
    for (int r = 0; r < repeats; ++r) {
        for (int k = 0; k < 2; ++k) {
            auto t0 = std::chrono::steady_clock::now();
            if (k == 0) run_scalar(in, kGGX, padded, a);
            else run_lanes(in, kGGX, padded, b);
            double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            best[k] = std::min(best[k], dt);
        }
    }
    std::printf("scalar_ns %.3f lanes_ns %.3f\n", best[0] * 1e9 / padded, best[1] * 1e9 / padded);
    return 0;
}
