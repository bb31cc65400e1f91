// Radiant kernels: the packed BSDF parameter row, the one place that defines it. render/bsdfs/layout.py parses
// the two X-macro lists below (X(name, ...) one per line), so the Python packer always agrees with the kernels.
#pragma once

// BSDF types: X(name, id). Names are Mitsuba 3 plugin names.
#define RADIANT_BSDF_TYPES(X) \
    X(diffuse, 0)             \
    X(conductor, 1)           \
    X(roughconductor, 2)      \
    X(dielectric, 3)          \
    X(thindielectric, 4)      \
    X(roughdielectric, 5)     \
    X(plastic, 6)             \
    X(roughplastic, 7)

// Row fields: X(name, offset, width, doc). One float32 per slot; flags are 0/1; ints are exact in float32.
#define RADIANT_BSDF_FIELDS(X)                                                                                    \
    X(type, 0, 1, "BSDF type id (RADIANT_BSDF_TYPES)")                                                           \
    X(twosided, 1, 1, "1: a back-side wi is mirrored to the front (Mitsuba twosided); reflection types only")    \
    X(distribution, 2, 1, "microfacet distribution: 0 beckmann, 1 ggx")                                          \
    X(sample_visible, 3, 1, "1: sample visible normals (Heitz 2018 / Heitz-dEon 2014), 0: all normals")         \
    X(nonlinear, 4, 1, "plastic/roughplastic: 1 = Mitsuba's nonlinear internal scattering")                     \
    X(alpha_u, 5, 1, "microfacet roughness along the tangent")                                                   \
    X(alpha_v, 6, 1, "microfacet roughness along the bitangent")                                                 \
    X(eta, 7, 1, "dielectric/plastic relative IOR int_ior / ext_ior")                                           \
    X(specular_sampling_weight, 8, 1, "plastic/roughplastic: s_mean / (d_mean + s_mean) (Mitsuba)")              \
    X(internal_reflectance, 9, 1, "plastic: fresnel_diffuse_reflectance(1/eta); roughplastic: Mitsuba's table")  \
    X(conductor_eta, 10, 3, "conductor real IOR per RGB channel (relative to the exterior)")                     \
    X(conductor_k, 13, 3, "conductor extinction per RGB channel")                                               \
    X(diffuse_reflectance, 16, 3, "diffuse albedo (resolved texture value)")                                     \
    X(specular_reflectance, 19, 3, "specular reflectance factor")                                               \
    X(specular_transmittance, 22, 3, "specular transmittance factor")                                           \
    X(external_transmittance, 25, 64, "roughplastic: 1 - rough specular albedo at cos_theta = j/63 (Mitsuba)")

namespace radiant {

constexpr int kBSDFParamCount = 89;
constexpr int kRoughTransmittanceRes = 64;

enum BSDFType : int {
#define RADIANT_X(name, id) kBSDF_##name = id,
    RADIANT_BSDF_TYPES(RADIANT_X)
#undef RADIANT_X
};

enum BSDFParamOffset : int {
#define RADIANT_X(name, offset, width, doc) kParam_##name = offset,
    RADIANT_BSDF_FIELDS(RADIANT_X)
#undef RADIANT_X
};

static_assert(kParam_external_transmittance + kRoughTransmittanceRes == kBSDFParamCount, "row size");

// Sampled-lobe flags: the bit values of Mitsuba 3 BSDFFlags.
enum BSDFFlag : int {
    kFlagNull = 1,
    kFlagDiffuseReflection = 2,
    kFlagDiffuseTransmission = 4,
    kFlagGlossyReflection = 8,
    kFlagGlossyTransmission = 16,
    kFlagDeltaReflection = 32,
    kFlagDeltaTransmission = 64,
};

}  // namespace radiant
