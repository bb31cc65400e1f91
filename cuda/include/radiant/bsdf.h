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

template <typename F>
RADIANT_HD F plastic_prob_specular(F f_i, nodeduce_t<F> weight) {
    F ps = f_i * weight, pd = (1.f - f_i) * (1.f - weight);
    return ps / (ps + pd);
}
RADIANT_HD float plastic_prob_specular(const BSDFParams& p, float f_i) {
    return plastic_prob_specular(f_i, p.specular_sampling_weight);
}

template <typename F>
RADIANT_HD Vec3T<F> coated_diffuse(Vec3T<F> d, mask_t<F> nonlinear, nodeduce_t<F> internal) {
    Vec3T<F> nl(d.x / (1.f - d.x * internal), d.y / (1.f - d.y * internal), d.z / (1.f - d.z * internal));
    return select_(nonlinear, nl, d / (1.f - internal));
}
RADIANT_HD Vec3 coated_diffuse(const BSDFParams& p, float internal) {
    return coated_diffuse(p.diffuse_reflectance, p.nonlinear, internal);
}

// ---------------------------------------------------------------------------------------------------------
// The lobes written once for the float type F (common.h): float in the switches below (the kernels), LaneF in the
// CPU's lane loop (cpu/path_lanes.h), which runs each of them once over the lanes of its BSDF type.

// diffuse: eval, pdf, and sample (returns whether the sample is valid; an invalid one is invalid_sample()'s zeros).
template <typename F>
RADIANT_HD Vec3T<F> diffuse_eval(Vec3T<F> reflectance, Vec3T<F> wi, Vec3T<F> wo) {
    return select_((wi.z > 0.f) & (wo.z > 0.f), reflectance * (kInvPi * wo.z), Vec3T<F>(0.f));
}
template <typename F>
RADIANT_HD F diffuse_pdf(Vec3T<F> wi, Vec3T<F> wo) {
    return select_((wi.z > 0.f) & (wo.z > 0.f), square_to_cosine_hemisphere_pdf(wo), F(0.f));
}
template <typename F>
RADIANT_HD mask_t<F> diffuse_sample(Vec3T<F> reflectance, Vec3T<F> wi, Vec2T<F> u2, Vec3T<F>& wo, F& pdf,
                                    Vec3T<F>& weight) {
    wo = square_to_cosine_hemisphere(u2);
    pdf = square_to_cosine_hemisphere_pdf(wo);
    mask_t<F> valid = (wi.z > 0.f) & (pdf > 0.f);
    wo = select_(valid, wo, Vec3T<F>(0.f));
    pdf = select_(valid, pdf, F(0.f));
    weight = select_(valid, reflectance, Vec3T<F>(0.f));
    return valid;
}

// Twosided: a back-side wi is mirrored to the front, wo with it (where `twosided`).
template <typename F>
RADIANT_HD mask_t<F> twosided_flip(mask_t<F> twosided, Vec3T<F>& wi, Vec3T<F>& wo) {
    mask_t<F> flip = twosided & (wi.z < 0.f);
    wi.z = select_(flip, -wi.z, wi.z);
    wo.z = select_(flip, -wo.z, wo.z);
    return flip;
}

// roughconductor: eval and pdf (sampling: sample_front).
template <typename F>
RADIANT_HD Vec3T<F> roughconductor_eval(const MicrofacetT<F>& distr, Vec3T<F> eta, Vec3T<F> k, Vec3T<F> specular,
                                        Vec3T<F> wi, Vec3T<F> wo) {
    F cos_i = wi.z, cos_o = wo.z;
    mask_t<F> valid = (cos_i > 0.f) & (cos_o > 0.f);
    if (none(valid)) return Vec3T<F>(0.f);
    Vec3T<F> h = normalize(wo + wi);
    F d = distr.D(h);
    valid = valid & (d != 0.f);
    if (none(valid)) return Vec3T<F>(0.f);
    F g = distr.G(wi, wo, h);
    F value = d * g / (4.f * cos_i);  // Walter et al. 2007 eq. 20, times cos_o
    Vec3T<F> f = fresnel_conductor_rgb(dot(wi, h), eta, k);
    return select_(valid, f * specular * value, Vec3T<F>(0.f));
}

