// Radiant kernels (CPU only): the fused path loop over kLanes paths at once (lane.h: 16 with AVX-512, else 8), the
// lane form of path.h's trace_sample with the same result for every path, bit for bit.
//
// Each path keeps its own PCG32 stream (seeded lane by lane; drawn in lanes, LaneRNG, each lane's numbers in the
// scalar loop's order), so the image is the scalar loop's. A lane whose path ends takes the next camera sample of the
// range at the top of the next bounce. Rays:
//   - with AVX2 / AVX-512 (bvh_wide.h packet_traverse; path_cpu.cpp picks the mode; "one packet" below is a lane
//     group's kLanePackets packets of kPacketRays rays, one packet in the default builds): the
//     camera rays of kLanes consecutive samples made in lanes (their streams seeded and film positions drawn too,
//     LaneRNG::seed_samples; camera_ray) and traced ahead as one packet
//     (neighbouring pixels), the lanes taking them later use those hits; the group's other closest-hit rays and its
//     shadow rays as one packet each on small trees, one ray at a time (the 8-/4-wide tree) on larger ones; the same
//     hits as the single-ray traversal (t bit for bit).
// Per bounce:
//   - per lane, through path.h's scalar code: closest hit and shadow rays where not in packets, the pdf of a hit
//     area light, and the emitter sampling of kinds other than area meshes, point / spot / directional lights and
//     the envmap;
//   - as gathers (lane.h gather_, one per field for all lanes): surface_refs' lookups (a hit triangle's vertices /
//     normals / uvs or a sphere's center and frame, its shape's flip, BSDF row and emitter), an area mesh's
//     triangle vertices, the envmap's cells, texels and cell pdfs, and the CDF searches of both (lane.h
//     search_cdf_lanes: all lanes' bisections step by step, one gather a step);
//   - per material: the BSDF row (bsdf_at once per call for an untextured row, once per lane for a textured one);
//     per emitter chosen: its kind and fields;
//   - in lanes, from the shared templated headers: surface attributes (triangle_surface, sphere_surface), the
//     environment seen and its MIS weight (env_eval), area-mesh and envmap emitter samples (area_mesh_sample,
//     envmap_sample), the shading frame, wi, the BSDF lobes that have a lane form (bsdf.h: diffuse, plastic,
//     dielectric, roughconductor, roughplastic eval / pdf / sample) run once over the lanes of their type, MIS
//     weights, the throughput / radiance updates, offset origins, depth, the emitter choice, Russian roulette. BSDF
//     types without a lane form go lane by lane through bsdf.h's scalar bsdf_eval / bsdf_pdf / bsdf_sample. exp,
//     log, erf, acos and sincos are approx.h's polynomials, in lanes; the libm calls left (lane.h sin_ / cos_ / tan_
//     of anisotropic microfacet sampling, sample_emitter's sphere lights) are made lane by lane, on the lanes that
//     use their result only.
#pragma once
#include <memory>
#include <new>

#include "radiant/lane.h"
#include "radiant/path.h"

