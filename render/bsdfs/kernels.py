"""BSDF batch kernels (eval / pdf / sample over packed parameter rows), with argument checks; twins in reference.py."""

from __future__ import annotations

import torch

from ..kernels.build import load
from .layout import PARAM_COUNT


def _check(params, wi, others: dict, index):
    for name, x in {"params": params, "wi": wi, **others}.items():
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        if x.dtype != torch.float32:
            raise ValueError(f"{name}: expected dtype float32, got {x.dtype}")
        if x.device != wi.device:
            raise ValueError(f"{name}: expected device {wi.device} like wi, got {x.device}")
    if params.dim() == 1:
        params = params[None]
    if params.dim() != 2 or params.shape[1] != PARAM_COUNT:
        raise ValueError(f"params: expected shape (M, {PARAM_COUNT}) or ({PARAM_COUNT},), got {tuple(params.shape)}")
    if index is not None:
        if not isinstance(index, torch.Tensor) or index.dtype.is_floating_point:
            raise ValueError("index: expected an integer torch.Tensor")
        index = index.to(torch.int32).contiguous()
    return params.contiguous(), index


def bsdf_eval(params, wi, wo, index=None) -> torch.Tensor:
    """BSDF value times |cos wo|, (N,3). params: (M,P) rows (row i, or row 0 if M == 1, or row index[i])."""
    params, index = _check(params, wi, {"wo": wo}, index)
    return load().bsdf_eval(params, wi.contiguous(), wo.contiguous(), index)


def bsdf_pdf(params, wi, wo, index=None) -> torch.Tensor:
    """Solid-angle density (N,) of bsdf_sample choosing wo (0 for delta BSDFs)."""
    params, index = _check(params, wi, {"wo": wo}, index)
    return load().bsdf_pdf(params, wi.contiguous(), wo.contiguous(), index)


def bsdf_sample(params, wi, sample1, sample2, index=None):
    """Returns (wo (N,3), weight (N,3) = eval/pdf, pdf (N,), eta (N,), flags (N,) int32 Mitsuba BSDFFlags)."""
    params, index = _check(params, wi, {"sample1": sample1, "sample2": sample2}, index)
    wo, weight, pdf, eta, flags = load().bsdf_sample(params, wi.contiguous(), sample1.contiguous(),
                                                     sample2.contiguous(), index)
    return wo, weight, pdf, eta, flags
