// Radiant kernels: analytic BSDFs (Mitsuba 3 diffuse, conductor, roughconductor, dielectric, thindielectric,
// roughdielectric, plastic, roughplastic; twosided by a flag) as eval / pdf / sample with tagged dispatch.
// Everything is in the local shading frame: z = normal, wi and wo point away from the surface. eval includes the
// cosine foreshortening |cos wo|; sample's weight is eval / pdf (or the delta lobe's analytic weight).
#pragma once
#include "bsdf_params.h"
#include "fresnel.h"
#include "microfacet.h"

namespace radiant {

// Parameters of one BSDF, already resolved (textures looked up by the caller). `rough_transmittance` points at
// the 64-entry table inside the packed row (roughplastic only).
struct BSDFParams {
    int type;
    bool twosided, sample_visible, nonlinear;
    int distribution;
    float alpha_u, alpha_v, eta, specular_sampling_weight, internal_reflectance;
    Vec3 conductor_eta, conductor_k, diffuse_reflectance, specular_reflectance, specular_transmittance;
    const float* rough_transmittance;

    RADIANT_HD static BSDFParams load(const float* row) {
        BSDFParams p;
        p.type = (int)row[kParam_type];
        p.twosided = row[kParam_twosided] != 0.f;
        p.distribution = (int)row[kParam_distribution];
        p.sample_visible = row[kParam_sample_visible] != 0.f;
        p.nonlinear = row[kParam_nonlinear] != 0.f;
        p.alpha_u = row[kParam_alpha_u];
        p.alpha_v = row[kParam_alpha_v];
        p.eta = row[kParam_eta];
        p.specular_sampling_weight = row[kParam_specular_sampling_weight];
        p.internal_reflectance = row[kParam_internal_reflectance];
        p.conductor_eta = Vec3::load(row + kParam_conductor_eta);
        p.conductor_k = Vec3::load(row + kParam_conductor_k);
        p.diffuse_reflectance = Vec3::load(row + kParam_diffuse_reflectance);
        p.specular_reflectance = Vec3::load(row + kParam_specular_reflectance);
        p.specular_transmittance = Vec3::load(row + kParam_specular_transmittance);
        p.rough_transmittance = row + kParam_external_transmittance;
        return p;
    }
    RADIANT_HD Microfacet microfacet() const { return Microfacet(distribution, alpha_u, alpha_v, sample_visible); }
};

struct BSDFSample {
    Vec3 wo;
    Vec3 weight;  // eval / pdf, including |cos wo|; 0 for an invalid sample
    float pdf;    // solid-angle density, or the discrete lobe probability for delta lobes; 0 when invalid
    float eta;    // relative IOR along the sampled path (1 unless refracted)
    int flags;    // BSDFFlag of the sampled lobe; 0 when invalid
};

RADIANT_HD BSDFSample invalid_sample() {
    BSDFSample s;
    s.wo = Vec3(0.f);
    s.weight = Vec3(0.f);
    s.pdf = 0.f;
    s.eta = 1.f;
    s.flags = 0;
    return s;
}

RADIANT_HD bool is_delta_type(int type) {
    return type == kBSDF_conductor || type == kBSDF_dielectric || type == kBSDF_thindielectric;
}

// Linear interpolation in a table over cos_theta in [0, 1] (Mitsuba roughplastic lerp_gather).
RADIANT_HD float lerp_table(const float* data, float x, int size) {
    x *= (float)(size - 1);
    int index = min_((int)x, size - 2);
    float w = x - (float)index;
    return data[index] + w * (data[index + 1] - data[index]);
}

RADIANT_HD float mulsign(float x, float y) { return y >= 0.f ? x : -x; }
RADIANT_HD Vec3 mulsign(Vec3 v, float y) { return y >= 0.f ? v : -v; }

// ---------------------------------------------------------------------------------------------------------
// Lobe-selection probabilities of the coated models (Mitsuba plastic / roughplastic).

RADIANT_HD float plastic_prob_specular(const BSDFParams& p, float f_i) {
    float ps = f_i * p.specular_sampling_weight, pd = (1.f - f_i) * (1.f - p.specular_sampling_weight);
    return ps / (ps + pd);
}

RADIANT_HD Vec3 coated_diffuse(const BSDFParams& p, float internal) {
    Vec3 d = p.diffuse_reflectance;
    if (p.nonlinear) return Vec3(d.x / (1.f - d.x * internal), d.y / (1.f - d.y * internal), d.z / (1.f - d.z * internal));
    return d / (1.f - internal);
}

// ---------------------------------------------------------------------------------------------------------
// eval (front side already resolved)

RADIANT_HD Vec3 eval_front(const BSDFParams& p, Vec3 wi, Vec3 wo) {
    float cos_i = wi.z, cos_o = wo.z;
    switch (p.type) {
        case kBSDF_diffuse:
            if (!(cos_i > 0.f && cos_o > 0.f)) return Vec3(0.f);
            return p.diffuse_reflectance * (kInvPi * cos_o);
        case kBSDF_roughconductor: {
            if (!(cos_i > 0.f && cos_o > 0.f)) return Vec3(0.f);
            Microfacet distr = p.microfacet();
            Vec3 h = normalize(wo + wi);
            float d = distr.D(h);
            if (d == 0.f) return Vec3(0.f);
            float g = distr.G(wi, wo, h);
            float value = d * g / (4.f * cos_i);  // Walter et al. 2007 eq. 20, times cos_o
            Vec3 f = fresnel_conductor_rgb(dot(wi, h), p.conductor_eta, p.conductor_k);
            return f * p.specular_reflectance * value;
        }
        case kBSDF_roughdielectric: {
            if (cos_i == 0.f) return Vec3(0.f);
            bool is_reflect = cos_i * cos_o > 0.f;
            float eta = cos_i > 0.f ? p.eta : 1.f / p.eta;
            float inv_eta = cos_i > 0.f ? 1.f / p.eta : p.eta;
            Vec3 m = normalize(wi + wo * (is_reflect ? 1.f : eta));  // Walter et al. 2007 eq. 13 / 16
            m = mulsign(m, m.z);
            Microfacet distr = p.microfacet();
            float d = distr.D(m);
            float f = fresnel_dielectric(dot(wi, m), p.eta).r;
            float g = distr.G(wi, wo, m);
            if (is_reflect) return p.specular_reflectance * (f * d * g / (4.f * fabsf(cos_i)));
            // Walter et al. 2007 eq. 21 with the radiance scale 1/eta^2 (solid-angle compression).
            float dim = dot(wi, m), dom = dot(wo, m), denom = dim + eta * dom;
            float value = fabsf((inv_eta * inv_eta) * (1.f - f) * d * g * eta * eta * dim * dom /
                                (cos_i * (denom * denom)));
            return p.specular_transmittance * value;
        }
        case kBSDF_plastic: {
            if (!(cos_i > 0.f && cos_o > 0.f)) return Vec3(0.f);
            float f_i = fresnel_dielectric(cos_i, p.eta).r, f_o = fresnel_dielectric(cos_o, p.eta).r;
            Vec3 diff = coated_diffuse(p, p.internal_reflectance);
            float inv_eta_2 = 1.f / (p.eta * p.eta);
            return diff * (square_to_cosine_hemisphere_pdf(wo) * inv_eta_2 * (1.f - f_i) * (1.f - f_o));
        }
        case kBSDF_roughplastic: {
            if (!(cos_i > 0.f && cos_o > 0.f)) return Vec3(0.f);
            Microfacet distr = p.microfacet();
            Vec3 h = normalize(wo + wi);
            float d = distr.D(h);
            float f = fresnel_dielectric(dot(wi, h), p.eta).r;
            float g = distr.G(wi, wo, h);
            Vec3 value = p.specular_reflectance * (f * d * g / (4.f * cos_i));
            float t_i = lerp_table(p.rough_transmittance, cos_i, kRoughTransmittanceRes);
            float t_o = lerp_table(p.rough_transmittance, cos_o, kRoughTransmittanceRes);
            float inv_eta_2 = 1.f / (p.eta * p.eta);
            Vec3 diff = coated_diffuse(p, p.internal_reflectance);
            return value + diff * (kInvPi * inv_eta_2 * cos_o * t_i * t_o);
        }
        default:  // delta BSDFs have no density to evaluate
            return Vec3(0.f);
    }
}

// ---------------------------------------------------------------------------------------------------------
// pdf (front side already resolved)

RADIANT_HD float microfacet_reflection_pdf(const Microfacet& distr, Vec3 wi, Vec3 wo, Vec3 h) {
    if (distr.sample_visible) return distr.D(h) * distr.smith_g1(wi, h) / (4.f * wi.z);
    return distr.pdf(wi, h) / (4.f * dot(wo, h));  // Jacobian of the half vector, Walter et al. 2007 eq. 14
}

RADIANT_HD float roughplastic_prob_specular(const BSDFParams& p, float cos_i) {
    float t_i = lerp_table(p.rough_transmittance, cos_i, kRoughTransmittanceRes);
    float ps = (1.f - t_i) * p.specular_sampling_weight, pd = t_i * (1.f - p.specular_sampling_weight);
    return ps / (ps + pd);
}

RADIANT_HD float pdf_front(const BSDFParams& p, Vec3 wi, Vec3 wo) {
    float cos_i = wi.z, cos_o = wo.z;
    switch (p.type) {
        case kBSDF_diffuse:
            if (!(cos_i > 0.f && cos_o > 0.f)) return 0.f;
            return square_to_cosine_hemisphere_pdf(wo);
        case kBSDF_roughconductor: {
            if (!(cos_i > 0.f && cos_o > 0.f)) return 0.f;
            Vec3 h = normalize(wo + wi);
            if (!(dot(wi, h) > 0.f && dot(wo, h) > 0.f)) return 0.f;
            return microfacet_reflection_pdf(p.microfacet(), wi, wo, h);
        }
        case kBSDF_roughdielectric: {
            if (cos_i == 0.f) return 0.f;
            bool is_reflect = cos_i * cos_o > 0.f;
            float eta = cos_i > 0.f ? p.eta : 1.f / p.eta;
            Vec3 m = normalize(wi + wo * (is_reflect ? 1.f : eta));
            m = mulsign(m, m.z);
            float dim = dot(wi, m), dom = dot(wo, m);
            if (!(dim * cos_i > 0.f && dom * cos_o > 0.f)) return 0.f;
            float denom = dim + eta * dom;
            float dwh_dwo = is_reflect ? 1.f / (4.f * dom) : (eta * eta * dom) / (denom * denom);  // eqs. 14, 17
            Microfacet sample_distr = p.microfacet();
            if (!p.sample_visible) {
                // Walter et al. 2007 sec. 5.3: widen the sampled lobe to tame the weights.
                float s = 1.2f - 0.2f * sqrtf(fabsf(cos_i));
                sample_distr.alpha_u *= s;
                sample_distr.alpha_v *= s;
            }
            float prob = sample_distr.pdf(mulsign(wi, cos_i), m);
            float f = fresnel_dielectric(dim, p.eta).r;
            prob *= is_reflect ? f : 1.f - f;
            return prob * fabsf(dwh_dwo);
        }
        case kBSDF_plastic: {
            if (!(cos_i > 0.f && cos_o > 0.f)) return 0.f;
            float f_i = fresnel_dielectric(cos_i, p.eta).r;
            return square_to_cosine_hemisphere_pdf(wo) * (1.f - plastic_prob_specular(p, f_i));
        }
        case kBSDF_roughplastic: {
            if (!(cos_i > 0.f && cos_o > 0.f)) return 0.f;
            float prob_specular = roughplastic_prob_specular(p, cos_i);
            Vec3 h = normalize(wo + wi);
            float result = microfacet_reflection_pdf(p.microfacet(), wi, wo, h) * prob_specular;
            return result + (1.f - prob_specular) * square_to_cosine_hemisphere_pdf(wo);
        }
        default:
            return 0.f;
    }
}

// ---------------------------------------------------------------------------------------------------------
// sample (front side already resolved)

RADIANT_HD BSDFSample sample_front(const BSDFParams& p, Vec3 wi, float u1, Vec2 u2) {
    BSDFSample s = invalid_sample();
    float cos_i = wi.z;
    switch (p.type) {
        case kBSDF_diffuse: {
            if (!(cos_i > 0.f)) return s;
            s.wo = square_to_cosine_hemisphere(u2);
            s.pdf = square_to_cosine_hemisphere_pdf(s.wo);
            if (!(s.pdf > 0.f)) return invalid_sample();
            s.weight = p.diffuse_reflectance;
            s.flags = kFlagDiffuseReflection;
            return s;
        }
        case kBSDF_conductor: {
            if (!(cos_i > 0.f)) return s;
            s.wo = reflect_local(wi);
            s.pdf = 1.f;
            s.weight = fresnel_conductor_rgb(cos_i, p.conductor_eta, p.conductor_k) * p.specular_reflectance;
            s.flags = kFlagDeltaReflection;
            return s;
        }
        case kBSDF_dielectric: {
            FresnelDielectric f = fresnel_dielectric(cos_i, p.eta);
            bool selected_r = u1 <= f.r;
            s.pdf = selected_r ? f.r : 1.f - f.r;
            if (selected_r) {
                s.wo = reflect_local(wi);
                s.weight = p.specular_reflectance;
                s.flags = kFlagDeltaReflection;
            } else {
                s.wo = refract_local(wi, f.cos_t, f.eta_ti);
                s.weight = p.specular_transmittance * (f.eta_ti * f.eta_ti);  // radiance: solid-angle compression
                s.eta = f.eta_it;
                s.flags = kFlagDeltaTransmission;
            }
            if (!(s.pdf > 0.f)) return invalid_sample();
            return s;
        }
        case kBSDF_thindielectric: {
            float r = fresnel_dielectric(fabsf(cos_i), p.eta).r;
            r *= 2.f / (1.f + r);  // all inter-reflections inside the slab: r + t r t + ... (Mitsuba thindielectric)
            bool selected_r = u1 <= r;
            s.pdf = selected_r ? r : 1.f - r;
            if (selected_r) {
                s.wo = reflect_local(wi);
                s.weight = p.specular_reflectance;
                s.flags = kFlagDeltaReflection;
            } else {
                s.wo = -wi;
                s.weight = p.specular_transmittance;
                s.flags = kFlagNull;  // Mitsuba marks the straight-through lobe Null
            }
            if (!(s.pdf > 0.f)) return invalid_sample();
            return s;
        }
        case kBSDF_plastic: {
            if (!(cos_i > 0.f)) return s;
            float f_i = fresnel_dielectric(cos_i, p.eta).r;
            float prob_specular = plastic_prob_specular(p, f_i), prob_diffuse = 1.f - prob_specular;
            if (u1 < prob_specular) {
                s.wo = reflect_local(wi);
                s.pdf = prob_specular;
                s.weight = p.specular_reflectance * (f_i / prob_specular);
                s.flags = kFlagDeltaReflection;
            } else {
                s.wo = square_to_cosine_hemisphere(u2);
                s.pdf = prob_diffuse * square_to_cosine_hemisphere_pdf(s.wo);
                if (!(s.pdf > 0.f)) return invalid_sample();
                float f_o = fresnel_dielectric(s.wo.z, p.eta).r;
                float inv_eta_2 = 1.f / (p.eta * p.eta);
                s.weight = coated_diffuse(p, p.internal_reflectance) *
                           (inv_eta_2 * (1.f - f_i) * (1.f - f_o) / prob_diffuse);
                s.flags = kFlagDiffuseReflection;
            }
            return s;
        }
        case kBSDF_roughconductor: {
            if (!(cos_i > 0.f)) return s;
            Microfacet distr = p.microfacet();
            float pdf_m;
            Vec3 m = distr.sample(wi, u2, pdf_m);
            s.wo = reflect(wi, m);
            float dom = dot(s.wo, m);
            if (!(pdf_m > 0.f && s.wo.z > 0.f && dom > 0.f)) return invalid_sample();
            s.pdf = pdf_m / (4.f * dom);
            float w = distr.sample_visible ? distr.smith_g1(s.wo, m)  // Heitz 2014 eq. 13: G2 / G1(wi)
                                           : distr.G(wi, s.wo, m) * dot(wi, m) / (cos_i * m.z);
            s.weight = fresnel_conductor_rgb(dot(wi, m), p.conductor_eta, p.conductor_k) * p.specular_reflectance * w;
            if (!(w > 0.f)) return invalid_sample();
            s.flags = kFlagGlossyReflection;
            return s;
        }
        case kBSDF_roughdielectric: {
            if (cos_i == 0.f) return s;
            Microfacet distr = p.microfacet(), sample_distr = distr;
            if (!p.sample_visible) {
                float sc = 1.2f - 0.2f * sqrtf(fabsf(cos_i));
                sample_distr.alpha_u *= sc;
                sample_distr.alpha_v *= sc;
            }
            float pdf_m;
            Vec3 m = sample_distr.sample(mulsign(wi, cos_i), u2, pdf_m);
            // All-normals sampling can pick a microfacet facing away from wi: no valid path (G1(wi, m) = 0).
            if (!(pdf_m != 0.f && dot(wi, m) * cos_i > 0.f)) return invalid_sample();
            FresnelDielectric f = fresnel_dielectric(dot(wi, m), p.eta);
            bool selected_r = u1 <= f.r;
            float pdf = pdf_m * (selected_r ? f.r : 1.f - f.r);
            Vec3 weight;
            float dwh_dwo;
            if (selected_r) {
                s.wo = reflect(wi, m);
                weight = p.specular_reflectance;
                dwh_dwo = 1.f / (4.f * dot(s.wo, m));
                s.flags = kFlagGlossyReflection;
                if (!(s.wo.z * cos_i > 0.f)) return invalid_sample();
            } else {
                s.wo = refract(wi, m, f.cos_t, f.eta_ti);
                s.eta = f.eta_it;
                weight = p.specular_transmittance * (f.eta_ti * f.eta_ti);
                float dom = dot(s.wo, m), denom = dot(wi, m) + s.eta * dom;
                dwh_dwo = (s.eta * s.eta * dom) / (denom * denom);
                s.flags = kFlagGlossyTransmission;
                if (!(s.wo.z * cos_i < 0.f)) return invalid_sample();
            }
            s.pdf = pdf * fabsf(dwh_dwo);
            if (p.sample_visible) {
                float g1 = distr.smith_g1(s.wo, m);
                s.weight = weight * g1;
                if (!(g1 > 0.f && s.pdf > 0.f)) return invalid_sample();
            } else {
                // Deviation from Mitsuba: its weight ignores the widened sampling lobe; we return eval / pdf.
                s.pdf = pdf_front(p, wi, s.wo);
                if (!(s.pdf > 0.f)) return invalid_sample();
                s.weight = eval_front(p, wi, s.wo) / s.pdf;
            }
            return s;
        }
        case kBSDF_roughplastic: {
            if (!(cos_i > 0.f)) return s;
            float prob_specular = roughplastic_prob_specular(p, cos_i);
            if (u1 < prob_specular) {
                float pdf_m;
                Vec3 m = p.microfacet().sample(wi, u2, pdf_m);
                // A back-facing microfacet (all-normals sampling) has no path; Mitsuba would still keep the
                // direction when the diffuse pdf covers it, which the pdf does not account for.
                if (!(dot(wi, m) > 0.f)) return invalid_sample();
                s.wo = reflect(wi, m);
                s.flags = kFlagGlossyReflection;
            } else {
                s.wo = square_to_cosine_hemisphere(u2);
                s.flags = kFlagDiffuseReflection;
            }
            s.pdf = pdf_front(p, wi, s.wo);
            if (!(s.pdf > 0.f)) return invalid_sample();
            s.weight = eval_front(p, wi, s.wo) / s.pdf;
            return s;
        }
        default:
            return s;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Public entry points: twosided BSDFs see a back-side wi mirrored to the front (Mitsuba twosided with the same
// BSDF on both sides); one-sided reflection BSDFs return 0 for back-side wi by their own cos_i > 0 test.

RADIANT_HD Vec3 bsdf_eval(const BSDFParams& p, Vec3 wi, Vec3 wo) {
    if (p.twosided && wi.z < 0.f) { wi.z = -wi.z; wo.z = -wo.z; }
    return eval_front(p, wi, wo);
}

RADIANT_HD float bsdf_pdf(const BSDFParams& p, Vec3 wi, Vec3 wo) {
    if (p.twosided && wi.z < 0.f) { wi.z = -wi.z; wo.z = -wo.z; }
    return pdf_front(p, wi, wo);
}

RADIANT_HD BSDFSample bsdf_sample(const BSDFParams& p, Vec3 wi, float u1, Vec2 u2) {
    bool flip = p.twosided && wi.z < 0.f;
    if (flip) wi.z = -wi.z;
    BSDFSample s = sample_front(p, wi, u1, u2);
    if (flip) s.wo.z = -s.wo.z;
    return s;
}

}  // namespace radiant