template <typename F>
RADIANT_HD F microfacet_reflection_pdf(const MicrofacetT<F>& distr, Vec3T<F> wi, Vec3T<F> wo, Vec3T<F> h) {
    if (distr.sample_visible) return distr.D(h) * distr.smith_g1(wi, h) / (4.f * wi.z);
    return distr.pdf(wi, h) / (4.f * dot(wo, h));  // Jacobian of the half vector, Walter et al. 2007 eq. 14
}

template <typename F>
RADIANT_HD F roughconductor_pdf(const MicrofacetT<F>& distr, Vec3T<F> wi, Vec3T<F> wo) {
    mask_t<F> valid = (wi.z > 0.f) & (wo.z > 0.f);
    if (none(valid)) return F(0.f);
    Vec3T<F> h = normalize(wo + wi);
    valid = valid & (dot(wi, h) > 0.f) & (dot(wo, h) > 0.f);
    if (none(valid)) return F(0.f);
    return select_(valid, microfacet_reflection_pdf(distr, wi, wo, h), F(0.f));
}

// plastic: eval, pdf and sample (`specular` set where the delta lobe was sampled).
template <typename F>
RADIANT_HD Vec3T<F> plastic_eval(Vec3T<F> diffuse, mask_t<F> nonlinear, F eta, F internal, Vec3T<F> wi,
                                  Vec3T<F> wo) {
    F cos_i = wi.z, cos_o = wo.z;
    mask_t<F> valid = (cos_i > 0.f) & (cos_o > 0.f);
    if (none(valid)) return Vec3T<F>(0.f);
    F f_i = fresnel_dielectric(cos_i, eta).r, f_o = fresnel_dielectric(cos_o, eta).r;
    Vec3T<F> diff = coated_diffuse(diffuse, nonlinear, internal);
    F inv_eta_2 = 1.f / (eta * eta);
    return select_(valid, diff * (square_to_cosine_hemisphere_pdf(wo) * inv_eta_2 * (1.f - f_i) * (1.f - f_o)),
                   Vec3T<F>(0.f));
}

template <typename F>
RADIANT_HD F plastic_pdf(F weight, F eta, Vec3T<F> wi, Vec3T<F> wo) {
    mask_t<F> valid = (wi.z > 0.f) & (wo.z > 0.f);
    if (none(valid)) return F(0.f);
    F f_i = fresnel_dielectric(wi.z, eta).r;
    return select_(valid, square_to_cosine_hemisphere_pdf(wo) * (1.f - plastic_prob_specular(f_i, weight)), F(0.f));
}

template <typename F>
RADIANT_HD mask_t<F> plastic_sample(Vec3T<F> specular, Vec3T<F> diffuse, mask_t<F> nonlinear, F eta, F internal,
                                    F weight, Vec3T<F> wi, F u1, Vec2T<F> u2, Vec3T<F>& wo, F& pdf,
                                    Vec3T<F>& value, mask_t<F>& delta) {
    F cos_i = wi.z;
    F f_i = fresnel_dielectric(cos_i, eta).r;
    F prob_specular = plastic_prob_specular(f_i, weight), prob_diffuse = 1.f - prob_specular;
    mask_t<F> spec = u1 < prob_specular;
    Vec3T<F> wo_d = square_to_cosine_hemisphere(u2);
    F pdf_d = prob_diffuse * square_to_cosine_hemisphere_pdf(wo_d);
    F f_o = fresnel_dielectric(wo_d.z, eta).r;
    F inv_eta_2 = 1.f / (eta * eta);
    Vec3T<F> value_d = coated_diffuse(diffuse, nonlinear, internal) * (inv_eta_2 * (1.f - f_i) * (1.f - f_o) / prob_diffuse);
    mask_t<F> valid = (cos_i > 0.f) & (spec | (pdf_d > 0.f));
    wo = select_(valid, select_(spec, reflect_local(wi), wo_d), Vec3T<F>(0.f));
    pdf = select_(valid, select_(spec, prob_specular, pdf_d), F(0.f));
    value = select_(valid, select_(spec, specular * (f_i / prob_specular), value_d), Vec3T<F>(0.f));
    delta = valid & spec;
    return valid;
}