namespace radiant {

using LVec3 = Vec3T<LaneF>;

inline Vec3 lane_get(const LVec3& v, int i) { return Vec3(v.x[i], v.y[i], v.z[i]); }
// Three rows of kLanes floats (x, y, z; lane i's vector in column i) as lanes: the glue stores per-lane values into
// such rows with scalar stores and reads them back at once.
inline LVec3 load_rows3(const float (*rows)[kLanes]) {
    return LVec3(LaneF::load(rows[0]), LaneF::load(rows[1]), LaneF::load(rows[2]));
}
// base[k], base[k + 1], base[k + 2] on the lanes of m (lane.h gather_; 0 on the others): a table's 3-vectors.
inline LVec3 gather3(const float* base, lane_vi k, LaneM m) {
    return LVec3(gather_(base, k, m), gather_(base, k + 1, m), gather_(base, k + 2, m));
}
inline void lane_set(LVec3& v, int i, Vec3 a) {
    v.x.set(i, a.x);
    v.y.set(i, a.y);
    v.z.set(i, a.z);
}

// The lanes `m` of an emitter sample take those of `from` (one emitter kind's lanes merged into the group's).
inline void take_sample(EmitterSampleT<LaneF>& es, const EmitterSampleT<LaneF>& from, LaneM m) {
    es.d = select_(m, from.d, es.d);
    es.dist = select_(m, from.dist, es.dist);
    es.weight = select_(m, from.weight, es.weight);
    es.pdf = select_(m, from.pdf, es.pdf);
    es.delta = select_(m, from.delta, es.delta);
    es.target = select_(m, from.target, es.target);
}

// One emitter sample in every lane.
inline EmitterSampleT<LaneF> broadcast(const EmitterSample& e) {
    EmitterSampleT<LaneF> r;
    r.d = LVec3(e.d.x, e.d.y, e.d.z);
    r.dist = LaneF(e.dist);
    r.weight = LVec3(e.weight.x, e.weight.y, e.weight.z);
    r.pdf = LaneF(e.pdf);
    r.delta = LaneM(e.delta);
    r.target = LVec3(e.target.x, e.target.y, e.target.z);
    return r;
}

// Calls f(i) for each set bit i of m, lowest first.
template <typename Fn>
inline void for_lanes(uint32_t m, const Fn& f) {
    while (m) {
        int i = __builtin_ctz(m);
        m &= m - 1;
        f(i);
    }
}

// The lanes of `lanes` (not empty) whose key[i] equals the lowest lane's: one group of lanes that share a BSDF row
// or an emitter, handled at once.
inline uint32_t same_key(uint32_t lanes, const int32_t* key) {
    const int32_t k = key[__builtin_ctz(lanes)];
    uint32_t same = 0;
    for_lanes(lanes, [&](int i) { same |= (uint32_t)(key[i] == k) << i; });
    return same;
}

// The lanes' PCG32 streams (path.h PCG32) as vectors of their states and increments: a draw of every lane is a few
// vector operations (the 64-bit multiply too) instead of kLanes scalar steps; lane i's numbers are its own stream's,
// bit for bit.
typedef uint64_t lane_vu64 __attribute__((vector_size(8 * kLanes)));
typedef int64_t lane_vi64 __attribute__((vector_size(8 * kLanes)));
typedef uint32_t lane_vu32 __attribute__((vector_size(4 * kLanes)));

struct LaneRNG {
    lane_vu64 state = {}, inc = {};
    // The lanes of m take the streams (state[i], inc[i]).
    void take(LaneM m, const uint64_t* state_in, const uint64_t* inc_in) {
        lane_vu64 s, n;
        std::memcpy(&s, state_in, sizeof(s));
        std::memcpy(&n, inc_in, sizeof(n));
        const lane_vu64 on = (lane_vu64)__builtin_convertvector(m.v, lane_vi64);
        state = (s & on) | (state & ~on);
        inc = (n & on) | (inc & ~on);
    }
    // Every lane's stream becomes path.h sample_rng(seed, pixel[i], sample[i])'s.
    void seed_samples(uint64_t seed, lane_vu64 pixel, lane_vu64 sample) {
        lane_vu64 initstate, initseq;
        sample_stream(seed, pixel, sample, initstate, initseq);
        PCG32::seeded(initstate, initseq, state, inc);
    }
    // PCG32::next_float of the lanes of m, whose streams move one step (the others' stay; they get 0).
    LaneF next_float(LaneM m) {
        const lane_vu64 old = state;
        const lane_vu64 on = (lane_vu64)__builtin_convertvector(m.v, lane_vi64);
        state = ((old * PCG32::kMultiplier + inc) & on) | (old & ~on);
        const lane_vu32 x = __builtin_convertvector(((old >> 18) ^ old) >> 27, lane_vu32);
        const lane_vu32 rot = __builtin_convertvector(old >> 59, lane_vu32);
        const lane_vu32 r = (x >> rot) | (x << ((-rot) & 31u));
        // r >> 8 < 2^24: its int32 conversion is the scalar code's exact uint32 one.
        const LaneF f(__builtin_convertvector((lane_vi)(r >> 8), lane_vf) * (1.f / 16777216.f));
        return select_(m, f, LaneF(0.f));
    }
};

#if RADIANT_PACKET_BVH
// A lane group's rays as kLanePackets ray packets (bvh_wide.h packet_traverse): lanes [k P, (k + 1) P) are packet
// k's rays, P = kPacketRays (one packet where the widths agree: the default builds).
static_assert(kLanes % kPacketRays == 0, "a lane group is whole ray packets");
constexpr int kLanePackets = kLanes / kPacketRays;
struct LaneRays {
    PacketRays p[kLanePackets];
};
// Lanes [k P, (k + 1) P) of x into packet k's row (a row of each packet: a member pointer of PacketRays).
template <typename T>
inline void to_packets(LaneRays& r, T (PacketRays::*row)[kPacketRays], const T* x) {
    for (int k = 0; k < kLanePackets; ++k) std::memcpy(r.p[k].*row, x + k * kPacketRays, sizeof(r.p[k].*row));
}
template <typename T>
inline void from_packets(const LaneRays& r, T (PacketRays::*row)[kPacketRays], T* x) {
    for (int k = 0; k < kLanePackets; ++k) std::memcpy(x + k * kPacketRays, r.p[k].*row, sizeof(r.p[k].*row));
}
inline void to_packets(LaneRays& r, float (PacketRays::*row)[kPacketRays], LaneF x) {
    if constexpr (kLanePackets == 1) {
        x.store(r.p[0].*row);
    } else {
        alignas(64) float xs[kLanes];
        x.store(xs);
        to_packets(r, row, xs);
    }
}
// t starts at tmax, no hit yet.
inline void packet_rays(LaneRays& r, const LVec3& o, const LVec3& d, LaneF tmin, LaneF tmax) {
    to_packets(r, &PacketRays::ox, o.x);
    to_packets(r, &PacketRays::oy, o.y);
    to_packets(r, &PacketRays::oz, o.z);
    to_packets(r, &PacketRays::dx, d.x);
    to_packets(r, &PacketRays::dy, d.y);
    to_packets(r, &PacketRays::dz, d.z);
    to_packets(r, &PacketRays::tmin, tmin);
    to_packets(r, &PacketRays::t, tmax);
    for (PacketRays& q : r.p) {
        for (int i = 0; i < kPacketRays; ++i) {
            q.u[i] = q.v[i] = 0.f;
            q.best[i] = -1;
        }
    }
}
// packet_traverse over the group's packets: the lanes of `active`; returns lane bits as packet_traverse's.
template <bool ANY_HIT>
inline uint32_t lane_traverse(const PackedScene& sc, LaneRays& r, uint32_t active, int single_max) {
    uint32_t out = 0;
    for (int k = 0; k < kLanePackets; ++k) {
        const uint32_t m = (active >> (k * kPacketRays)) & ((1u << kPacketRays) - 1u);
        if (m) out |= packet_traverse<ANY_HIT>(*sc.wide, sc.prims, r.p[k], m, single_max) << (k * kPacketRays);
    }
    return out;
}
#endif

// The envmap's table lookups for path.h's templated envmap code (envmap_eval_uv, envmap_pdf_uv) as gathers on the
// lanes of m (the others' coordinates may be anything; they get 0): path.h env_texels / env_cell_pdf_at in lanes.
inline void env_texels(const PackedScene& sc, LaneF x0, LaneF y0, LVec3& c00, LVec3& c01, LVec3& c10, LVec3& c11,
                       LaneM m) {
    const int32_t stride = 3 * (sc.env_w + 1);
    const lane_vi p = __builtin_convertvector(y0.v, lane_vi) * stride + __builtin_convertvector(x0.v, lane_vi) * 3;
    c00 = gather3(sc.env_image, p, m);
    c01 = gather3(sc.env_image, p + 3, m);
    c10 = gather3(sc.env_image, p + stride, m);
    c11 = gather3(sc.env_image, p + stride + 3, m);
}
inline LaneF env_cell_pdf_at(const PackedScene& sc, LaneF x, LaneF y, LaneM m) {
    lane_vi col = __builtin_convertvector(x.v, lane_vi), row = __builtin_convertvector(y.v, lane_vi);
    col = col < 0 ? lane_vi{} : col;
    col = col > sc.env_w - 1 ? lane_vi{} + (sc.env_w - 1) : col;
    row = row < 0 ? lane_vi{} : row;
    row = row > sc.env_h - 2 ? lane_vi{} + (sc.env_h - 2) : row;
    return gather_(sc.env_cell_pdf, row * sc.env_w + col, m);
}

// Whether BSDF row `row` has textured fields (bsdf_at looks them up at each hit's uv).
inline bool row_textured(const PackedScene& sc, int32_t row) {
    const int32_t* tex = sc.row_textures + (int64_t)row * 2 * kRowTextures;
    for (int k = 0; k < kRowTextures; ++k)
        if (tex[2 * k] >= 0) return true;
    return false;
}

// The untextured BSDF rows' parameters, each looked up (bsdf_at, which then does not depend on the uv) once per
// trace_lanes call, at its first hit.
class UntexturedRows {
  public:
    explicit UntexturedRows(const PackedScene& sc)
        : sc_(sc),
          state_(new uint8_t[sc.num_bsdf_rows]()),
          rows_(new unsigned char[(size_t)sc.num_bsdf_rows * sizeof(BSDFParams)]) {}
    // Row r's parameters, or nullptr where it is textured.
    const BSDFParams* get(int32_t r) {
        BSDFParams* p = reinterpret_cast<BSDFParams*>(rows_.get()) + r;
        if (state_[r] == 0) {
            const bool textured = row_textured(sc_, r);
            if (!textured) ::new (p) BSDFParams(bsdf_at(sc_, r, 0.f, 0.f));
            state_[r] = textured ? 1 : 2;
        }
        return state_[r] == 2 ? p : nullptr;
    }

