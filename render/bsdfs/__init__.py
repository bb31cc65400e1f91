"""Analytic BSDFs (Mitsuba 3 compatible): packing of parameters, batch kernels and their pure-torch reference.

Types (Mitsuba plugin names): diffuse, conductor, roughconductor, dielectric, thindielectric, roughdielectric,
plastic, roughplastic; `twosided=True` stands for Mitsuba's twosided wrapper around a reflection BSDF.

    params = pack_bsdf("roughconductor", distribution="ggx", alpha_u=0.1, alpha_v=0.3, material="Au")  # (P,)
    table = pack_bsdfs([row_a, row_b])                            # (M, P) material table
    value = bsdf_eval(table, wi, wo, index=material_of_item)      # (N, 3): f * |cos wo|
    pdf = bsdf_pdf(table, wi, wo, index=...)                      # (N,), 0 for delta lobes
    wo, weight, pdf, eta, flags = bsdf_sample(table, wi, sample1, sample2, index=...)

Directions live in the local shading frame (z = normal, wi and wo point away from the surface); build it with
render.core.warp.coordinate_system (Duff et al. 2017, as Mitsuba). Rows are chosen per item by `index`, or row 0
broadcast when M == 1, or row i when M == N. `weight` is eval / pdf for smooth lobes and the analytic lobe weight
for delta lobes (radiance transport: refraction carries 1/eta^2); `flags` are Mitsuba BSDFFlags bits
(FLAGS), 0 for an invalid sample. The row layout is defined once, in cuda/include/radiant/bsdf_params.h, and read
from there by layout.py.

Samplers use the same maps from uniforms as Mitsuba 3 (GGX visible normals: Heitz 2018 through a concentric disk;
Beckmann: Heitz & d'Eon 2014 with Mitsuba's Newton inversion), so the same (sample1, sample2) give the same wo.
Deviations from Mitsuba, on purpose: roughdielectric with sample_visible=False returns weight = eval / pdf
(Mitsuba's weight ignores its widened sampling lobe); samples through a microfacet facing away from wi are
rejected in roughdielectric/roughplastic (their pdf does not count them; only possible with sample_visible=False);
roughplastic's coat tables are computed in float64 by the same Gauss-Legendre quadrature as Mitsuba's (agreement
~1e-5 relative).
"""

from .kernels import bsdf_eval, bsdf_pdf, bsdf_sample
from .layout import FIELDS, FLAGS, PARAM_COUNT, TYPES
from .params import CONDUCTORS, IOR_TABLE, lookup_ior, pack_bsdf, pack_bsdfs, roughplastic_tables
from .reference import bsdf_eval_reference, bsdf_pdf_reference, bsdf_sample_reference

__all__ = ["bsdf_eval", "bsdf_pdf", "bsdf_sample", "bsdf_eval_reference", "bsdf_pdf_reference",
           "bsdf_sample_reference", "pack_bsdf", "pack_bsdfs", "lookup_ior", "roughplastic_tables", "FIELDS",
           "FLAGS", "PARAM_COUNT", "TYPES", "CONDUCTORS", "IOR_TABLE"]
