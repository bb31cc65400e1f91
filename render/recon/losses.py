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
                      robust_iters: int = 0, return_fit: bool = False):
    """The mono depth prior mapped into the rendered depth's units, per image (group).

    MonoSDF (Yu et al. 2022, eq. 11) fits (w, q) = argmin sum (w D_rendered + q - D_prior)^2 in closed form per
    image; we return the prior mapped back through that fit, (D_prior - q) / w, so the residual
    D_rendered - aligned is in scene units and exactly invariant to any scale (> 0) and shift of the prior.
    `use` (M,) bool: the pixels that enter the fit (valid priors; sky pixels' 0 or NaN would skew or poison it).
    `robust_iters` > 0: that many iteratively reweighted refits towards a least-absolute-deviations fit (weights
    1 / max(|r|, 0.02 mean |r| of the image)). Pixels where the geometry is still missing (furniture not grown
    yet: the prior is much nearer than the rendered wall behind) are one-sided outliers that tilt a least-squares
    fit and with it the aligned depth of every other pixel of the image; the robust fit leaves them as residuals.
    Returns (aligned (M,), valid (M,) bool: the image's fit is well-posed with w > min_scale), and with
    `return_fit` also (w, q, ok) per group (float64, float64, bool).
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
    if return_fit:
        return aligned.to(dtype), ok[group], (w, q, ok)
    return aligned.to(dtype), ok[group]


class DepthFitAnchor:
    """Per-image depth-prior fits (w, q) that stop following the geometry at step `freeze_step`.

    A scale-and-shift-invariant depth loss cannot see a change of the scene that each image sees as a change of
    depth scale and shift: a room shrinking about its cameras is nearly one. With textureless walls nothing else
    pins the walls (colour is the same everywhere), so they drift with any small pull; on the bundled room they
    moved 3 cm inwards between steps 2000 and 7800 while the furniture grew (measured). Until `freeze_step` each
    image's fit is tracked as an exponential moving average of its batch fits (`decay` per occurrence); from then
    on the averages are used instead of the batch fit, so the prior's depth is fixed in scene units and holds the
    walls where they were when the geometry had converged. Images without a tracked fit keep the batch fit."""

    def __init__(self, num_images: int, freeze_step: int, decay: float = 0.9):
        self.freeze_step, self.decay = int(freeze_step), float(decay)
        self.w = torch.zeros(num_images, dtype=torch.float64)
        self.q = torch.zeros(num_images, dtype=torch.float64)
        self.seen = torch.zeros(num_images, dtype=torch.int64)
        self.refined = False

    def frozen(self, step: int) -> bool:
        return step >= self.freeze_step

    @torch.no_grad()
    def update(self, image: torch.Tensor, w: torch.Tensor, q: torch.Tensor, ok: torch.Tensor) -> None:
        """Folds in one batch's fits: image (G,) the image id of each group, (w, q, ok) from align_prior_depth."""
        image, w, q, ok = image.cpu(), w.cpu(), q.cpu(), ok.cpu()
        image, w, q = image[ok], w[ok], q[ok]
        first = self.seen[image] == 0
        a = torch.where(first, torch.zeros_like(w), torch.full_like(w, self.decay))
        self.w[image] = a * self.w[image] + (1 - a) * w
        self.q[image] = a * self.q[image] + (1 - a) * q
        self.seen[image] += 1

    def align(self, prior: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(aligned (M,), known (M,) bool) through the tracked fits of each ray's image."""
        idx = image.cpu()
        w, q = self.w[idx].to(prior.device), self.q[idx].to(prior.device)
        known = (self.seen[idx] > 0).to(prior.device) & (w > 0)
        aligned = (prior.double() - q) / torch.where(known, w, torch.ones_like(w))
        return aligned.to(prior.dtype), known

    def depth_maps(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(known (N,) bool, a, b): the tracked fits as maps prior -> z-depth, z = a P + b (1, 0 where unknown)."""
        good = (self.seen > 0) & (self.w > 0)
        w_safe = torch.where(good, self.w, torch.ones_like(self.w))
        return good, torch.where(good, 1 / w_safe, torch.ones_like(self.w)), torch.where(good, -self.q / w_safe, 0.0)

    def refine_multiview(self, dataset, image_ids: list[int], generator: torch.Generator | None = None):
        """Makes the tracked fits consistent across views (prior_align.multiview_prior_fit), keeping their common
        scale. Fits against the rendered depth inherit every local error of the geometry they were made on (on
        the room, fixed at step 1000, one image's was 5.8 % off, mean 1.1 %; after this 1.0 % and 0.3 %,
        measured against the ground truth). Returns the AlignStats, or None where it does not apply."""
        from .prior_align import multiview_prior_fit

        self.refined = True
        good, a, b = self.depth_maps()
        ids = [i for i in image_ids if bool(good[i])]
        if len(ids) < 2 or dataset.depths is None or dataset.camera_model != "PINHOLE":
            return None
        a, b, stats = multiview_prior_fit(dataset, ids, a, b, generator=generator)
        ok = torch.zeros_like(good)
        ok[ids] = a[ids] > 0
        self.w = torch.where(ok, 1 / torch.where(ok, a, torch.ones_like(a)), self.w)
        self.q = torch.where(ok, -b * self.w, self.q)
        return stats

    def rescale(self, factor: float) -> None:
        """Multiplies every tracked fit's depth by `factor`: z = a P + b -> factor (a P + b), i.e. w / factor."""
        good = (self.seen > 0) & (self.w > 0)
        self.w = torch.where(good, self.w / factor, self.w)

    def state_dict(self) -> dict:
        return {"w": self.w, "q": self.q, "seen": self.seen, "freeze_step": self.freeze_step,
                "refined": torch.tensor(self.refined)}

    def load_state_dict(self, state: dict) -> None:
        self.w, self.q, self.seen = state["w"].double(), state["q"].double(), state["seen"].long()
        self.refined = bool(state.get("refined", torch.tensor(False)))


def depth_outliers(rendered: torch.Tensor, aligned: torch.Tensor, valid: torch.Tensor, threshold: float):
    """(near, grow) per pixel against a fixed depth fit: near, |rendered - aligned| < threshold (the depth loss
    keeps these); grow, valid pixels whose prior is nearer than the rendered depth by more than the threshold (the
    geometry is missing in front: the prior's surface point supervises the SDF there, prior_sdf)."""
    residual = rendered - aligned
    return residual.abs() < threshold, valid & (residual > threshold)


def depth_mse(rendered, aligned, mask, count=None) -> torch.Tensor:
    """MonoSDF's scale-shift-invariant depth loss (eq. 11) against the aligned prior (`count`: see masked_mean)."""
    return masked_mean((rendered - aligned) ** 2, mask, count)


def normal_l1_angular(rendered: torch.Tensor, prior: torch.Tensor, mask, count=None) -> torch.Tensor:
    """MonoSDF eq. 12: |n - n_prior|_1 + |1 - n . n_prior|_1 with the rendered normal normalized (`count`: see
    masked_mean)."""
    n = F.normalize(rendered, dim=-1, eps=1e-6)
    per_pixel = (n - prior).abs().sum(-1) + (1 - (n * prior).sum(-1)).abs()
    return masked_mean(per_pixel, mask, count)


def laplace_nll_depth(rendered, aligned, uncertainty, mask) -> torch.Tensor:
    """DebSDF's depth loss: negative log-likelihood of a Laplace distribution with scale u (up to a constant),
    |D - D_prior| / u + log u."""
    return masked_mean((rendered - aligned).abs() / uncertainty + torch.log(uncertainty), mask)


def gaussian_nll_normal(rendered, prior, uncertainty, mask) -> torch.Tensor:
    """DebSDF's normal loss: NLL of an isotropic Gaussian with std u (up to a constant),
    |n - n_prior|^2 / (2 u^2) + log u."""
    n = F.normalize(rendered, dim=-1, eps=1e-6)
    return masked_mean(((n - prior) ** 2).sum(-1) / (2 * uncertainty ** 2) + torch.log(uncertainty), mask)


def uncertainty_weights(uncertainty: torch.Tensor, keep: torch.Tensor, power: int,
                        floor: float | None = None) -> torch.Tensor:
    """Per-pixel weights of the prior losses on the geometry after warm-up: the NLLs' 1/u (Laplace depth) or 1/u^2
    (Gaussian normals) on the kept pixels, detached (the heads learn u from the NLLs themselves), so confident
    pixels count more and uncertain ones less (DebSDF sec. 3.2). Without `floor`, used through the weighted means
    of depth_mse / normal_l1_angular (sum w x / sum w): the loss keeps the warm-up's scale whatever the batch. With
    the uncertainties' `floor`, (floor/u)^power in (0, 1], used over the batch's pixel count as DebSDF's mean over
    the batch: a pixel at the floor weighs as in warm-up, and uncertain or excluded pixels lower the loss instead of
    handing their share to the confident ones."""
    w = uncertainty.detach() ** (-power)
    if floor is not None:
        w = w * floor ** power
    return w * (keep.to(w.dtype) if keep is not None else 1.0)


def smoothness(normals_a: torch.Tensor, normals_b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """|n(x) - n(x + eps)| at surface points (MonoSDF/Manhattan-SDF smoothness), weighted per point; DebSDF
    switches it off (weight 0) where the normal uncertainty is high, so thin parts are not smoothed away."""
    return masked_mean((normals_a - normals_b).norm(dim=-1), weight)


def masked_mean(x: torch.Tensor, mask, count=None) -> torch.Tensor:
    """sum(mask x) / sum(mask) (mask: bool or weights); over `count` (a number or 0-d tensor) instead of sum(mask)
    when given."""
    if mask is None:
        return x.mean()
    m = mask.to(x.dtype)
    if count is None:  # weights may sum to less than one pixel's; a bool mask's count is 0 or >= 1
        return (x * m).sum() / m.sum().clamp(min=1.0 if mask.dtype == torch.bool else 1e-12)
    return (x * m).sum() / torch.as_tensor(count, dtype=x.dtype, device=x.device).clamp(min=1.0)
