"""Analytic BSDFs (Mitsuba 3 compatible): packing of parameters, batch kernels and their pure-torch reference."""

from .kernels import bsdf_eval, bsdf_pdf, bsdf_sample
from .layout import FIELDS, FLAGS, PARAM_COUNT, TYPES
from .params import lookup_ior, pack_bsdf, pack_bsdfs, roughplastic_tables
from .reference import bsdf_eval_reference, bsdf_pdf_reference, bsdf_sample_reference

__all__ = ["bsdf_eval", "bsdf_pdf", "bsdf_sample", "bsdf_eval_reference", "bsdf_pdf_reference",
           "bsdf_sample_reference", "pack_bsdf", "pack_bsdfs", "lookup_ior", "roughplastic_tables", "FIELDS",
           "FLAGS", "PARAM_COUNT", "TYPES"]