// roughplastic: eval and pdf from the table values t_i, t_o (lerp_table at cos_i, cos_o; the caller looks them up
// where cos_i, cos_o > 0). Sampling: sample_front.
template <typename F>
RADIANT_HD Vec3T<F> roughplastic_eval(const MicrofacetT<F>& distr, Vec3T<F> specular, Vec3T<F> diffuse,
                                      mask_t<F> nonlinear, F eta, F internal, F t_i, F t_o, Vec3T<F> wi,
                                      Vec3T<F> wo) {
    F cos_i = wi.z, cos_o = wo.z;
    mask_t<F> valid = (cos_i > 0.f) & (cos_o > 0.f);
    if (none(valid)) return Vec3T<F>(0.f);
    Vec3T<F> h = normalize(wo + wi);
    F d = distr.D(h);
    F f = fresnel_dielectric(dot(wi, h), eta).r;
    F g = distr.G(wi, wo, h);
    Vec3T<F> value = specular * (f * d * g / (4.f * cos_i));
    F inv_eta_2 = 1.f / (eta * eta);
    Vec3T<F> diff = coated_diffuse(diffuse, nonlinear, internal);
    return select_(valid, value + diff * (kInvPi * inv_eta_2 * cos_o * t_i * t_o), Vec3T<F>(0.f));
}

template <typename F>
RADIANT_HD F roughplastic_prob_specular(F t_i, nodeduce_t<F> weight) {
    F ps = (1.f - t_i) * weight, pd = t_i * (1.f - weight);
    return ps / (ps + pd);
}

template <typename F>
RADIANT_HD F roughplastic_pdf(const MicrofacetT<F>& distr, F weight, F t_i, Vec3T<F> wi, Vec3T<F> wo) {
    mask_t<F> valid = (wi.z > 0.f) & (wo.z > 0.f);
    if (none(valid)) return F(0.f);
    F prob_specular = roughplastic_prob_specular(t_i, weight);
    Vec3T<F> h = normalize(wo + wi);
    F result = microfacet_reflection_pdf(distr, wi, wo, h) * prob_specular;
    return select_(valid, result + (1.f - prob_specular) * square_to_cosine_hemisphere_pdf(wo), F(0.f));
}

// roughconductor: sample (the microfacet normal from distr.sample, mirrored; weight G1(wo) or G |wi.m| / (cos_i m.z)).
// Invalid lanes get zeros.
template <typename F>
RADIANT_HD mask_t<F> roughconductor_sample(const MicrofacetT<F>& distr, Vec3T<F> eta, Vec3T<F> k, Vec3T<F> specular,
                                           Vec3T<F> wi, Vec2T<F> u2, Vec3T<F>& wo, F& pdf, Vec3T<F>& weight) {
    F cos_i = wi.z;
    mask_t<F> valid = cos_i > 0.f;
    wo = Vec3T<F>(0.f);
    pdf = F(0.f);
    weight = Vec3T<F>(0.f);
    if (none(valid)) return valid;
    F pdf_m;
    Vec3T<F> m = distr.sample(wi, u2, pdf_m);
    Vec3T<F> r = reflect(wi, m);
    F dom = dot(r, m);
    F w = distr.sample_visible ? distr.smith_g1(r, m)  // Heitz 2014 eq. 13: G2 / G1(wi)
                               : distr.G(wi, r, m) * dot(wi, m) / (cos_i * m.z);
    valid = valid & (pdf_m > 0.f) & (r.z > 0.f) & (dom > 0.f) & (w > 0.f);
    wo = select_(valid, r, wo);
    pdf = select_(valid, pdf_m / (4.f * dom), pdf);
    weight = select_(valid, fresnel_conductor_rgb(dot(wi, m), eta, k) * specular * w, weight);
    return valid;
}

