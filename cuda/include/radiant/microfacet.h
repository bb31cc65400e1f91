// Radiant kernels: anisotropic Beckmann and GGX microfacet distributions (D, Smith G1/G, sampling, pdf),
// in the local frame (z = macro normal), with the conventions and numerics of Mitsuba 3 microfacet.h.
#pragma once
#include "warp.h"

namespace radiant {

enum MicrofacetType : int { kBeckmann = 0, kGGX = 1 };

// Giles 2010, "Approximating the erfinv function" (single precision branch pair; lanes run each branch their lanes
// need and pick per lane). `active`: the lanes whose result is used (the others get some finite value).
template <typename F>
RADIANT_HD F erfinv_approx(F x, mask_t<F> active = mask_t<F>(true)) {
    F w = -log_approx((1.f - x) * (1.f + x)), p(0.f);
    mask_t<F> central = w < 5.f;
    if (any(central & active)) {
        F v = w - 2.5f, q = F(2.81022636e-08f);
        q = 3.43273939e-07f + q * v;
        q = -3.5233877e-06f + q * v;
        q = -4.39150654e-06f + q * v;
        q = 0.00021858087f + q * v;
        q = -0.00125372503f + q * v;
        q = -0.00417768164f + q * v;
        q = 0.246640727f + q * v;
        q = 1.50140941f + q * v;
        p = select_(central, q, p);
    }
    if (any(!central & active)) {
        F v = sqrt_(w) - 3.f, q = F(-0.000200214257f);
        q = 0.000100950558f + q * v;
        q = 0.00134934322f + q * v;
        q = -0.00367342844f + q * v;
        q = 0.00573950773f + q * v;
        q = -0.0076224613f + q * v;
        q = 0.00943887047f + q * v;
        q = 1.00167406f + q * v;
        q = 2.83297682f + q * v;
        p = select_(central, p, q);
    }
    return p * x;
}

// Templated on the float type F (common.h) for the evaluation (D, G1, G, pdf): MicrofacetT<LaneF> evaluates 16
// lanes of one distribution at once (per-lane roughness), sampling included. exp, log and erf are approx.h's
// polynomials (in SIMD registers for lanes, the same per-lane results as the float code's). `active`: the lanes whose
// results are used; the libm calls (sin / cos / tan, each lane's) and the sampling branches run on those only (lanes
// of other BSDFs may hold any roughness, e.g. 0, whose NaNs would take libm's slow paths). One path is always active.
template <typename F>
struct MicrofacetT {
    int type;
    F alpha_u, alpha_v;
    bool sample_visible;
    mask_t<F> active;

    RADIANT_HD MicrofacetT(int t, nodeduce_t<F> au, nodeduce_t<F> av, bool vis, mask_t<F> act = mask_t<F>(true))
        : type(t), alpha_u(au), alpha_v(av), sample_visible(vis), active(act) {}

