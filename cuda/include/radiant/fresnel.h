// Radiant kernels: Fresnel equations for dielectrics (real IOR) and conductors (complex IOR), Mitsuba 3 conventions.
#pragma once
#include "warp.h"

namespace radiant {

// Templated on the float type F (common.h): FresnelDielectric = FresnelDielectricT<float>; LaneF gives kLanes at once.
template <typename F>
struct FresnelDielectricT {
    F r;       // unpolarized reflectance
    F cos_t;   // signed cosine of the refracted direction (opposite side to cos_i; 0 on total internal reflection)
    F eta_it;  // relative IOR in the direction of travel (eta if entering, 1/eta if leaving)
    F eta_ti;  // its reciprocal
};
using FresnelDielectric = FresnelDielectricT<float>;

// eta = int_ior / ext_ior; cos_i > 0 means the incident direction is outside. Snell + Fresnel
// (Walter et al. 2007, eq. 22 in terms of cosines); total internal reflection gives r = 1.
template <typename F>
RADIANT_HD FresnelDielectricT<F> fresnel_dielectric(F cos_i, nodeduce_t<F> eta) {
    mask_t<F> outside = cos_i >= 0.f;
    F rcp_eta = 1.f / eta;
    F eta_it = select_(outside, eta, rcp_eta), eta_ti = select_(outside, rcp_eta, eta);
    F cos_t_sqr = 1.f - (1.f - cos_i * cos_i) * (eta_ti * eta_ti);
    F cos_i_abs = abs_(cos_i), cos_t_abs = safe_sqrt(cos_t_sqr);
    mask_t<F> index_matched = eta == 1.f, special = index_matched | (cos_i_abs == 0.f);
    F a_s = (cos_i_abs - eta_it * cos_t_abs) / (cos_i_abs + eta_it * cos_t_abs);
    F a_p = (cos_t_abs - eta_it * cos_i_abs) / (cos_t_abs + eta_it * cos_i_abs);
    F r = 0.5f * (a_s * a_s + a_p * a_p);
    r = select_(special, select_(index_matched, F(0.f), F(1.f)), r);
    FresnelDielectricT<F> f;
    f.r = r;
    f.cos_t = select_(outside, -cos_t_abs, cos_t_abs);
    f.eta_it = eta_it;
    f.eta_ti = eta_ti;
    return f;
}

// Unpolarized reflectance of a conductor with complex IOR eta + i k (one channel), cos_i >= 0.
// Moeller, "Optics" (1988), as in Mitsuba 3 fresnel_conductor.
template <typename F>
RADIANT_HD F fresnel_conductor(F cos_i, nodeduce_t<F> eta, nodeduce_t<F> k) {
    F cos2 = cos_i * cos_i, sin2 = 1.f - cos2, sin4 = sin2 * sin2;
    F temp1 = eta * eta - k * k - sin2;
    F a2pb2 = safe_sqrt(temp1 * temp1 + 4.f * k * k * eta * eta);
    F a = safe_sqrt(0.5f * (a2pb2 + temp1));
    F term1 = a2pb2 + cos2, term2 = 2.f * cos_i * a;
    F r_s = (term1 - term2) / (term1 + term2);
    F term3 = a2pb2 * cos2 + sin4, term4 = term2 * sin2;
    F r_p = r_s * (term3 - term4) / (term3 + term4);
    return 0.5f * (r_s + r_p);
}

template <typename F>
RADIANT_HD Vec3T<F> fresnel_conductor_rgb(F cos_i, Vec3T<F> eta, Vec3T<F> k) {
    return Vec3T<F>(fresnel_conductor(cos_i, eta.x, k.x), fresnel_conductor(cos_i, eta.y, k.y),
                    fresnel_conductor(cos_i, eta.z, k.z));
}

// Hemispherical average of the dielectric Fresnel reflectance: Egan & Hilgeman 1973 fit for eta < 1,
// d'Eon & Irving 2011 polynomial in 1/eta otherwise (the same pick as Mitsuba 3).
RADIANT_HD float fresnel_diffuse_reflectance(float eta) {
    float inv_eta = 1.f / eta;
    float approx1 = 0.0636f * inv_eta + (eta * (eta * -1.4399f + 0.7099f) + 0.6681f);
    float approx2 = ((((-1.36881f * inv_eta + 4.98554f) * inv_eta - 7.80989f) * inv_eta + 6.75335f) * inv_eta -
                     3.4793f) * inv_eta + 0.919317f;
    return eta < 1.f ? approx1 : approx2;
}

// Mirror reflection about the normal (local frame) and about a microfacet normal m.
template <typename F>
RADIANT_HD Vec3T<F> reflect_local(Vec3T<F> wi) { return Vec3T<F>(-wi.x, -wi.y, wi.z); }
template <typename F>
RADIANT_HD Vec3T<F> reflect(Vec3T<F> wi, Vec3T<F> m) { return m * (2.f * dot(wi, m)) - wi; }
// Refraction through the macro normal / a microfacet normal, given cos_t and eta_ti from fresnel_dielectric.
template <typename F>
RADIANT_HD Vec3T<F> refract_local(Vec3T<F> wi, nodeduce_t<F> cos_t, nodeduce_t<F> eta_ti) {
    return Vec3T<F>(-eta_ti * wi.x, -eta_ti * wi.y, cos_t);
}
template <typename F>
RADIANT_HD Vec3T<F> refract(Vec3T<F> wi, Vec3T<F> m, nodeduce_t<F> cos_t, nodeduce_t<F> eta_ti) {
    return m * (dot(wi, m) * eta_ti + cos_t) - wi * eta_ti;
}

}  // namespace radiant
