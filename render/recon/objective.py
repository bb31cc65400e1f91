"""The reconstruction objective on one batch of rendered rays: MonoSDF's prior losses during warm-up, DebSDF's
uncertainty-aware ones after. One function shared by our Trainer and the nerfstudio plugin (render/nerfstudio_plugin),
so both optimise the same thing; each caller brings its own rays, targets and RNG."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import losses as L
from .config import ReconConfig
from .field import ReconModel
from .renderer import RayBundle


@dataclass
class RayTargets:
    """Per-ray supervision, all on the rays' device. Camera axes are OpenCV (x right, y down, z forward)."""
    rgb: torch.Tensor                    # (M,3) target colour
    cam_z: torch.Tensor                  # (M,3) the ray's camera forward axis (world): ray distance -> z-depth
    cam_rot: torch.Tensor                # (M,3,3) the ray's camera-to-world rotation: world normal -> camera frame
    group: torch.Tensor                  # (M,) int64 image id of each ray: one depth scale/shift fit per group
    depth: torch.Tensor | None = None    # (M,) depth prior (z-depth, any per-image scale and shift)
    normal: torch.Tensor | None = None   # (M,3) unit normal prior in the camera frame
    mask: torch.Tensor | None = None     # (M,) bool foreground / valid pixels
    image: torch.Tensor | None = None    # (M,) int64 dataset image id of each ray (for a DepthFitAnchor)
    importance: torch.Tensor | None = None  # (M,) 1 / (N P) of each ray's pixel under a guided sampler: weights of
                                         # the prior losses (config.prior_importance) and colour loss (rgb_importance)
    prior_conflict: torch.Tensor | None = None  # (M,) bool: the pixel's depth prior is photometrically
                                         # inconsistent across views (config.prior_conflict): left out of the
                                         # prior losses after warm-up


