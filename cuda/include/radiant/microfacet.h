// Radiant kernels: anisotropic Beckmann and GGX microfacet distributions (D, Smith G1/G, sampling, pdf),
// in the local frame (z = macro normal), with the conventions and numerics of Mitsuba 3 microfacet.h.
#pragma once
#include "warp.h"

namespace radiant {

enum MicrofacetType : int { kBeckmann = 0, kGGX = 1 };

// Giles 2010, "Approximating the erfinv function" (single precision branch pair).
RADIANT_HD float erfinv_approx(float x) {
    float w = -logf((1.f - x) * (1.f + x)), p;
    if (w < 5.f) {
        w = w - 2.5f;
        p = 2.81022636e-08f;
        p = 3.43273939e-07f + p * w;
        p = -3.5233877e-06f + p * w;
        p = -4.39150654e-06f + p * w;
        p = 0.00021858087f + p * w;
        p = -0.00125372503f + p * w;
        p = -0.00417768164f + p * w;
        p = 0.246640727f + p * w;
        p = 1.50140941f + p * w;
    } else {
        w = sqrtf(w) - 3.f;
        p = -0.000200214257f;
        p = 0.000100950558f + p * w;
        p = 0.00134934322f + p * w;
        p = -0.00367342844f + p * w;
        p = 0.00573950773f + p * w;
        p = -0.0076224613f + p * w;
        p = 0.00943887047f + p * w;
        p = 1.00167406f + p * w;
        p = 2.83297682f + p * w;
    }
    return p * x;
}

// Templated on the float type F (common.h) for the evaluation (D, G1, G, pdf): MicrofacetT<LaneF> evaluates 16
// lanes of one distribution at once. Sampling is scalar (Microfacet = MicrofacetT<float>) for now.
template <typename F>
struct MicrofacetT {
    int type;
    F alpha_u, alpha_v;
    bool sample_visible;

    RADIANT_HD MicrofacetT(int t, nodeduce_t<F> au, nodeduce_t<F> av, bool vis)
        : type(t), alpha_u(au), alpha_v(av), sample_visible(vis) {}

    // Normal distribution D(m) (Walter et al. 2007 eq. 25 / 33, anisotropic form); 0 below the horizon.
    RADIANT_HD F D(Vec3T<F> m) const {
        F cos_theta = m.z, cos2 = cos_theta * cos_theta;
        F ax = m.x / alpha_u, ay = m.y / alpha_v;
        F result;
        if (type == kBeckmann) {
            result = exp_(-(ax * ax + ay * ay) / cos2) / (kPi * alpha_u * alpha_v * (cos2 * cos2));
        } else {
            F t = ax * ax + ay * ay + m.z * m.z;
            result = 1.f / (kPi * alpha_u * alpha_v * (t * t));
        }
        // Drop vanishing values (and everything below the horizon), as Mitsuba does.
        return select_(result * cos_theta > 1e-20f, result, F(0.f));
    }

    // Smith's masking G1(v, m); Beckmann uses Walter et al. 2007 eq. 27's rational fit, GGX eq. 34.
    RADIANT_HD F smith_g1(Vec3T<F> v, Vec3T<F> m) const {
        F xy_alpha_2 = (alpha_u * v.x) * (alpha_u * v.x) + (alpha_v * v.y) * (alpha_v * v.y);
        F tan_theta_alpha_2 = xy_alpha_2 / (v.z * v.z);
        F result;
        if (type == kBeckmann) {
            F a = 1.f / sqrt_(tan_theta_alpha_2), a2 = a * a;
            result = select_(a >= 1.6f, F(1.f), (3.535f * a + 2.181f * a2) / (1.f + 2.276f * a + 2.577f * a2));
        } else {
            result = 2.f / (1.f + sqrt_(1.f + tan_theta_alpha_2));
        }
        result = select_(xy_alpha_2 == 0.f, F(1.f), result);  // perpendicular incidence: no masking
        // The back of a microfacet is never visible from the front and vice versa.
        return select_(dot(v, m) * v.z <= 0.f, F(0.f), result);
    }

    RADIANT_HD F G(Vec3T<F> wi, Vec3T<F> wo, Vec3T<F> m) const { return smith_g1(wi, m) * smith_g1(wo, m); }

    // Density of sample(): D_wi(m) = G1(wi,m) |wi.m| D(m) / cos(wi) (Heitz 2014 eq. 2) or D(m) cos(m).
    RADIANT_HD F pdf(Vec3T<F> wi, Vec3T<F> m) const {
        F result = D(m);
        if (sample_visible)
            result = result * (smith_g1(wi, m) * abs_(dot(wi, m)) / wi.z);
        else
            result = result * m.z;
        return result;
    }

