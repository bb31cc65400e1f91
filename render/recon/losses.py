"""Reconstruction losses: MonoSDF's prior losses (warm-up) and DebSDF's uncertainty-aware ones (after)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def rgb_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (pred - target).abs().mean()


def eikonal(gradients: torch.Tensor) -> torch.Tensor:
    """E (|grad s| - 1)^2 (Gropp et al. 2020, IGR eq. 2)."""
    return ((gradients.norm(dim=-1) - 1) ** 2).mean()


@torch.no_grad()
def align_prior_depth(rendered: torch.Tensor, prior: torch.Tensor, group: torch.Tensor, num_groups: int,
                      min_scale: float = 1e-6, use: torch.Tensor | None = None, min_correlation: float = 0.5):
    """The mono depth prior mapped into the rendered depth's units, per image (group).

    MonoSDF (Yu et al. 2022, eq. 11) fits (w, q) = argmin sum (w D_rendered + q - D_prior)^2 in closed form per
    image; we return the prior mapped back through that fit, (D_prior - q) / w, so the residual
    D_rendered - aligned is in scene units and exactly invariant to any scale (> 0) and shift of the prior.
    `use` (M,) bool: the pixels that enter the fit (valid priors; sky pixels' 0 or NaN would skew or poison it).
    Returns (aligned (M,), valid (M,) bool: the image's fit is well-posed with w > min_scale).
    """
    dtype = rendered.dtype
    rendered, prior = rendered.double(), prior.double()  # normal equations in float64: priors can be in any units
    ones = torch.ones_like(rendered)
    if use is not None:
        ones = use.to(rendered.dtype)
        rendered, prior = torch.where(use, rendered, 0.0), torch.where(use, prior, 0.0)

    def gsum(x):
        return torch.zeros(num_groups, dtype=x.dtype, device=x.device).index_add_(0, group, x)

    a00, a01, a11 = gsum(rendered * rendered), gsum(rendered), gsum(ones)
    b0, b1 = gsum(rendered * prior), gsum(prior)
    det = a00 * a11 - a01 * a01
    ok = (a11 >= 2) & (det.abs() > 1e-12 * (a00 * a11).clamp(min=1e-30))
    safe = torch.where(ok, det, torch.ones_like(det))
    cov = a11 * b0 - a01 * b1  # n^2 cov(rendered, prior); det = n^2 var(rendered)
    w = cov / safe
    q = (-a01 * b0 + a00 * b1) / safe
    ok &= w > min_scale
    # A fit of a prior against a rendered depth that does not (yet) follow it is meaningless, and its 1/w blows
    # the residual up (at the start the rendered depth is the init sphere's, nearly constant: depth losses of
    # ~15 in the first steps, measured). Require the two to correlate: Pearson r >= min_correlation.
    var_p = (a11 * gsum(prior * prior) - b1 * b1).clamp(min=0)  # n^2 var(prior)
    ok &= cov >= min_correlation * torch.sqrt(det.clamp(min=0) * var_p)
    w_m, q_m = w[group], q[group]
    aligned = (prior - q_m) / torch.where(ok[group], w_m, torch.ones_like(w_m))
    return aligned.to(dtype), ok[group]


def depth_mse(rendered, aligned, mask) -> torch.Tensor:
    """MonoSDF's scale-shift-invariant depth loss (eq. 11) against the aligned prior."""
    return masked_mean((rendered - aligned) ** 2, mask)


def normal_l1_angular(rendered: torch.Tensor, prior: torch.Tensor, mask) -> torch.Tensor:
    """MonoSDF eq. 12: |n - n_prior|_1 + |1 - n . n_prior|_1 with the rendered normal normalized."""
    n = F.normalize(rendered, dim=-1, eps=1e-6)
    per_pixel = (n - prior).abs().sum(-1) + (1 - (n * prior).sum(-1)).abs()
    return masked_mean(per_pixel, mask)


def laplace_nll_depth(rendered, aligned, uncertainty, mask) -> torch.Tensor:
    """DebSDF's depth loss: negative log-likelihood of a Laplace distribution with scale u (up to a constant),
    |D - D_prior| / u + log u."""
    return masked_mean((rendered - aligned).abs() / uncertainty + torch.log(uncertainty), mask)


def gaussian_nll_normal(rendered, prior, uncertainty, mask) -> torch.Tensor:
    """DebSDF's normal loss: NLL of an isotropic Gaussian with std u (up to a constant),
    |n - n_prior|^2 / (2 u^2) + log u."""
    n = F.normalize(rendered, dim=-1, eps=1e-6)
    return masked_mean(((n - prior) ** 2).sum(-1) / (2 * uncertainty ** 2) + torch.log(uncertainty), mask)


def uncertainty_weights(uncertainty: torch.Tensor, keep: torch.Tensor, power: int) -> torch.Tensor:
    """Per-pixel weights of the prior losses on the geometry after warm-up: the NLLs' 1/u (Laplace depth) or 1/u^2
    (Gaussian normals) on the kept pixels, detached (the heads learn u from the NLLs themselves). Used through
    the weighted means of depth_mse / normal_l1_angular (sum w x / sum w), so the loss keeps the warm-up's scale
    while confident pixels count more and uncertain ones less (DebSDF sec. 3.2)."""
    w = uncertainty.detach() ** (-power)
    return w * (keep.to(w.dtype) if keep is not None else 1.0)


def smoothness(normals_a: torch.Tensor, normals_b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """|n(x) - n(x + eps)| at surface points (MonoSDF/Manhattan-SDF smoothness), weighted per point; DebSDF
    switches it off (weight 0) where the normal uncertainty is high, so thin parts are not smoothed away."""
    return masked_mean((normals_a - normals_b).norm(dim=-1), weight)


def masked_mean(x: torch.Tensor, mask) -> torch.Tensor:
    if mask is None:
        return x.mean()
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp(min=1.0)