def ray_uncertainty(bundle: RayBundle, config: ReconConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(depth, normal) uncertainty per ray with the config's floors, which keep the NLL weights 1/u bounded where
    the priors are (nearly) exact."""
    return (bundle.uncertainty[:, 0] + config.depth_uncertainty_min,
            bundle.uncertainty[:, 1] + config.normal_uncertainty_min)


def sampling_uncertainty(bundle: RayBundle, config: ReconConfig, rgb: torch.Tensor | None = None) -> torch.Tensor:
    """(M,) the value the uncertainty-guided pixel sampler accumulates per ray: each uncertainty over its batch
    mean, summed, plus sampling_rgb_weight x the colour error over its batch mean when the target colours `rgb` are
    given (detached, on the rays' device: the sampler copies it to the CPU once the step is queued)."""
    u_d, u_n = ray_uncertainty(bundle, config)
    value = u_d / u_d.mean().clamp(min=1e-6) + u_n / u_n.mean().clamp(min=1e-6)
    if rgb is not None and config.sampling_rgb_weight > 0:
        err = (bundle.rgb - rgb).abs().mean(-1)
        value = value + config.sampling_rgb_weight * err / err.mean().clamp(min=1e-6)
    return value.detach()


def prior_sdf_loss(model: ReconModel, origins, dirs, cam_z, aligned, weight, count: int,
                   generator: torch.Generator | None = None, free_space: bool = True) -> torch.Tensor:
    """The aligned depth prior as direct SDF supervision, as RGB-D methods use depth (Azinovic et al. 2022, Neural
    RGB-D Surface Reconstruction, sec. 3.2: truncated-SDF and free-space terms): at the prior's surface point
    x* = o + t* d the SDF is 0, |sdf(x*)|, and at a point drawn uniformly in front of it on the same ray it is
    positive, relu(-sdf). Volume rendering only moves surfaces where the ray samples already see density, so
    furniture far from the initial sphere never grows and an object's initial blob carves slowly; these terms
    act at the prior's depth directly. Weighted per ray like the depth loss (mask in warm-up, 1/u after).
    `free_space` False keeps the surface term only: a prior that misses a thin leg in front of the wall claims
    free space through the leg."""
    pick = torch.nonzero(weight > 0).squeeze(1)
    if pick.numel() > count:
        pick = pick[torch.randperm(pick.numel(), generator=generator)[:count].to(pick.device)]
    o, d = origins[pick], dirs[pick]
    t_star = aligned[pick] / (d * cam_z[pick]).sum(-1).clamp(min=1e-3)
    surface = o + t_star[:, None] * d
    if not free_space:
        return L.masked_mean(model.sdf_net(surface, with_gradient=False)[0].abs(), weight[pick])
    u = torch.rand(pick.numel(), generator=generator).to(o.device) * 0.9
    sdf = model.sdf_net(torch.cat([surface, o + (u * t_star)[:, None] * d]), with_gradient=False)[0]
    n = pick.numel()
    return L.masked_mean(sdf[:n].abs() + torch.relu(-sdf[n:]), weight[pick])


def recon_losses(model: ReconModel, bundle: RayBundle, origins: torch.Tensor, dirs: torch.Tensor,
                 targets: RayTargets, config: ReconConfig, progress: float,
                 generator: torch.Generator | None = None, step: int | None = None,
                 anchor: L.DepthFitAnchor | None = None) -> dict[str, torch.Tensor]:
    """Weighted loss terms of one batch (sum them for the total). `bundle` is render_rays(model, ..., origins,
    dirs); `progress` in [0,1] is the fraction of the budget spent and `step` the step (warm-up until
    config.warmup_fraction and config.warmup_max_steps); `generator` (CPU) draws the eikonal and smoothness points;
    `anchor` (with targets.image and step) tracks each image's depth-prior fit and fixes it from its freeze step."""
    c, dev = config, origins.device
    if c.rgb_importance > 0 and targets.importance is not None:
        # Tempered importance weights (1 / (N P))^g, self-normalized: g = 1 is the colour loss uniform pixel
        # sampling would have in expectation, g = 0 the guided rays' plain mean.
        rgb = L.masked_mean((bundle.rgb - targets.rgb).abs().mean(-1), targets.importance ** c.rgb_importance)
    else:
        rgb = L.rgb_l1(bundle.rgb, targets.rgb)
    out = {"rgb": rgb * c.rgb_weight}
    rand_pts = torch.rand(c.eikonal_points, 3, generator=generator) * 2 - 1
    _, _, rand_grad = model.sdf_net(rand_pts.to(dev))
    out["eikonal"] = L.eikonal(torch.cat([bundle.gradients, rand_grad])) * c.eikonal_weight
    # Warm-up (MonoSDF losses on every pixel) for a share of the budget but at most warmup_max_steps steps: in
    # warm-up, pixels whose geometry is still missing (furniture) pull the surfaces behind them towards the camera;
    # a 15-minute budget's 30 % (2300 steps) shrank the whole room by 5-6 cm, the uncertainty-weighted losses
    # after warm-up leave such pixels out (measured, room, 1300 steps).
    warm = (progress < c.warmup_fraction and (step is None or step < c.warmup_max_steps)) or not c.uncertainty
    u_d, u_n = ray_uncertainty(bundle, c)
    batch_norm = c.prior_normalization == "batch"
    importance = targets.importance if c.prior_importance else None  # (targets carry it for rgb_importance too)
    # Pixels whose prior the other views' colours contradict leave the prior losses after warm-up, as DebSDF's
    # uncertain pixels do (the uncertainty heads still fit them).
    clean = None if warm or targets.prior_conflict is None else ~targets.prior_conflict
    valid = targets.mask
    if valid is not None and c.mask_weight > 0:
        out["mask"] = F.binary_cross_entropy(bundle.opacity.clamp(1e-4, 1 - 1e-4), valid.float()) * c.mask_weight
    depth_terms = normal_terms = None
    if targets.depth is not None and c.depth_weight > 0:
        z = bundle.depth * (dirs * targets.cam_z).sum(-1)
        prior = targets.depth
        groups = torch.unique(targets.group, return_inverse=True)[1]
        mask = torch.isfinite(prior) & (prior > 0)
        if valid is not None:
            mask &= valid
        # Only valid priors enter the per-image fit: a sky pixel's 0 would skew it (and a NaN poison it).
        aligned, ok, fit = L.align_prior_depth(z.detach(), prior, groups, int(groups.max()) + 1, use=mask,
                                               robust_iters=c.depth_fit_robust_iters, return_fit=True)
        grow = None
        tracked = anchor is not None and targets.image is not None and step is not None
        fits_fixed = tracked and anchor.frozen(step)
        if tracked:
            if fits_fixed:
                fixed, known = anchor.align(prior, targets.image)
                aligned, ok = torch.where(known, fixed, aligned), ok | known
                if c.depth_outlier > 0:
                    # Far off a fixed fit: the geometry is wrong there, and the volume-rendered depth loss would
                    # drag the surfaces behind along. Where the prior is nearer than the rendered depth the
                    # geometry is missing (furniture not grown yet); with prior_sdf_grow, prior_sdf still
                    # supervises those pixels, at the prior's surface point and in front of it. Where the prior
                    # is farther (it misses a thin leg), nothing. (Against a fit that follows the geometry the
                    # residual says little: session 4, F@5cm 0.48.)
                    near, grow = L.depth_outliers(z.detach(), aligned, mask & known, c.depth_outlier)
                    ok &= ~known | near
                    if not c.prior_sdf_grow:
                        grow = None
            else:
                image_of_group = torch.zeros(len(fit[0]), dtype=torch.int64, device=groups.device)
                image_of_group[groups] = targets.image
                anchor.update(image_of_group, *fit)
        count = None
        if batch_norm and not warm:
            # pixels with a prior, before the outliers and uncertain ones leave (importance-weighted with it)
            count = mask.sum() if importance is None else (mask * importance).sum()
        mask &= ok
        depth_terms = (z, aligned, mask.clone())
        if warm:
            weight = mask
        else:
            mask &= u_d.detach() < c.depth_exclude  # DebSDF: high-uncertainty priors are left out
            if clean is not None:
                mask &= clean
            weight = L.uncertainty_weights(u_d, mask, 1, c.depth_uncertainty_min if batch_norm else None)
        base_weight = weight
        if importance is not None:
            weight = weight * importance
        if warm or c.depth_loss == "mse":
            out["depth"] = L.depth_mse(z, aligned, weight, count) * c.depth_weight
        else:  # DebSDF: the Laplace NLL's |D - D*| / u on the geometry, L1 in the residual
            out["depth"] = L.masked_mean((z - aligned).abs(), weight, count) * c.depth_l1_weight
        use_prior_sdf = c.prior_sdf == "true" or (c.prior_sdf == "auto" and model.sdf_net.sign < 0)  # auto: rooms
        if use_prior_sdf and grow is not None and bool(grow.any()):
            w = base_weight.to(aligned.dtype)
            scale = w[w > 0].mean() if bool((w > 0).any()) else torch.ones((), dtype=w.dtype, device=w.device)
            grown = scale if importance is None else scale * importance  # the kept pixels' average weight
            weight = torch.where(grow, grown, weight.to(aligned.dtype))
        sdf_weight = (c.prior_sdf_weight_fixed if fits_fixed and c.prior_sdf_weight_fixed >= 0
                      else c.prior_sdf_weight)
        if use_prior_sdf and sdf_weight > 0 and bool((weight > 0).any()):
            out["prior_sdf"] = sdf_weight * prior_sdf_loss(model, origins, dirs, targets.cam_z, aligned, weight,
                                                           c.prior_sdf_points, generator,
                                                           free_space=not fits_fixed or c.prior_sdf_free_space_fixed)
    if targets.normal is not None and c.normal_weight > 0:
        n_cam = torch.einsum("mk,mkj->mj", bundle.normal, targets.cam_rot)
        prior_n = targets.normal
        mask = valid
        normal_terms = (n_cam, prior_n)
        if warm:
            weight = mask if importance is None else importance * (1.0 if mask is None else mask)
            out["normal"] = L.normal_l1_angular(n_cam, prior_n, weight) * c.normal_weight
        else:
            count = None
            if batch_norm:
                count = torch.ones_like(n_cam[:, 0]) if mask is None else mask.to(n_cam.dtype)
                count = (count if importance is None else count * importance).sum()
            keep = u_n.detach() < c.normal_exclude
            if clean is not None:
                keep &= clean
            mask = keep if mask is None else mask & keep
            weight = L.uncertainty_weights(u_n, mask, 2, c.normal_uncertainty_min if batch_norm else None)
            if importance is not None:
                weight = weight * importance
            out["normal"] = L.normal_l1_angular(n_cam, prior_n, weight, count) * c.normal_weight
    if c.smooth_weight > 0:
        k = min(c.smooth_points, origins.shape[0])  # a subset of the batch's rays is enough
        surf = (origins[:k] + bundle.depth.detach()[:k, None] * dirs[:k])
        pts = torch.cat([surf, surf + torch.randn(surf.shape, generator=generator).to(dev) * 0.01])
        _, _, g = model.sdf_net(pts)
        n = F.normalize(g, dim=-1, eps=1e-6)
        weight = bundle.opacity.detach()[:k]
        if c.uncertainty and c.adaptive_smoothness and not warm:
            weight = weight * (u_n.detach()[:k] < c.normal_exclude)
            if clean is not None:
                weight = weight * clean[:k]
        out["smooth"] = L.smoothness(n[:surf.shape[0]], n[surf.shape[0]:], weight) * c.smooth_weight
    if c.uncertainty or c.uncertainty_sampling:
        # The uncertainty heads learn the NLLs on every pixel with the geometry detached (from the first
        # step, so that the maps mean something when the uncertainty losses start, and on excluded pixels
        # too, so that an exclusion is not permanent); the geometry sees the uncertainty as a fixed weight.
        fit = []
        if depth_terms is not None:
            fit.append(L.laplace_nll_depth(depth_terms[0].detach(), depth_terms[1], u_d, depth_terms[2]))
        if normal_terms is not None:
            fit.append(L.gaussian_nll_normal(normal_terms[0].detach(), normal_terms[1], u_n, valid))
        if fit:
            out["uncertainty_fit"] = c.uncertainty_fit_weight * sum(fit)
    return out