    // Normal distribution D(m) (Walter et al. 2007 eq. 25 / 33, anisotropic form); 0 below the horizon.
    RADIANT_HD F D(Vec3T<F> m) const {
        F cos_theta = m.z, cos2 = cos_theta * cos_theta;
        F ax = m.x / alpha_u, ay = m.y / alpha_v;
        F result;
        if (type == kBeckmann) {
            result = exp_approx(-(ax * ax + ay * ay) / cos2) / (kPi * alpha_u * alpha_v * (cos2 * cos2));
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
    RADIANT_HD Vec2T<F> sample_visible_11_beckmann(F cos_theta_i, Vec2T<F> u) const {
        F tan_theta_i = safe_sqrt(1.f - cos_theta_i * cos_theta_i) / cos_theta_i;
        F cot_theta_i = 1.f / tan_theta_i;
        F maxval = erf_approx(cot_theta_i);
        u.x = max_(min_(u.x, F(1.f - 1e-6f)), F(1e-6f));
        u.y = max_(min_(u.y, F(1.f - 1e-6f)), F(1e-6f));
        F x = maxval - (maxval + 1.f) * erf_approx(sqrt_(-log_approx(u.x)));
        const float inv_sqrt_pi = 0.56418958354775628695f;
        u.x = u.x * (1.f + maxval + inv_sqrt_pi * tan_theta_i * exp_approx(-cot_theta_i * cot_theta_i));
        for (int i = 0; i < 3; ++i) {
            F slope = erfinv_approx(x, active);
            F value = 1.f + x + inv_sqrt_pi * tan_theta_i * exp_approx(-slope * slope) - u.x;
            F derivative = 1.f - slope * tan_theta_i;
            x = x - value / derivative;
        }
        return Vec2T<F>(erfinv_approx(x, active), erfinv_approx(2.f * u.y - 1.f, active));
    }

    // GGX visible slopes for unit roughness and wi in the xz-plane: Heitz 2018, "Sampling the GGX Distribution
    // of Visible Normals" (sample the projected half disk, eq. 11 warp, lift to the hemisphere), through a
    // concentric disk map and returned as slopes, exactly as Mitsuba 3 does.
    RADIANT_HD Vec2T<F> sample_visible_11_ggx(F cos_theta_i, Vec2T<F> u) const {
        Vec2T<F> p = square_to_uniform_disk_concentric(u);
        F s = 0.5f * (1.f + cos_theta_i);
        F h = safe_sqrt(1.f - p.x * p.x);
        p.y = h + s * (p.y - h);  // lerp(h, p.y, s)
        F x = p.x, y = p.y, z = safe_sqrt(1.f - (p.x * p.x + p.y * p.y));
        F sin_theta_i = safe_sqrt(1.f - cos_theta_i * cos_theta_i);
        F norm = 1.f / (sin_theta_i * y + cos_theta_i * z);
        return Vec2T<F>((cos_theta_i * y - sin_theta_i * z) * norm, x * norm);
    }

    // Samples a microfacet normal m for the upper-hemisphere direction wi; returns m and its pdf (= pdf(wi, m)).
    // Per-lane choices (isotropic or not, the sincos_phi guard) are selects; lanes run a branch only where needed.
    RADIANT_HD Vec3T<F> sample(Vec3T<F> wi, Vec2T<F> u, F& pdf_out) const {
        if (!sample_visible) {
            // All-normals sampling of D(m) cos(m) (Walter et al. 2007 eqs. 28, 35; anisotropic azimuth).
            F sin_phi(0.f), cos_phi(0.f), alpha_2(0.f);
            mask_t<F> iso = alpha_u == alpha_v;
            if (any(iso & active)) {
                F phi = 2.f * kPi * u.y;
                sin_phi = sin_(phi, iso & active);
                cos_phi = cos_(phi, iso & active);
                alpha_2 = alpha_u * alpha_u;
            }
            if (any(!iso & active)) {
                F ratio = alpha_v / alpha_u, tmp = ratio * tan_(2.f * kPi * u.y, !iso & active);
                F c = 1.f / sqrt_(tmp * tmp + 1.f);
                c = select_(abs_(u.y - 0.5f) - 0.25f < 0.f, -c, c);
                F s = c * tmp;
                F cu = c / alpha_u, sv = s / alpha_v;
                F a2 = 1.f / (cu * cu + sv * sv);
                sin_phi = select_(iso, sin_phi, s);
                cos_phi = select_(iso, cos_phi, c);
                alpha_2 = select_(iso, alpha_2, a2);
            }
            F cos_theta;
            if (type == kBeckmann) {
                cos_theta = 1.f / sqrt_(1.f - alpha_2 * log_approx(1.f - u.x));
            } else {
                F tan_theta_m_2 = alpha_2 * u.x / (1.f - u.x);
                cos_theta = 1.f / sqrt_(1.f + tan_theta_m_2);
            }
            F sin_theta = safe_sqrt(1.f - cos_theta * cos_theta);
            Vec3T<F> m(cos_phi * sin_theta, sin_phi * sin_theta, cos_theta);
            pdf_out = pdf(wi, m);
            return m;
        }
        // Heitz & d'Eon 2014, algorithm 1: stretch wi to unit roughness, sample slopes, rotate, unstretch.
        Vec3T<F> wi_p = normalize(Vec3T<F>(alpha_u * wi.x, alpha_v * wi.y, wi.z));
        F sin_theta_2 = wi_p.x * wi_p.x + wi_p.y * wi_p.y;
        mask_t<F> tilted = sin_theta_2 > 4.f * 5.9604645e-8f;  // Mitsuba Frame::sincos_phi
        F cos_phi(1.f), sin_phi(0.f);
        if (any(tilted & active)) {
            F inv = 1.f / sqrt_(sin_theta_2);
            cos_phi = select_(tilted, clamp_(wi_p.x * inv, F(-1.f), F(1.f)), cos_phi);
            sin_phi = select_(tilted, clamp_(wi_p.y * inv, F(-1.f), F(1.f)), sin_phi);
        }
        Vec2T<F> slope = type == kGGX ? sample_visible_11_ggx(wi_p.z, u) : sample_visible_11_beckmann(wi_p.z, u);
        F sx = (cos_phi * slope.x - sin_phi * slope.y) * alpha_u;
        F sy = (sin_phi * slope.x + cos_phi * slope.y) * alpha_v;
        Vec3T<F> m = normalize(Vec3T<F>(-sx, -sy, F(1.f)));
        pdf_out = pdf(wi, m);
        return m;
    }
};
using Microfacet = MicrofacetT<float>;

}  // namespace radiant