    // Beckmann visible slopes for a unit-roughness, wi in the xz-plane (Heitz & d'Eon 2014, with Mitsuba's
    // Newton inversion in the erf domain that avoids the original's discontinuities).
    RADIANT_HD Vec2 sample_visible_11_beckmann(float cos_theta_i, Vec2 u) const {
        float tan_theta_i = safe_sqrt(1.f - cos_theta_i * cos_theta_i) / cos_theta_i;
        float cot_theta_i = 1.f / tan_theta_i;
        float maxval = erff(cot_theta_i);
        u.x = max_(min_(u.x, 1.f - 1e-6f), 1e-6f);
        u.y = max_(min_(u.y, 1.f - 1e-6f), 1e-6f);
        float x = maxval - (maxval + 1.f) * erff(sqrtf(-logf(u.x)));
        const float inv_sqrt_pi = 0.56418958354775628695f;
        u.x *= 1.f + maxval + inv_sqrt_pi * tan_theta_i * expf(-cot_theta_i * cot_theta_i);
        for (int i = 0; i < 3; ++i) {
            float slope = erfinv_approx(x);
            float value = 1.f + x + inv_sqrt_pi * tan_theta_i * expf(-slope * slope) - u.x;
            float derivative = 1.f - slope * tan_theta_i;
            x -= value / derivative;
        }
        return Vec2(erfinv_approx(x), erfinv_approx(2.f * u.y - 1.f));
    }

    // GGX visible slopes for unit roughness and wi in the xz-plane: Heitz 2018, "Sampling the GGX Distribution
    // of Visible Normals" (sample the projected half disk, eq. 11 warp, lift to the hemisphere), through a
    // concentric disk map and returned as slopes, exactly as Mitsuba 3 does.
    RADIANT_HD Vec2 sample_visible_11_ggx(float cos_theta_i, Vec2 u) const {
        Vec2 p = square_to_uniform_disk_concentric(u);
        float s = 0.5f * (1.f + cos_theta_i);
        float h = safe_sqrt(1.f - p.x * p.x);
        p.y = h + s * (p.y - h);  // lerp(h, p.y, s)
        float x = p.x, y = p.y, z = safe_sqrt(1.f - (p.x * p.x + p.y * p.y));
        float sin_theta_i = safe_sqrt(1.f - cos_theta_i * cos_theta_i);
        float norm = 1.f / (sin_theta_i * y + cos_theta_i * z);
        return Vec2((cos_theta_i * y - sin_theta_i * z) * norm, x * norm);
    }

    // Samples a microfacet normal m for the upper-hemisphere direction wi; returns m and its pdf (= pdf(wi, m)).
    RADIANT_HD Vec3 sample(Vec3 wi, Vec2 u, float& pdf_out) const {
        if (!sample_visible) {
            // All-normals sampling of D(m) cos(m) (Walter et al. 2007 eqs. 28, 35; anisotropic azimuth).
            float sin_phi, cos_phi, alpha_2;
            if (alpha_u == alpha_v) {
                float phi = 2.f * kPi * u.y;
                sin_phi = sinf(phi);
                cos_phi = cosf(phi);
                alpha_2 = alpha_u * alpha_u;
            } else {
                float ratio = alpha_v / alpha_u, tmp = ratio * tanf(2.f * kPi * u.y);
                cos_phi = 1.f / sqrtf(tmp * tmp + 1.f);
                if (fabsf(u.y - 0.5f) - 0.25f < 0.f) cos_phi = -cos_phi;
                sin_phi = cos_phi * tmp;
                float cu = cos_phi / alpha_u, sv = sin_phi / alpha_v;
                alpha_2 = 1.f / (cu * cu + sv * sv);
            }
            float cos_theta;
            if (type == kBeckmann) {
                cos_theta = 1.f / sqrtf(1.f - alpha_2 * logf(1.f - u.x));
            } else {
                float tan_theta_m_2 = alpha_2 * u.x / (1.f - u.x);
                cos_theta = 1.f / sqrtf(1.f + tan_theta_m_2);
            }
            float sin_theta = safe_sqrt(1.f - cos_theta * cos_theta);
            Vec3 m(cos_phi * sin_theta, sin_phi * sin_theta, cos_theta);
            pdf_out = pdf(wi, m);
            return m;
        }
        // Heitz & d'Eon 2014, algorithm 1: stretch wi to unit roughness, sample slopes, rotate, unstretch.
        Vec3 wi_p = normalize(Vec3(alpha_u * wi.x, alpha_v * wi.y, wi.z));
        float sin_theta_2 = wi_p.x * wi_p.x + wi_p.y * wi_p.y;
        float cos_phi = 1.f, sin_phi = 0.f;
        if (sin_theta_2 > 4.f * 5.9604645e-8f) {  // Mitsuba Frame::sincos_phi
            float inv = 1.f / sqrtf(sin_theta_2);
            cos_phi = clamp_(wi_p.x * inv, -1.f, 1.f);
            sin_phi = clamp_(wi_p.y * inv, -1.f, 1.f);
        }
        Vec2 slope = type == kGGX ? sample_visible_11_ggx(wi_p.z, u) : sample_visible_11_beckmann(wi_p.z, u);
        float sx = (cos_phi * slope.x - sin_phi * slope.y) * alpha_u;
        float sy = (sin_phi * slope.x + cos_phi * slope.y) * alpha_v;
        Vec3 m = normalize(Vec3(-sx, -sy, 1.f));
        pdf_out = pdf(wi, m);
        return m;
    }
};
using Microfacet = MicrofacetT<float>;

}  // namespace radiant