// roughplastic: sample (`glossy` set where the specular lobe was chosen); weight eval / pdf. table(mask, cos) gives
// the rough transmittance table at cos on the lanes of mask (lerp_table; the caller owns the table rows).
template <typename F, typename Table>
RADIANT_HD mask_t<F> roughplastic_sample(const MicrofacetT<F>& distr, Vec3T<F> specular, Vec3T<F> diffuse,
                                         mask_t<F> nonlinear, F eta, F internal, F weight, const Table& table,
                                         Vec3T<F> wi, F u1, Vec2T<F> u2, Vec3T<F>& wo, F& pdf, Vec3T<F>& value,
                                         mask_t<F>& glossy) {
    F cos_i = wi.z;
    mask_t<F> valid = cos_i > 0.f;
    wo = Vec3T<F>(0.f);
    pdf = F(0.f);
    value = Vec3T<F>(0.f);
    glossy = mask_t<F>(false);
    if (none(valid)) return valid;
    F t_i = table(valid, cos_i);
    glossy = valid & (u1 < roughplastic_prob_specular(t_i, weight));
    if (any(glossy)) {
        F pdf_m;
        Vec3T<F> m = distr.sample(wi, u2, pdf_m);
        // A back-facing microfacet (all-normals sampling) has no path; Mitsuba would still keep the
        // direction when the diffuse pdf covers it, which the pdf does not account for.
        valid = valid & !(glossy & !(dot(wi, m) > 0.f));
        wo = select_(glossy, reflect(wi, m), wo);
    }
    mask_t<F> diffuse_lobe = valid & !glossy;
    if (any(diffuse_lobe)) wo = select_(diffuse_lobe, square_to_cosine_hemisphere(u2), wo);
    F t_o = table(valid & (wo.z > 0.f), wo.z);
    F p = roughplastic_pdf(distr, weight, t_i, wi, wo);
    valid = valid & (p > 0.f);
    if (none(valid)) {
        wo = Vec3T<F>(0.f);
        return valid;
    }
    Vec3T<F> e = roughplastic_eval(distr, specular, diffuse, nonlinear, eta, internal, t_i, t_o, wi, wo);
    wo = select_(valid, wo, Vec3T<F>(0.f));
    pdf = select_(valid, p, F(0.f));
    value = select_(valid, e / p, Vec3T<F>(0.f));
    return valid;
}

// dielectric: sample (`reflected` set where the reflection was chosen; eta_out the relative IOR along the path).
template <typename F>
RADIANT_HD mask_t<F> dielectric_sample(Vec3T<F> spec_r, Vec3T<F> spec_t, F eta, Vec3T<F> wi, F u1, Vec3T<F>& wo,
                                       F& pdf, Vec3T<F>& value, F& eta_out, mask_t<F>& reflected) {
    FresnelDielectricT<F> f = fresnel_dielectric(wi.z, eta);
    reflected = u1 <= f.r;
    pdf = select_(reflected, f.r, 1.f - f.r);
    mask_t<F> valid = pdf > 0.f;
    wo = select_(valid, select_(reflected, reflect_local(wi), refract_local(wi, f.cos_t, f.eta_ti)), Vec3T<F>(0.f));
    // radiance through the interface: solid-angle compression eta_ti^2
    value = select_(valid, select_(reflected, spec_r, spec_t * (f.eta_ti * f.eta_ti)), Vec3T<F>(0.f));
    eta_out = select_(valid & !reflected, f.eta_it, F(1.f));
    pdf = select_(valid, pdf, F(0.f));
    return valid;
}

// ---------------------------------------------------------------------------------------------------------
// eval (front side already resolved)

