"""Ray sampling (occupancy-grid marching + importance resampling near the surface) and SDF volume rendering."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..kernels.grid import OccupancyGrid, clip_ray_to_box_torch
from .field import ReconModel, bias_aware_sdf, interval_optical_depth, laplace_density


@dataclass
class RenderOptions:
    coarse_step: float = 2.0 / 128     # occupancy-grid marching step (normalized units)
    max_coarse: int = 256              # coarse samples per ray at most
    fine_samples: int = 24             # importance samples per ray that carry gradients
    bias_aware: bool = True            # DebSDF's bias-aware SDF-to-density transform ...
    bias_strength: float = 1.0         # ... at this stage of its progressive warm-up (DebSDF eq. 24's n, 0..1)
    bias_per_sample: bool = True       # ... DebSDF's way (detached normals, scaled per sample by its uncertainty,
                                       # eq. 24); off: full everywhere, the view angle from the normals with
                                       # gradients (our first reading, better on objects: see config)
    background: float = 0.0            # colour of empty space (rays that leave the scene)
    coarse_beta_min: float = 0.01      # the coarse pass' density is no sharper than its SDF's resolution
    uniform_samples: int = 0           # stratified samples over the whole ray in the box, besides the fine ones
    linear_intervals: bool = False     # optical depth of each interval from the SDF at both ends (exact for a
                                       # plane) instead of the left sample's density times the length


class SDFVolume:
    """A dense SDF sampled at the occupancy grid's cell centres, trilinearly interpolated (grid_sample); cheap
    stand-in for the network in the coarse pass, refreshed with the occupancy grid."""

    def __init__(self, values: torch.Tensor, bound: float = 1.0):
        self.values = values[None, None].permute(0, 1, 4, 3, 2).contiguous()  # grid_sample wants (z, y, x)
        self.bound = bound

    def __call__(self, points: torch.Tensor) -> torch.Tensor:
        g = (points / self.bound)[None, :, None, None, :]
        out = F.grid_sample(self.values, g, mode="bilinear", padding_mode="border", align_corners=False)
        return out.reshape(-1)


@dataclass
class RayBundle:
    rgb: torch.Tensor          # (R,3)
    depth: torch.Tensor        # (R,) distance along the unit ray direction
    normal: torch.Tensor       # (R,3) world frame, weighted sum of unit SDF normals
    uncertainty: torch.Tensor  # (R,2) depth, normal uncertainty (DebSDF), rendered with detached weights
    opacity: torch.Tensor      # (R,)
    gradients: torch.Tensor    # (R*S,3) SDF gradients at the samples (eikonal)
    points: torch.Tensor       # (R,S,3)
    weights: torch.Tensor      # (R,S)


def box_range(origins: torch.Tensor, directions: torch.Tensor, bound: float):
    """Entry/exit distances of rays through the cube [-bound, bound]^3 (t_enter > t_exit: miss)."""
    lo = torch.full((3,), -bound, device=origins.device)
    n = origins.shape[0]
    zeros, inf = torch.zeros(n, device=origins.device), torch.full((n,), math.inf, device=origins.device)
    return clip_ray_to_box_torch(origins, directions, lo, -lo, zeros, inf)


def stratified_in_box(origins, directions, bound: float, k: int, generator: torch.Generator | None = None):
    """(R, k) sorted distances, one uniform draw in each of k equal strata of the ray's span in the cube (from
    t >= 0), and the (R, k) stratum positions u in [0, 1) they came from. u is drawn on the CPU (the trainer's
    generator is a CPU one) and moved: the same numbers on any device."""
    dev = origins.device
    u = (torch.arange(k, device=dev, dtype=torch.float32)[None]
         + torch.rand(origins.shape[0], k, generator=generator).to(dev)) / k
    t_enter, t_exit = box_range(origins, directions, bound)
    t_enter, t_exit = t_enter.clamp(min=0), t_exit.clamp(min=0)
    return t_enter[:, None] + u * (t_exit - t_enter).clamp(min=0)[:, None], u


@torch.no_grad()
def importance_samples(model: ReconModel, grid: OccupancyGrid, origins, directions, opts: RenderOptions,
                       generator: torch.Generator | None = None, coarse_sdf=None) -> torch.Tensor:
    """(R, fine_samples) sorted distances: coarse intervals from the occupancy grid (instant-ngp marching), their
    VolSDF weights from a gradient-free SDF pass, then stratified inverse-CDF sampling (NeRF eq. 5, NeuS sec. 3.4).
    Rays the grid leaves empty are sampled uniformly in the scene box, so a wrong grid can still be corrected.
    `coarse_sdf` (points -> sdf) replaces the model for the coarse pass (the trainer passes a cached SDF volume)."""
    n, k = origins.shape[0], opts.fine_samples
    dev = origins.device
    packed = grid.march(origins, directions, step_size=opts.coarse_step, max_samples=opts.max_coarse)
    ray, t0, t1 = packed.ray_indices, packed.t_starts, packed.t_ends
    uniform, u = stratified_in_box(origins, directions, grid.level_hi[-1, 0].item(), k, generator)
    if ray.numel() == 0:
        return uniform
    mid = 0.5 * (t0 + t1)
    sdf = (coarse_sdf or model.sdf)(origins[ray] + mid[:, None] * directions[ray])
    beta = model.density.get_beta().clamp(min=opts.coarse_beta_min)
    sigma_delta = laplace_density(sdf, beta) * (t1 - t0)
    # Exclusive transmittance per ray from a global cumsum minus each ray's start (packed, no Python loop).
    cs = torch.cumsum(sigma_delta, 0)
    first = packed.packed_info[:, 0]
    count = packed.packed_info[:, 1]
    start_cs = (cs - sigma_delta)[first.clamp(max=cs.numel() - 1)]
    trans = torch.exp(-((cs - sigma_delta) - start_cs[ray]))
    w = trans * (1 - torch.exp(-sigma_delta)) + 1e-5  # a floor keeps every occupied interval reachable
    total = torch.zeros(n, device=dev).index_add_(0, ray, w)
    # Global CDF: ray r's normalized CDF is shifted by r, so one searchsorted serves all rays.
    wn = w / total[ray]
    cdf = torch.cumsum(wn, 0)
    cdf_ray_start = (cdf - wn)[first.clamp(max=cdf.numel() - 1)]
    cdf = cdf - cdf_ray_start[ray] + ray.to(cdf.dtype)
    query = (torch.arange(n, device=dev, dtype=torch.float32)[:, None] + u.clamp(max=1 - 1e-6)).reshape(-1)
    idx = torch.searchsorted(cdf, query).clamp(max=cdf.numel() - 1)
    idx = torch.minimum(idx, (first + count - 1).clamp(min=0).repeat_interleave(k))
    cdf_hi = cdf[idx]
    cdf_lo = cdf_hi - wn[idx]
    frac = ((query - cdf_lo) / wn[idx]).clamp(0, 1)
    fine = (t0[idx] + frac * (t1[idx] - t0[idx])).reshape(n, k)
    fine = torch.sort(fine, dim=1).values
    return torch.where((count > 0)[:, None], fine, uniform)


def volume_render(model: ReconModel, origins, directions, t: torch.Tensor, opts: RenderOptions) -> RayBundle:
    """VolSDF rendering at sorted distances t (R,S): alpha_i = 1 - exp(-sigma_i delta_i), T_i = prod_{j<i}(1-alpha_j)
    (Max 1995; VolSDF eq. 5), all rays at once as dense (R,S) tensors."""
    n, s = t.shape
    deltas = torch.cat([t[:, 1:] - t[:, :-1], torch.full_like(t[:, :1], opts.coarse_step)], 1).clamp(min=1e-6)
    points = origins[:, None] + t[..., None] * directions[:, None]
    flat = points.reshape(-1, 3)
    sdf, feature, gradient = model.sdf_net(flat)
    normals = F.normalize(gradient, dim=-1, eps=1e-6)
    view = directions[:, None].expand(n, s, 3).reshape(-1, 3)
    sdf_rs = sdf.reshape(n, s)
    rgb, uncertainty = model.color_net(flat, normals, view, feature)
    if opts.bias_aware and opts.bias_strength > 0:
        # DebSDF (code: model/ray_sampler.py sdf_mapping): the view angle comes from the detached normals (the
        # density must not steer the normals), and the correction is warmed in per sample,
        # |cos|^clamp(2 u n, 0, 1) (eq. 24), with u = u_d^0.1 u_n^0.9 the sample's blended uncertainty:
        # confident samples keep VolSDF's density, uncertain ones (thin parts, where the bias is) get the
        # corrected one.
        n_rs = (normals.detach() if opts.bias_per_sample else normals).reshape(n, s, 3)
        cos = (n_rs * directions[:, None]).sum(-1).abs().clamp(min=1e-6)
        if opts.bias_per_sample:
            u = uncertainty.detach()
            blend = (u[:, 0].pow(0.1) * u[:, 1].pow(0.9)).reshape(n, s)
            cos = cos.pow((2 * blend * opts.bias_strength).clamp(0, 1))
        # Curvature from neighbouring samples' normals: |n_{i+1} - n_i| / |x_{i+1} - x_i| (DebSDF sec. 3.4).
        dn = (n_rs[:, 1:] - n_rs[:, :-1]).norm(dim=-1) / deltas[:, :-1]
        curvature = torch.cat([dn, dn[:, -1:]], 1).detach()
        sdf_rs = bias_aware_sdf(sdf_rs, cos, curvature)
    beta = model.density.get_beta()
    if opts.linear_intervals:
        # The last sample has no right neighbour: its interval keeps the left-sample rule.
        tau = torch.cat([interval_optical_depth(sdf_rs[:, :-1], sdf_rs[:, 1:], deltas[:, :-1], beta),
                         laplace_density(sdf_rs[:, -1:], beta) * deltas[:, -1:]], 1)
        t_depth = t + 0.5 * deltas  # where in its interval a sample's weight ends, on average
    else:
        tau = laplace_density(sdf_rs, beta) * deltas
        t_depth = t
    alpha = 1 - torch.exp(-tau)
    trans = torch.cumprod(torch.cat([torch.ones_like(alpha[:, :1]), 1 - alpha + 1e-7], 1), 1)[:, :-1]
    weights = alpha * trans
    opacity = weights.sum(1)
    background = opts.background if model.background_net is None else model.background_net(directions)
    rgb_px = (weights[..., None] * rgb.reshape(n, s, 3)).sum(1) + (1 - opacity[:, None]) * background
    depth = (weights * t_depth).sum(1) + (1 - opacity) * t[:, -1]
    normal_px = (weights[..., None] * normals.reshape(n, s, 3)).sum(1)
    unc_px = (weights.detach()[..., None] * uncertainty.reshape(n, s, 2)).sum(1) + 1e-3
    return RayBundle(rgb_px, depth, normal_px, unc_px, opacity, gradient, points, weights)


def render_rays(model, grid, origins, directions, opts: RenderOptions, generator=None, coarse_sdf=None) -> RayBundle:
    t = importance_samples(model, grid, origins, directions, opts, generator, coarse_sdf)
    if opts.uniform_samples > 0 and torch.is_grad_enabled():
        # NeuS-style stratified samples along the whole ray (training only): they let the losses reach space the
        # occupancy grid calls empty, so a surface the current SDF does not have yet (furniture) can grow there.
        extra, _ = stratified_in_box(origins, directions, grid.level_hi[-1, 0].item(), opts.uniform_samples, generator)
        t = torch.sort(torch.cat([t, extra], 1), 1).values
    return volume_render(model, origins, directions, t, opts)


def render_image(model, grid, dataset, index: int, opts: RenderOptions, scale: float = 0.5,
                 chunk: int = 4096) -> dict[str, torch.Tensor]:
    """RGB, z-depth, camera-frame normal and the two uncertainty maps of one view at `scale` x resolution."""
    h, w = int(dataset.height * scale), int(dataset.width * scale)
    ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    pix = torch.stack([(xs.reshape(-1) + 0.5) / scale, (ys.reshape(-1) + 0.5) / scale], -1).float()
    image_index = torch.full((pix.shape[0],), index, dtype=torch.int64)
    origins, dirs = dataset.rays(image_index, pix)
    c2w = dataset.cam_to_world[index]
    outs = {"rgb": [], "depth": [], "normal": [], "uncertainty": []}
    for s in range(0, pix.shape[0], chunk):
        with torch.no_grad():
            b = render_rays(model, grid, origins[s:s + chunk], dirs[s:s + chunk], opts)
        outs["rgb"].append(b.rgb)
        outs["depth"].append(b.depth * (dirs[s:s + chunk] @ c2w[:3, 2]))
        outs["normal"].append(b.normal @ c2w[:3, :3])
        outs["uncertainty"].append(b.uncertainty)
    return {k: torch.cat(v).reshape(h, w, -1).squeeze(-1).cpu() for k, v in outs.items()}
