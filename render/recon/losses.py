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
                      min_scale: float = 1e-6, use: torch.Tensor | None = None, min_correlation: float = 0.5,
                      robust_iters: int = 0):
    """The mono depth prior mapped into the rendered depth's units, per image (group).

    MonoSDF (Yu et al. 2022, eq. 11) fits (w, q) = argmin sum (w D_rendered + q - D_prior)^2 in closed form per
    image; we return the prior mapped back through that fit, (D_prior - q) / w, so the residual
    D_rendered - aligned is in scene units and exactly invariant to any scale (> 0) and shift of the prior.
    `use` (M,) bool: the pixels that enter the fit (valid priors; sky pixels' 0 or NaN would skew or poison it).
    `robust_iters` > 0: that many iteratively reweighted refits towards a least-absolute-deviations fit (weights
    1 / max(|r|, 0.02 mean |r| of the image)). Pixels where the geometry is still missing (furniture not grown
    yet: the prior is much nearer than the rendered wall behind) are one-sided outliers that tilt a least-squares
    fit and with it the aligned depth of every other pixel of the image; the robust fit leaves them as residuals.
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

    def solve(weight):
        a00, a01, a11 = gsum(weight * rendered * rendered), gsum(weight * rendered), gsum(weight)
        b0, b1 = gsum(weight * rendered * prior), gsum(weight * prior)
        det = a00 * a11 - a01 * a01
        ok = det.abs() > 1e-12 * (a00 * a11).clamp(min=1e-30)
        safe = torch.where(ok, det, torch.ones_like(det))
        cov = a11 * b0 - a01 * b1  # n^2 cov(rendered, prior); det = n^2 var(rendered)
        return cov / safe, (a00 * b1 - a01 * b0) / safe, ok, det, cov, a11, b1

    w, q, ok, det, cov, count, b1 = solve(ones)
    ok &= count >= 2
    # A fit of a prior against a rendered depth that does not (yet) follow it is meaningless, and its 1/w blows
    # the residual up (at the start the rendered depth is the init sphere's, nearly constant: depth losses of
    # ~15 in the first steps, measured). Require the two to correlate: Pearson r >= min_correlation.
    var_p = (count * gsum(ones * prior * prior) - b1 * b1).clamp(min=0)  # n^2 var(prior)
    ok &= cov >= min_correlation * torch.sqrt(det.clamp(min=0) * var_p)
    for _ in range(robust_iters):
        residual = (w[group] * rendered + q[group] - prior).abs() * ones
        scale = gsum(residual) / count.clamp(min=1)
        w2, q2, ok2 = solve(ones / torch.maximum(residual, 0.02 * scale[group]).clamp(min=1e-12))[:3]
        w, q = torch.where(ok2, w2, w), torch.where(ok2, q2, q)
    ok &= w > min_scale
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