RADIANT_HD Vec3 eval_front(const BSDFParams& p, Vec3 wi, Vec3 wo) {
    float cos_i = wi.z, cos_o = wo.z;
    switch (p.type) {
        case kBSDF_diffuse:
            return diffuse_eval(p.diffuse_reflectance, wi, wo);
        case kBSDF_roughconductor:
            return roughconductor_eval(p.microfacet(), p.conductor_eta, p.conductor_k, p.specular_reflectance, wi, wo);
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
        case kBSDF_plastic:
            return plastic_eval(p.diffuse_reflectance, p.nonlinear, p.eta, p.internal_reflectance, wi, wo);
        case kBSDF_roughplastic: {
            if (!(cos_i > 0.f && cos_o > 0.f)) return Vec3(0.f);
            float t_i = lerp_table(p.rough_transmittance, cos_i, kRoughTransmittanceRes);
            float t_o = lerp_table(p.rough_transmittance, cos_o, kRoughTransmittanceRes);
            return roughplastic_eval(p.microfacet(), p.specular_reflectance, p.diffuse_reflectance, p.nonlinear, p.eta,
                                     p.internal_reflectance, t_i, t_o, wi, wo);
        }
        default:  // delta BSDFs have no density to evaluate
            return Vec3(0.f);
    }
}

// ---------------------------------------------------------------------------------------------------------
// pdf (front side already resolved)

RADIANT_HD float roughplastic_prob_specular(const BSDFParams& p, float cos_i) {
    return roughplastic_prob_specular(lerp_table(p.rough_transmittance, cos_i, kRoughTransmittanceRes),
                                      p.specular_sampling_weight);
}

RADIANT_HD float pdf_front(const BSDFParams& p, Vec3 wi, Vec3 wo) {
    float cos_i = wi.z, cos_o = wo.z;
    switch (p.type) {
        case kBSDF_diffuse:
            return diffuse_pdf(wi, wo);
        case kBSDF_roughconductor:
            return roughconductor_pdf(p.microfacet(), wi, wo);
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
        case kBSDF_plastic:
            return plastic_pdf(p.specular_sampling_weight, p.eta, wi, wo);
        case kBSDF_roughplastic: {
            if (!(cos_i > 0.f && cos_o > 0.f)) return 0.f;
            float t_i = lerp_table(p.rough_transmittance, cos_i, kRoughTransmittanceRes);
            return roughplastic_pdf(p.microfacet(), p.specular_sampling_weight, t_i, wi, wo);
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
        case kBSDF_diffuse:
            s.flags = diffuse_sample(p.diffuse_reflectance, wi, u2, s.wo, s.pdf, s.weight) ? kFlagDiffuseReflection : 0;
            return s;
        case kBSDF_conductor: {
            if (!(cos_i > 0.f)) return s;
            s.wo = reflect_local(wi);
            s.pdf = 1.f;
            s.weight = fresnel_conductor_rgb(cos_i, p.conductor_eta, p.conductor_k) * p.specular_reflectance;
            s.flags = kFlagDeltaReflection;
            return s;
        }
        case kBSDF_dielectric: {
            bool reflected;
            bool valid = dielectric_sample(p.specular_reflectance, p.specular_transmittance, p.eta, wi, u1, s.wo, s.pdf,
                                           s.weight, s.eta, reflected);
            s.flags = valid ? (reflected ? kFlagDeltaReflection : kFlagDeltaTransmission) : 0;
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
            bool delta;
            bool valid = plastic_sample(p.specular_reflectance, p.diffuse_reflectance, p.nonlinear, p.eta,
                                        p.internal_reflectance, p.specular_sampling_weight, wi, u1, u2, s.wo, s.pdf,
                                        s.weight, delta);
            s.flags = valid ? (delta ? kFlagDeltaReflection : kFlagDiffuseReflection) : 0;
            return s;
        }
        case kBSDF_roughconductor: {
            bool valid = roughconductor_sample(p.microfacet(), p.conductor_eta, p.conductor_k, p.specular_reflectance,
                                               wi, u2, s.wo, s.pdf, s.weight);
            s.flags = valid ? kFlagGlossyReflection : 0;
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
            auto table = [&](bool m, float c) {
                return m ? lerp_table(p.rough_transmittance, c, kRoughTransmittanceRes) : 0.f;
            };
            bool glossy;
            bool valid = roughplastic_sample(p.microfacet(), p.specular_reflectance, p.diffuse_reflectance, p.nonlinear,
                                             p.eta, p.internal_reflectance, p.specular_sampling_weight, table, wi, u1,
                                             u2, s.wo, s.pdf, s.weight, glossy);
            s.flags = valid ? (glossy ? kFlagGlossyReflection : kFlagDiffuseReflection) : 0;
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