  private:
    const PackedScene& sc_;
    std::unique_ptr<uint8_t[]> state_;  // per row: 0 not met yet, 1 textured, 2 looked up
    std::unique_ptr<unsigned char[]> rows_;
};

// The BSDFs of the lanes being shaded at one bounce (lane i: BSDF row row[i] at uv (u[i], v[i])). The lanes of an
// untextured row share its parameters (UntexturedRows), a textured row's lanes have a bsdf_at each; the fields go
// into their lanes at once.
// Lanes of a type with a lane form (bsdf.h: diffuse, plastic, dielectric; roughconductor and roughplastic for the
// microfacet kind of the first such lane) run each such lobe once over its lanes; the rest go lane by lane through
// the scalar bsdf_eval / bsdf_pdf / bsdf_sample.
struct LaneBSDFs {
    // the textured lanes' rows, constructed in place (no zero-initialized Vec3s for rows never used)
    alignas(BSDFParams) unsigned char rows[kLanes * sizeof(BSDFParams)];
    const BSDFParams* params[kLanes];     // each lane's
    LaneM diffuse, roughconductor, plastic, roughplastic, dielectric, twosided, nonlinear;
    LVec3 diffuse_r, specular_r, specular_t, cond_eta, cond_k;
    LaneF alpha_u, alpha_v, eta, weight, internal;
    int distribution = -1;  // the microfacet lanes' kind (one per bounce; lanes of another go lane by lane)
    bool visible = false;
    uint32_t scalar = 0;  // lanes without a lane form
    uint32_t delta = 0;   // lanes of a delta BSDF (path.h is_delta_type: no emitter sampling)

    LaneBSDFs(const LaneBSDFs&) = delete;  // params point into rows
    LaneBSDFs(const PackedScene& sc, UntexturedRows& untextured, const int32_t* row, LaneF u, LaneF v,
              uint32_t lanes) {
        int n = 0;
        for (uint32_t left = lanes; left;) {
            const int i0 = __builtin_ctz(left);
            const int32_t r = row[i0];
            const BSDFParams* b = untextured.get(r);
            uint32_t same = 1u << i0;
            if (b != nullptr)
                same = same_key(left, row);
            else
                b = ::new (rows + n++ * sizeof(BSDFParams)) BSDFParams(bsdf_at(sc, r, u[i0], v[i0]));
            left &= ~same;
            for_lanes(same, [&](int i) { params[i] = b; });
            if (is_delta_type(b->type)) delta |= same;
            add(*b, same);
        }
    }

    // Row b's fields into the lanes of `lanes` (the fields of its type only: the others stay 0; their lanes'
    // results are not used).
    void add(const BSDFParams& b, uint32_t lanes) {
        LaneM* kind = nullptr;
        switch (b.type) {
            case kBSDF_diffuse: kind = &diffuse; break;
            case kBSDF_plastic: kind = &plastic; break;
            case kBSDF_dielectric: kind = &dielectric; break;
            case kBSDF_roughconductor:
            case kBSDF_roughplastic:
                if (distribution < 0) {
                    distribution = b.distribution;
                    visible = b.sample_visible;
                }
                if (b.distribution == distribution && b.sample_visible == visible)
                    kind = b.type == kBSDF_roughconductor ? &roughconductor : &roughplastic;
                break;
            default: break;
        }
        if (kind == nullptr) {
            scalar |= lanes;
            return;
        }
        const LaneM m = lanes_of(lanes);
        auto put3 = [&](LVec3& dst, Vec3 a) { dst = select_(m, LVec3(a.x, a.y, a.z), dst); };
        auto put = [&](LaneF& dst, float a) { dst = select_(m, LaneF(a), dst); };
        *kind = *kind | m;
        if (b.twosided) twosided = twosided | m;
        const bool coated = b.type == kBSDF_plastic || b.type == kBSDF_roughplastic;
        if (b.type == kBSDF_diffuse || coated) put3(diffuse_r, b.diffuse_reflectance);
        if (b.type != kBSDF_diffuse) put3(specular_r, b.specular_reflectance);
        if (b.type == kBSDF_dielectric) put3(specular_t, b.specular_transmittance);
        if (b.type == kBSDF_roughconductor) {
            put3(cond_eta, b.conductor_eta);
            put3(cond_k, b.conductor_k);
        }
        if (b.type == kBSDF_roughconductor || b.type == kBSDF_roughplastic) {
            put(alpha_u, b.alpha_u);
            put(alpha_v, b.alpha_v);
        }
        if (coated || b.type == kBSDF_dielectric) put(eta, b.eta);
        if (coated) {
            if (b.nonlinear) nonlinear = nonlinear | m;
            put(weight, b.specular_sampling_weight);
            put(internal, b.internal_reflectance);
        }
    }

    // The microfacet lanes' distribution; its transcendental calls and sampling branches run on the lanes of k only.
    MicrofacetT<LaneF> microfacet(LaneM k) const {
        return MicrofacetT<LaneF>(distribution < 0 ? 0 : distribution, alpha_u, alpha_v, visible, k);
    }

    // roughplastic's table at cos (lerp_table) on the lanes of m where cos > 0 (0 elsewhere).
    LaneF table(LaneM m, LaneF cos) const {
        LaneF t(0.f);
        for_lanes(bits(m & (cos > 0.f)), [&](int i) {
            t.set(i, lerp_table(params[i]->rough_transmittance, cos[i], kRoughTransmittanceRes));
        });
        return t;
    }

    // bsdf_eval on the lanes of m (0 elsewhere).
    LVec3 eval(LaneM m, LVec3 wi, LVec3 wo) const {
        LVec3 out(0.f);
        if (any(m & (diffuse | roughconductor | plastic | roughplastic))) {
            LVec3 wi_f = wi, wo_f = wo;
            twosided_flip<LaneF>(twosided, wi_f, wo_f);
            LaneM k = diffuse & m;
            if (any(k)) out = select_(k, diffuse_eval(diffuse_r, wi_f, wo_f), out);
            k = roughconductor & m;
            if (any(k))
                out = select_(k, roughconductor_eval(microfacet(k), cond_eta, cond_k, specular_r, wi_f, wo_f), out);
            k = plastic & m;
            if (any(k)) out = select_(k, plastic_eval(diffuse_r, nonlinear, eta, internal, wi_f, wo_f), out);
            k = roughplastic & m;
            if (any(k)) {
                LaneM front = k & (wo_f.z > 0.f);
                out = select_(k, roughplastic_eval(microfacet(k), specular_r, diffuse_r, nonlinear, eta, internal,
                                                   table(front, wi_f.z), table(front, wo_f.z), wi_f, wo_f),
                              out);
            }
        }
        for_lanes(scalar & bits(m), [&](int i) { lane_set(out, i, bsdf_eval(*params[i], lane_get(wi, i), lane_get(wo, i))); });
        return out;
    }

    // bsdf_pdf on the lanes of m (0 elsewhere).
    LaneF pdf(LaneM m, LVec3 wi, LVec3 wo) const {
        LaneF out(0.f);
        if (any(m & (diffuse | roughconductor | plastic | roughplastic))) {
            LVec3 wi_f = wi, wo_f = wo;
            twosided_flip<LaneF>(twosided, wi_f, wo_f);
            LaneM k = diffuse & m;
            if (any(k)) out = select_(k, diffuse_pdf(wi_f, wo_f), out);
            k = roughconductor & m;
            if (any(k)) out = select_(k, roughconductor_pdf(microfacet(k), wi_f, wo_f), out);
            k = plastic & m;
            if (any(k)) out = select_(k, plastic_pdf(weight, eta, wi_f, wo_f), out);
            k = roughplastic & m;
            if (any(k)) {
                LaneM front = k & (wo_f.z > 0.f);
                out = select_(k, roughplastic_pdf(microfacet(k), weight, table(front, wi_f.z), wi_f, wo_f), out);
            }
        }
        for_lanes(scalar & bits(m), [&](int i) { out.set(i, bsdf_pdf(*params[i], lane_get(wi, i), lane_get(wo, i))); });
        return out;
    }

    // bsdf_sample on the lanes of m: direction, weight, pdf, eta and whether the sampled lobe is a delta one
    // (Mitsuba's BSDFFlags::Delta: null, delta reflection or transmission).
    void sample(LaneM m, LVec3 wi, LaneF u1, LaneF u2x, LaneF u2y, LVec3& wo, LVec3& value, LaneF& pdf, LaneF& eta_out,
                LaneM& delta) const {
        wo = LVec3(0.f);
        value = LVec3(0.f);
        pdf = LaneF(0.f);
        eta_out = LaneF(1.f);
        delta = LaneM(false);
        if (any(m & (diffuse | plastic | dielectric | roughconductor | roughplastic))) {
            LVec3 wi_f = wi, unused(0.f);
            LaneM flip = twosided_flip<LaneF>(twosided, wi_f, unused);
            Vec2T<LaneF> u2(u2x, u2y);
            LVec3 s_wo, s_value;
            LaneF s_pdf, s_eta;
            LaneM s_delta;
            LaneM k = diffuse & m;
            if (any(k)) {
                diffuse_sample(diffuse_r, wi_f, u2, s_wo, s_pdf, s_value);
                wo = select_(k, s_wo, wo);
                value = select_(k, s_value, value);
                pdf = select_(k, s_pdf, pdf);
            }
            k = plastic & m;
            if (any(k)) {
                plastic_sample(specular_r, diffuse_r, nonlinear, eta, internal, weight, wi_f, u1, u2, s_wo, s_pdf,
                               s_value, s_delta);
                wo = select_(k, s_wo, wo);
                value = select_(k, s_value, value);
                pdf = select_(k, s_pdf, pdf);
                delta = select_(k, s_delta, delta);
            }
            k = dielectric & m;
            if (any(k)) {
                LaneM valid = dielectric_sample(specular_r, specular_t, eta, wi_f, u1, s_wo, s_pdf, s_value, s_eta,
                                                s_delta);
                wo = select_(k, s_wo, wo);
                value = select_(k, s_value, value);
                pdf = select_(k, s_pdf, pdf);
                eta_out = select_(k, s_eta, eta_out);
                delta = select_(k, valid, delta);  // either lobe is a delta one
            }
            k = roughconductor & m;
            if (any(k)) {
                roughconductor_sample(microfacet(k), cond_eta, cond_k, specular_r, wi_f, u2, s_wo, s_pdf, s_value);
                wo = select_(k, s_wo, wo);
                value = select_(k, s_value, value);
                pdf = select_(k, s_pdf, pdf);
            }
            k = roughplastic & m;
            if (any(k)) {
                auto lookup = [&](LaneM lanes, LaneF cos) { return table(lanes & k, cos); };
                roughplastic_sample(microfacet(k), specular_r, diffuse_r, nonlinear, eta, internal, weight, lookup, wi_f,
                                    u1, u2, s_wo, s_pdf, s_value, s_delta);
                wo = select_(k, s_wo, wo);
                value = select_(k, s_value, value);
                pdf = select_(k, s_pdf, pdf);
            }
            wo.z = select_(flip & m, -wo.z, wo.z);
        }
        const uint32_t by_lane = scalar & bits(m);
        for_lanes(by_lane, [&](int i) {
            BSDFSample bs = bsdf_sample(*params[i], lane_get(wi, i), u1[i], Vec2(u2x[i], u2y[i]));
            lane_set(wo, i, bs.wo);
            lane_set(value, i, bs.weight);
            pdf.set(i, bs.pdf);
            eta_out.set(i, bs.eta);
            delta.set(i, (bs.flags & (kFlagNull | kFlagDeltaReflection | kFlagDeltaTransmission)) != 0);
        });
    }
};

// Items [begin, end) of path_trace_cpu's layout (pixel window_pixel(win, i % (w h)), sample first_sample + i / (w h)),
// kLanes paths at a time; same outputs as trace_sample<WIDE> on each item.
template <bool WIDE>
void trace_lanes(const PackedScene& sc, const PathCamera& cam, const PathSettings& st, const PixelWindow& win,
                 int64_t first_sample, int64_t begin, int64_t end, float* pos_out, float* L_out,
                 const DeferredQueue* queue, int packet_camera, int packet) {
    const int64_t n_pix = (int64_t)win.w * win.h;
    const int32_t max_depth = st.max_depth >= 0 ? st.max_depth : (1 << 30);
    LaneRNG rng;
    UntexturedRows untextured(sc);
    int64_t item[kLanes], pixel[kLanes], sample[kLanes];
    lane_vi depth{};
    int32_t row_of[kLanes];  // the shaded lanes' BSDF rows
    LVec3 o, d, beta, L, prev_p;
    LaneF eta, prev_pdf, tmin, tmax;
    LaneM active(false), prev_delta(false);
    int64_t next = begin;
    // A camera sample: start_path's RNG stream, film position (written to pos_out) and ray.
    struct CameraSample {
        PCG32 rng;
        int64_t item, pixel, sample;
        Vec3 o, d;
        float tmin, tmax;
        Hit hit;  // with packets: its closest hit, traced ahead
    };
    // Its RNG stream and film position (path.h start_sample), then its ray (camera_ray).
    auto camera_sample = [&](CameraSample& cs) {
        cs.pixel = window_pixel(win, cam.width, cs.item % n_pix);
        cs.sample = first_sample + cs.item / n_pix;
        float px, py;
        start_sample(cam, st, cs.pixel, cs.sample, cs.rng, px, py);
        pos_out[2 * cs.item] = px;
        pos_out[2 * cs.item + 1] = py;
        camera_ray(cam, px, py, cs.d, cs.tmin, cs.tmax);
        cs.o = Vec3::load(cam.pos);
    };
    int cam_i = 0, cam_n = 0;  // the camera samples traced ahead, cams[cam_i, cam_n) not yet taken
    [[maybe_unused]] uint32_t fresh = 0;  // lanes whose closest hit (fresh_hit) was traced ahead
#if RADIANT_PACKET_BVH
    CameraSample cams[kLanes];  // their streams in cam_state / cam_inc (cams[k].rng unused)
    alignas(64) uint64_t cam_state[kLanes], cam_inc[kLanes];
    Hit fresh_hit[kLanes];
    // The next (up to) kLanes items' camera rays (made in lanes; the lanes past the range's end get empty rays)
    // as one packet.
    auto trace_camera_packet = [&]() {
        cam_n = (int)std::min<int64_t>(kLanes, end - next);
        cam_i = 0;
        // Their pixels and sample indices (window_pixel's): the first item's by division, then a step through the
        // window each (the window lies inside the film, so (pixel % width, pixel / width) is (x, y)).
        alignas(64) int64_t pixels[kLanes] = {}, samples[kLanes] = {};
        alignas(64) int32_t film_x[kLanes] = {}, film_y[kLanes] = {};
        const int64_t first = next, j = first % n_pix;
        int64_t sample_k = first_sample + first / n_pix;
        int32_t x = (int32_t)(j % win.w), y = (int32_t)(j / win.w);
        for (int k = 0; k < cam_n; ++k) {
            cams[k].item = next++;
            film_x[k] = win.x0 + x;
            film_y[k] = win.y0 + y;
            pixels[k] = cams[k].pixel = (int64_t)film_y[k] * cam.width + film_x[k];
            samples[k] = cams[k].sample = sample_k;
            if (++x == win.w) {
                x = 0;
                if (++y == win.h) {
                    y = 0;
                    ++sample_k;
                }
            }
        }
        // Their streams and film positions in lanes (path.h start_sample's, bit for bit).
        const LaneM on = lanes_of((1u << cam_n) - 1u);
        LaneRNG streams;
        lane_vu64 pixel_v, sample_v;
        std::memcpy(&pixel_v, pixels, sizeof(pixel_v));
        std::memcpy(&sample_v, samples, sizeof(sample_v));
        streams.seed_samples(st.seed, pixel_v, sample_v);
        lane_vi fx, fy;
        std::memcpy(&fx, film_x, sizeof(fx));
        std::memcpy(&fy, film_y, sizeof(fy));
        const LaneF px = LaneF(__builtin_convertvector(fx, lane_vf)) + streams.next_float(on);
        const LaneF py = LaneF(__builtin_convertvector(fy, lane_vf)) + streams.next_float(on);
        std::memcpy(cam_state, &streams.state, sizeof(cam_state));
        std::memcpy(cam_inc, &streams.inc, sizeof(cam_inc));
        float* film_pos = pos_out + 2 * first;
        for (int k = 0; k < cam_n; ++k) {
            film_pos[2 * k] = px.v[k];
            film_pos[2 * k + 1] = py.v[k];
        }
        LVec3 cd;
        LaneF cmin, cmax;
        camera_ray(cam, px, py, cd, cmin, cmax);
        const Vec3 pos = Vec3::load(cam.pos);
        LaneRays pr;
        packet_rays(pr, select_(on, LVec3(pos.x, pos.y, pos.z), LVec3(0.f)), select_(on, cd, LVec3(0.f)),
                    select_(on, cmin, LaneF(0.f)), select_(on, cmax, LaneF(0.f)));
        if (max_depth > 0) lane_traverse<false>(sc, pr, (1u << cam_n) - 1u, packet_camera);
        for (int k = 0; k < cam_n; ++k) {
            CameraSample& cs = cams[k];
            cs.o = pos;
            cs.d = lane_get(cd, k);
            cs.tmin = cmin[k];
            cs.tmax = cmax[k];
            const PacketRays& q = pr.p[k / kPacketRays];  // lane k's packet and its ray there
            const int i = k % kPacketRays;
            finish_hit(q.best[i], true, cs.o, cs.d, q.t[i], q.u[i], q.v[i], sc.prims, sc.prim_ids, sc.num_triangles,
                       cs.hit);
        }
    };
#endif
    // The lanes of m end their paths: their radiance out, the lanes idle.
    auto finish = [&](uint32_t m) {
        for_lanes(m, [&](int i) { lane_get(L, i).store(L_out + 3 * item[i]); });
        active = andnot(active, lanes_of(m));
    };

    for (;;) {
        // Idle lanes take the next camera samples (with packets: their camera rays traced ahead, kLanes consecutive
        // items of the range at a time, so a packet's rays leave neighbouring pixels).
        // Lanes set up one by one where they take a sample (their ray and RNG stream stored as scalars, read back as
        // lanes at once); the path state that starts the same for all is set in lanes after.
        uint32_t started = 0;
        alignas(64) float s_ray[8][kLanes] = {};  // origin, direction, tmin, tmax
        alignas(64) uint64_t s_state[kLanes] = {}, s_inc[kLanes] = {};
        for_lanes(~bits(active) & ((1u << kLanes) - 1u), [&](int i) {
            while (cam_i < cam_n || next < end) {
                CameraSample own;
                const CameraSample* cs = &own;
#if RADIANT_PACKET_BVH
                if (packet_camera >= 0) {
                    if (cam_i == cam_n) trace_camera_packet();
                    s_state[i] = cam_state[cam_i];
                    s_inc[i] = cam_inc[cam_i];
                    cs = &cams[cam_i++];
                    if (max_depth > 0) {
                        fresh |= 1u << i;
                        fresh_hit[i] = cs->hit;
                    }
                } else
#endif
                {
                    own.item = next++;
                    camera_sample(own);
                    s_state[i] = own.rng.state;
                    s_inc[i] = own.rng.inc;
                }
                if (max_depth <= 0) {
                    Vec3(0.f).store(L_out + 3 * cs->item);
                    continue;
                }
                item[i] = cs->item;
                pixel[i] = cs->pixel;
                sample[i] = cs->sample;
                for (int k = 0; k < 3; ++k) {
                    s_ray[k][i] = cs->o[k];
                    s_ray[3 + k][i] = cs->d[k];
                }
                s_ray[6][i] = cs->tmin;
                s_ray[7][i] = cs->tmax;
                started |= 1u << i;
                return;
            }
        });
        if (started) {
            const LaneM m = lanes_of(started);
            rng.take(m, s_state, s_inc);
            depth &= ~m.v;  // 0 on the lanes of m
            o = select_(m, load_rows3(s_ray), o);
            d = select_(m, load_rows3(s_ray + 3), d);
            tmin = select_(m, LaneF::load(s_ray[6]), tmin);
            tmax = select_(m, LaneF::load(s_ray[7]), tmax);
            L = select_(m, LVec3(0.f), L);
            beta = select_(m, LVec3(1.f), beta);
            eta = select_(m, LaneF(1.f), eta);
            prev_pdf = select_(m, LaneF(0.f), prev_pdf);
            prev_delta = prev_delta | m;
            prev_p = select_(m, o, prev_p);
            active = active | m;
        }
        if (none(active)) break;

        // Closest hits: the hit records (t, barycentrics, primitive; traced ahead, as a packet or lane by lane) into
        // arrays, then in lanes the lookups of the hit surfaces' attributes (path.h surface_refs: a triangle's
        // vertices, normals where its shape has them and uvs, or a sphere's center, radius and frame) and of their
        // shapes' BSDF rows and emitters.
        alignas(64) float h_t[kLanes] = {}, h_u[kLanes] = {}, h_v[kLanes] = {};
        alignas(64) int32_t prim[kLanes];
        for (int i = 0; i < kLanes; ++i) prim[i] = -1;
        const uint32_t traced = bits(active) & ~fresh;
#if RADIANT_PACKET_BVH
        if (packet >= 0) {  // the group's other rays as one packet
            LaneRays pr;
            packet_rays(pr, o, d, tmin, tmax);
            lane_traverse<false>(sc, pr, traced, packet);
            from_packets(pr, &PacketRays::t, h_t);
            from_packets(pr, &PacketRays::u, h_u);
            from_packets(pr, &PacketRays::v, h_v);
            alignas(64) int32_t h_best[kLanes];
            from_packets(pr, &PacketRays::best, h_best);
            lane_vi best;
            std::memcpy(&best, h_best, sizeof(best));
            const LaneM found = lanes_of(traced) & LaneM(best >= 0);
            const lane_vi p = gather_(sc.prim_ids, best, found) | ~found.v;  // -1 where nothing was hit
            std::memcpy(prim, &p, sizeof(p));
        } else
#endif
        for_lanes(traced, [&](int i) {
            Hit hit;
            trace_ray<WIDE, false>(sc, lane_get(o, i), lane_get(d, i), tmin[i], tmax[i], hit);
            h_t[i] = hit.t;
            h_u[i] = hit.u;
            h_v[i] = hit.v;
            prim[i] = hit.prim;
        });
#if RADIANT_PACKET_BVH
        for_lanes(fresh, [&](int i) {
            h_t[i] = fresh_hit[i].t;
            h_u[i] = fresh_hit[i].u;
            h_v[i] = fresh_hit[i].v;
            prim[i] = fresh_hit[i].prim;
        });
#endif
        lane_vi prim_v;
        std::memcpy(&prim_v, prim, sizeof(prim_v));
        const LaneM hit_m(prim_v >= 0);  // inactive lanes: -1
        const LaneF t_hit = select_(hit_m, LaneF::load(h_t), LaneF(0.f));
        const LaneM seen = !(LaneM(depth == 0) & LaneM(st.hide_emitters));  // emitters seen at this depth
        const LaneM escaped = sc.env >= 0 ? andnot(active, hit_m) & seen : LaneM(false);  // env_eval in lanes below
        // The hit lanes' lookups as gathers (surface_refs' fields; off lanes read nothing and get 0): the shape's
        // flip, normals flag, BSDF row (and its type, for the deferred seam) and emitter.
        const lane_vi shape = gather_(sc.prim_shape, prim_v, hit_m), info = shape * kShapeInts;
        const LaneM flip = hit_m & LaneM(gather_(sc.shape_info, info, hit_m) != 0);
        const LaneM tri = hit_m & LaneM(prim_v < sc.num_triangles), sph = andnot(hit_m, tri);
        const LaneM tri_normals = tri & LaneM(gather_(sc.shape_info, info + 1, tri) != 0);
        const lane_vi row_v = gather_(sc.shape_info, info + 2, hit_m);
        std::memcpy(row_of, &row_v, sizeof(row_v));
        const lane_vi em_v = gather_(sc.shape_info, info + 3, hit_m) | ~hit_m.v;  // -1: none (or no hit)
        const LaneM deferred_row(
            gather_(sc.bsdf_rows, row_v * kBSDFParamCount + (int32_t)kParam_type, hit_m).v >= (float)kDeferredBSDFType);
        const LaneF b1 = select_(tri, LaneF::load(h_u), LaneF(0.f)), b2 = select_(tri, LaneF::load(h_v), LaneF(0.f));
        fresh = 0;
        // Surface attributes in lanes (path.h surface_at's math: triangle_surface, sphere_surface).
        LVec3 P = o + d * t_hit, NG(0.f, 0.f, 1.f), NS(0.f, 0.f, 1.f), DPDU(0.f);
        LaneF U(0.f), V(0.f);
        if (any(tri)) {
            // A triangle's vertices, normals (0 where its shape has none, as surface_refs') and uvs.
            LVec3 vtx[3], nrm[3];
            LaneF uv[6];
            for (int j = 0; j < 3; ++j) {
                const lane_vi f = gather_(sc.faces, prim_v * 3 + j, tri);
                vtx[j] = gather3(sc.vertices, f * 3, tri);
                if (any(tri_normals)) nrm[j] = gather3(sc.normals, f * 3, tri_normals);
                uv[2 * j] = gather_(sc.uvs, f * 2, tri);
                uv[2 * j + 1] = gather_(sc.uvs, f * 2 + 1, tri);
            }
            LVec3 ng, ns, dpdu;
            LaneF u, v;
            triangle_surface(vtx[0], vtx[1], vtx[2], nrm[0], nrm[1], nrm[2], tri_normals, uv[0], uv[1], uv[2], uv[3],
                             uv[4], uv[5], b1, b2, ng, ns, u, v, dpdu);
            NG = select_(tri, ng, NG);
            NS = select_(tri, ns, NS);
            U = select_(tri, u, U);
            V = select_(tri, v, V);
            DPDU = select_(tri, dpdu, DPDU);
        }
        if (any(sph)) {
            LVec3 n, dpdu;
            LaneF u, v;
            // A sphere's center, radius and to-local rows.
            const lane_vi c = (prim_v - sc.num_triangles) * 4, m = shape * 9;
            sphere_surface(P, gather3(sc.spheres, c, sph), gather_(sc.spheres, c + 3, sph),
                           gather3(sc.shape_to_local, m, sph), gather3(sc.shape_to_local, m + 3, sph),
                           gather3(sc.shape_to_local, m + 6, sph), n, u, v, dpdu);
            NG = select_(sph, n, NG);
            NS = select_(sph, n, NS);
            U = select_(sph, u, U);
            V = select_(sph, v, V);
            DPDU = select_(sph, dpdu, DPDU);
        }
        NG = select_(flip, -NG, NG);
        NS = select_(flip, -NS, NS);

        // Emission seen (environment or area light, MIS-weighted against NEE; the area light's pdf lane by lane on
        // the lanes that see one), depth, the deferred seam.
        LVec3 Le(0.f);
        LaneF Le_w(0.f);
        const LaneM sees_light = hit_m & LaneM(em_v >= 0) & seen & (dot(NS, -d) > 0.f);
        for_lanes(bits(sees_light), [&](int i) {
            const Vec3 di = lane_get(d, i);
            const int32_t em = em_v[i];
            float pdf_l = area_emitter_pdf(sc, em, lane_get(prev_p, i), lane_get(P, i), lane_get(NS, i), normalize(di));
            lane_set(Le, i, Vec3::load(sc.emitter_params + (int64_t)em * kEmitterFloats + kEmColor));
            Le_w.set(i, prev_delta[i] ? 1.f : mis_weight(prev_pdf[i], pdf_l));
        });
        LaneM add = sees_light;
        depth -= hit_m.v;  // + 1 on the hit lanes
        const LaneM deep = hit_m & LaneM(depth >= max_depth);
        const LaneM deferred = andnot(hit_m & deferred_row, deep);
        const LaneM ended = andnot(active, hit_m) | deep | deferred;
        const LaneM shade = andnot(andnot(hit_m, deep), deferred);
        if (any(escaped)) {
            LaneF pdf_env;
            Le = select_(escaped, env_eval(sc, d, &pdf_env, escaped), Le);
            Le_w = select_(escaped, select_(prev_delta, LaneF(1.f), mis_weight(prev_pdf, pdf_env)), Le_w);
            add = add | escaped;
        }
        L = select_(add, L + beta * Le * Le_w, L);
        for_lanes(bits(deferred), [&](int i) {
            export_deferred(queue, lane_get(o, i), lane_get(d, i), lane_get(beta, i), lane_get(L, i),
                            pos_out[2 * item[i]], pos_out[2 * item[i] + 1], eta[i], prev_pdf[i], prev_delta[i],
                            depth[i], pixel[i], sample[i]);
        });
        finish(bits(ended));
        const uint32_t shade_bits = bits(shade);
        if (!shade_bits) continue;

        // Mitsuba's initialize_sh_frame: s = dp_du made orthogonal to ns, t = ns x s (Duff's basis if undefined).
        FrameT<LaneF> frame(NS);
        LVec3 tangent = DPDU - NS * dot(NS, DPDU);
        LaneF tlen = length(tangent);
        LaneM has_tangent = tlen > 1e-12f;
        LVec3 ts = tangent / tlen;
        frame.s = select_(has_tangent, ts, frame.s);
        frame.t = select_(has_tangent, cross(NS, ts), frame.t);
        LVec3 wi = frame.to_local(-normalize(d));
        const LaneBSDFs bsdfs(sc, untextured, row_of, U, V, shade_bits);

        // Next-event estimation (smooth BSDFs only). The emitter is chosen in lanes and its kind handled once per
        // emitter chosen (the lanes that chose it at once): area-mesh lanes search their triangles in lanes
        // (lane.h search_cdf_lanes) and gather its vertices, envmap lanes their cells, and sample them in lanes
        // (area_mesh_sample, envmap_sample), as point, spot and sphere lights (point_sample, sphere_sample); other
        // kinds go lane by lane through sample_emitter. Shadow rays as a packet or lane by lane.
        EmitterSampleT<LaneF> es;
        es.d = LVec3(0.f, 0.f, 1.f);
        es.dist = LaneF(kInf);
        es.pdf = LaneF(0.f);
        es.delta = LaneM(false);
        LaneM mesh(false), mesh_normals(false), mesh_flip(false), env(false), point(false), spot(false),
            sphere(false), sphere_flip(false);
        LVec3 p_pos, p_color, p_axis, s_center, s_color;
        LaneF p_cutoff(0.f), p_beam(0.f), p_cos_cutoff(0.f), p_cos_beam(0.f), s_radius(1.f);
        // The area-mesh lanes' triangles: vertices and normals (0 where the mesh has none).
        LVec3 mesh_v[3], mesh_n[3];
        LVec3 m_color;
        LaneF m_choose_area(0.f);
        LaneF c_row(0.f), c_col(0.f), c_row_lo(0.f), c_row_p(0.f), c_col_lo(0.f), c_col_p(0.f), c_pdf(0.f);
        int32_t env_e = -1;  // the envmap's emitter index
        const int32_t ne = sc.num_emitters;
        const LaneF u0 = rng.next_float(shade), u1 = rng.next_float(shade), u2 = rng.next_float(shade),
                    u3 = rng.next_float(shade);
        const uint32_t nee_bits = ne > 0 ? shade_bits & ~bsdfs.delta : 0u;
        alignas(64) int32_t emitter_of[kLanes];
        {
            const lane_vi e = __builtin_convertvector((u0 * (float)ne).v, lane_vi);  // (int32_t) of each lane
            std::memcpy(emitter_of, &e, sizeof(e));
            for (int i = 0; i < kLanes; ++i) emitter_of[i] = min_(emitter_of[i], ne - 1);
        }
        for (uint32_t left = nee_bits; left;) {
            const int32_t e = emitter_of[__builtin_ctz(left)];
            const uint32_t same = same_key(left, emitter_of);
            left &= ~same;
            const LaneM m = lanes_of(same);
            const int32_t* info = sc.emitter_info + (int64_t)e * kEmitterInts;
            const float* prm = sc.emitter_params + (int64_t)e * kEmitterFloats;
            if (info[0] == kAreaMesh) {
                // area_mesh_triangle's search in lanes, the mesh's fields once, each lane's triangle's vertices
                // (and normals where the mesh has them; else 0, unused) gathered.
                const lane_vi kv = info[3] >= 1 && info[3] <= 32
                                       ? search_cdf_short(sc.tri_cdf + info[2], info[3], u1, m)
                                       : search_cdf_lanes(sc.tri_cdf, lane_vi{} + info[2], info[3], u1, m);
                const int32_t* shape = sc.shape_info + (int64_t)info[1] * kShapeInts;
                const bool normals = shape[1] != 0;
                if (normals) mesh_normals = mesh_normals | m;
                if (shape[0] != 0) mesh_flip = mesh_flip | m;
                m_choose_area = select_(m, LaneF(area_mesh_choose_area(sc, prm)), m_choose_area);
                const Vec3 color = Vec3::load(prm + kEmColor);
                m_color = select_(m, LVec3(color.x, color.y, color.z), m_color);
                // path.h area_mesh_triangle's lookups in lanes.
                const lane_vi face = gather_(sc.tri_faces, kv + info[2], m) * 3;
                for (int j = 0; j < 3; ++j) {
                    const lane_vi f = gather_(sc.faces, face + j, m) * 3;
                    mesh_v[j] = select_(m, gather3(sc.vertices, f, m), mesh_v[j]);
                    if (normals) mesh_n[j] = select_(m, gather3(sc.normals, f, m), mesh_n[j]);
                }
                mesh = mesh | m;
            } else if (info[0] == kPoint || info[0] == kSpot) {  // sampled in lanes below
                const Vec3 pos = Vec3::load(prm + kEmPos), color = Vec3::load(prm + kEmColor);
                p_pos = select_(m, LVec3(pos.x, pos.y, pos.z), p_pos);
                p_color = select_(m, LVec3(color.x, color.y, color.z), p_color);
                if (info[0] == kSpot) {
                    const Vec3 axis = Vec3::load(prm + kEmAxis);
                    p_axis = select_(m, LVec3(axis.x, axis.y, axis.z), p_axis);
                    p_cutoff = select_(m, LaneF(prm[kEmCutoff]), p_cutoff);
                    p_beam = select_(m, LaneF(prm[kEmBeam]), p_beam);
                    p_cos_cutoff = select_(m, LaneF(prm[kEmCosCutoff]), p_cos_cutoff);
                    p_cos_beam = select_(m, LaneF(prm[kEmCosBeam]), p_cos_beam);
                    spot = spot | m;
                }
                point = point | m;
            } else if (info[0] == kAreaSphere) {  // sampled in lanes below
                const Vec3 center = Vec3::load(prm + kEmPos), color = Vec3::load(prm + kEmColor);
                s_center = select_(m, LVec3(center.x, center.y, center.z), s_center);
                s_color = select_(m, LVec3(color.x, color.y, color.z), s_color);
                s_radius = select_(m, LaneF(prm[kEmRadius]), s_radius);
                if (sc.shape_info[(int64_t)info[1] * kShapeInts] != 0) sphere_flip = sphere_flip | m;
                sphere = sphere | m;
            } else if (info[0] == kEnvmap && (env_e < 0 || env_e == e)) {  // its cells searched for below
                env_e = e;
                env = env | m;
            } else if (info[0] == kDirectional) {  // the same sample for every lane (no ref point, no numbers)
                const int i0 = __builtin_ctz(same);
                take_sample(es, broadcast(sample_emitter(sc, lane_get(P, i0), u0[i0], u1[i0], Vec2(u2[i0], u3[i0]))),
                            m);
            } else {
                for_lanes(same, [&](int i) {
                    const EmitterSample e1 = sample_emitter(sc, lane_get(P, i), u0[i], u1[i], Vec2(u2[i], u3[i]));
                    lane_set(es.d, i, e1.d);
                    es.dist.set(i, e1.dist);
                    lane_set(es.weight, i, e1.weight);
                    es.pdf.set(i, e1.pdf);
                    es.delta.set(i, e1.delta);
                    lane_set(es.target, i, e1.target);
                });
            }
        }
        if (any(mesh)) {
            const EmitterSampleT<LaneF> m = area_mesh_sample(
                mesh_v[0], mesh_v[1], mesh_v[2], mesh_n[0], mesh_n[1], mesh_n[2], mesh_normals, mesh_flip, m_choose_area,
                m_color, P, u2, u3);
            take_sample(es, m, mesh);
        }
        if (any(point))
            take_sample(es,
                        point_sample(p_pos, p_color, spot, p_axis, p_cutoff, p_beam, p_cos_cutoff, p_cos_beam,
                                     1.f / (float)ne, P),
                        point);
        if (any(sphere))
            take_sample(es, sphere_sample(s_center, s_radius, sphere_flip, s_color, 1.f / (float)ne, P, u2, u3), sphere);
        if (any(env)) {
            // envmap_cell's two searches (row from the marginal CDF, column from that row's conditional one) in
            // lanes, then the cells' values gathered.
            const int32_t w = sc.env_w, h = sc.env_h;
            lane_vi row = search_cdf_lanes(sc.env_marginal, lane_vi{}, h - 1, u2, env);
            row = row < h - 2 ? row : lane_vi{} + (h - 2);
            const lane_vi col = search_cdf_lanes(sc.env_conditional, row * w, w, u3, env);
            // path.h envmap_cell's values in lanes.
            const LaneM row_in = env & LaneM(row > 0), col_in = env & LaneM(col > 0);
            c_row = LaneF(__builtin_convertvector(row, lane_vf));
            c_col = LaneF(__builtin_convertvector(col, lane_vf));
            c_row_lo = gather_(sc.env_marginal, row - 1, row_in);
            c_row_p = gather_(sc.env_marginal, row, env) - c_row_lo;
            c_col_lo = gather_(sc.env_conditional, row * w + col - 1, col_in);
            c_col_p = gather_(sc.env_conditional, row * w + col, env) - c_col_lo;
            c_pdf = gather_(sc.env_cell_pdf, row * w + col, env);
            const EmitterSampleT<LaneF> m =
                envmap_sample(sc, sc.emitter_params + (int64_t)env_e * kEmitterFloats, 1.f / (float)ne, c_row, c_col,
                              c_row_lo, c_row_p, c_col_lo, c_col_p, c_pdf, u2, u3, env);
            take_sample(es, m, env);
        }
        const LaneM nee = shade & (abs_(es.weight.x) + abs_(es.weight.y) + abs_(es.weight.z) > 0.f);
        if (any(nee)) {
            LVec3 wo_l = frame.to_local(es.d);
            LVec3 f = bsdfs.eval(nee, wi, wo_l);
            LaneM lit = nee & ((f.x != 0.f) | (f.y != 0.f) | (f.z != 0.f));
            LaneM visible(false);
            // Shadow rays, set up in lanes (path.h's per-ray arithmetic): to the sampled point, or along es.d to
            // infinity for directional and environment samples.
            const LVec3 so = offset_origin(P, NG, es.d);
            const LaneM finite = is_finite(es.dist);
            const LVec3 sdir = select_(finite, es.target - so, es.d);
            const LaneF smax = select_(finite, LaneF(1.f - kShadowEps), LaneF(kInf));
#if RADIANT_PACKET_BVH
            if (packet >= 0) {  // as one packet
                LaneRays sr;
                packet_rays(sr, so, sdir, LaneF(0.f), smax);
                const uint32_t occluded = lane_traverse<true>(sc, sr, bits(lit), packet);
                visible = lanes_of(bits(lit) & ~occluded);
            } else
#endif
            for_lanes(bits(lit), [&](int i) {
                Hit sh;
                if (!trace_ray<WIDE, true>(sc, lane_get(so, i), lane_get(sdir, i), 0.f, smax[i], sh))
                    visible.set(i, true);
            });
            if (any(visible)) {
                LaneF w = select_(es.delta, LaneF(1.f), mis_weight(es.pdf, bsdfs.pdf(visible & !es.delta, wi, wo_l)));
                L = select_(visible, L + beta * f * es.weight * w, L);
            }
        }

        // BSDF sampling.
        const LaneF ub0 = rng.next_float(shade), ub1 = rng.next_float(shade), ub2 = rng.next_float(shade);
        LVec3 bs_wo, bs_weight;
        LaneF bs_pdf, bs_eta;
        LaneM bs_delta;
        bsdfs.sample(shade, wi, ub0, ub1, ub2, bs_wo, bs_weight, bs_pdf, bs_eta, bs_delta);
        LVec3 wo = frame.to_world(bs_wo);
        beta = select_(shade, beta * bs_weight, beta);
        eta = select_(shade, eta * bs_eta, eta);
        prev_delta = select_(shade, bs_delta, prev_delta);
        prev_pdf = select_(shade, bs_pdf, prev_pdf);
        prev_p = select_(shade, P, prev_p);
        o = select_(shade, offset_origin(P, NG, wo), o);
        d = select_(shade, wo, d);
        tmin = select_(shade, LaneF(0.f), tmin);
        tmax = select_(shade, LaneF(kInf), tmax);
        // Russian roulette (Mitsuba: q = min(max(beta) * eta^2, 0.95) from rr_depth on).
        LaneF bmax = max_component(beta);
        LaneM dead = shade & !(bmax > 0.f);
        const LaneM rr = andnot(shade, dead) & LaneM(depth >= st.rr_depth);
        if (any(rr)) {
            const LaneF u_rr = rng.next_float(rr);
            LaneF q = min_(bmax * eta * eta, LaneF(0.95f));
            dead = dead | andnot(rr, u_rr < q);
            beta = select_(andnot(rr, dead), beta / max_(q, LaneF(1e-30f)), beta);
        }
        finish(bits(dead));
    }
}

}  // namespace radiant
