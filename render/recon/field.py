"""The scene field: hash-grid SDF MLP with geometric init and analytic gradient, colour net with DebSDF uncertainty."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .hashgrid import HashGrid

_SOFTPLUS_BETA = 100.0  # IDR / VolSDF / MonoSDF: softplus(beta=100) keeps the SDF smooth (second derivatives exist)


class SDFNetwork(nn.Module):
    """x -> (sdf, feature) = MLP([x, hash(x)]), plus its gradient d sdf / dx computed in closed form.

    Geometric init: the net starts as the SDF of a sphere of radius `init_radius`, |x| - r; `inside_out` flips it
    to r - |x| for rooms seen from inside (MonoSDF's `inside_outside`). SAL's init (Atzmon & Lipman 2020, sec. 4;
    IDR/MonoSDF) makes a wide MLP approximate the sphere; a 64-wide one is off by ~0.5, so the sphere is an exact
    analytic term and the MLP (SAL-initialised hidden layers, near-zero output layer) learns the residual. The hash
    features enter the first layer with zero weights, so they start silent.
    """

    def __init__(self, grid: HashGrid, hidden: int = 64, layers: int = 2, feature_dim: int = 15,
                 init_radius: float = 0.5, inside_out: bool = False):
        super().__init__()
        self.grid = grid
        self.active_levels = grid.levels  # all levels; the trainer's coarse-to-fine schedule lowers it
        self.feature_dim = feature_dim
        self.init_radius, self.sign = float(init_radius), (-1.0 if inside_out else 1.0)
        dims = [3 + grid.output_dim] + [hidden] * layers + [1 + feature_dim]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        for i, lin in enumerate(self.linears):
            out_dim = lin.out_features
            if i == len(self.linears) - 1:
                nn.init.normal_(lin.weight, mean=0.0, std=1e-4)
                nn.init.constant_(lin.bias, 0.0)
            else:
                nn.init.constant_(lin.bias, 0.0)
                nn.init.normal_(lin.weight, 0.0, math.sqrt(2) / math.sqrt(out_dim))
                if i == 0:
                    nn.init.constant_(lin.weight[:, 3:], 0.0)

    def forward(self, points: torch.Tensor, with_gradient: bool = True):
        """sdf (M,), feature (M, feature_dim), gradient (M,3) or None.

        The gradient is a forward-mode chain rule written in plain torch ops: d out / d input of the MLP by a
        manual backward pass through its layers (softplus' = sigmoid(beta x)), times the hash grid's Jacobian.
        """
        enc, jac = self.grid(points, with_jacobian=with_gradient)
        if self.active_levels < self.grid.levels:
            # Coarse-to-fine (Neuralangelo, Li et al. 2023, sec. 3.3): the finer levels' features are held at 0
            # until the schedule opens them, so early steps fit the coarse shape and not the images' noise.
            keep = (torch.arange(self.grid.levels, device=enc.device) < self.active_levels).to(enc.dtype)
            keep = keep.repeat_interleave(self.grid.features)
            enc = enc * keep
            jac = jac * keep[:, None] if jac is not None else None
        h = torch.cat([points, enc], -1)
        pre_acts = []
        for lin in self.linears[:-1]:
            z = lin(h)
            pre_acts.append(z)
            h = F.softplus(z, beta=_SOFTPLUS_BETA)
        out = self.linears[-1](h)
        radius = points.norm(dim=-1)
        sdf, feature = out[:, 0] + self.sign * (radius - self.init_radius), out[:, 1:]
        if not with_gradient:
            return sdf, feature, None
        g = self.linears[-1].weight[0][None, :].expand(points.shape[0], -1)  # d sdf / d h_last
        for lin, z in zip(reversed(self.linears[:-1]), reversed(pre_acts)):
            g = (g * torch.sigmoid(_SOFTPLUS_BETA * z)) @ lin.weight
        sphere_grad = self.sign * points / radius.clamp(min=1e-9)[:, None]
        gradient = g[:, :3] + torch.einsum("me,mek->mk", g[:, 3:], jac) + sphere_grad
        return sdf, feature, gradient

    def sdf(self, points: torch.Tensor) -> torch.Tensor:
        return self.forward(points, with_gradient=False)[0]


class ColorNetwork(nn.Module):
    """(x, normal, view dir, feature) -> RGB in [0,1], depth uncertainty and normal uncertainty (DebSDF sec. 3.2:
    the radiance net gets two extra heads whose volume-rendered values are the per-pixel uncertainties)."""

    def __init__(self, feature_dim: int = 15, hidden: int = 64, layers: int = 2, min_uncertainty: float = 1e-3):
        super().__init__()
        dims = [3 + 3 + 3 + feature_dim] + [hidden] * layers + [3]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        # The uncertainty heads read the colour net's last hidden layer detached: their NLLs (large where the
        # priors are wrong) must not pull the radiance trunk.
        self.uncertainty_head = nn.Sequential(nn.Linear(hidden, 32), nn.ReLU(), nn.Linear(32, 2))
        self.min_uncertainty = min_uncertainty

    def forward(self, points, normals, view_dirs, features):
        h = torch.cat([points, normals, view_dirs, features], -1)
        for lin in self.linears[:-1]:
            h = F.relu(lin(h))
        rgb = torch.sigmoid(self.linears[-1](h))
        uncertainty = F.softplus(self.uncertainty_head(h.detach())) + self.min_uncertainty  # (M,2): depth, normal
        return rgb, uncertainty


class BackgroundNetwork(nn.Module):
    """View direction -> RGB of whatever lies beyond the scene box (sky, far walls): the rays that leave the unit
    cube end on it, as in NeuS / NeRF++'s background model (here a small MLP on a frequency-encoded direction,
    nerfstudio's `background_color="learned"` idea with a direction). Without it an object scene's sky must be
    explained by geometry inside the box, and the SDF turns into fog."""

    def __init__(self, hidden: int = 32, frequencies: int = 4):
        super().__init__()
        self.register_buffer("freqs", 2.0 ** torch.arange(frequencies, dtype=torch.float32) * math.pi, persistent=False)
        self.net = nn.Sequential(nn.Linear(3 + 6 * frequencies, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    @torch.no_grad()
    def init_color(self, rgb: torch.Tensor) -> None:
        """Starts as the constant `rgb` (3,) (e.g. the images' unmasked or border mean): a grey start would be
        explained by fog at first, faster than the net learns the sky."""
        self.net[-1].weight.mul_(0.1)
        self.net[-1].bias.copy_(torch.logit(rgb.to(self.net[-1].bias).clamp(0.02, 0.98)))

    def forward(self, directions: torch.Tensor) -> torch.Tensor:
        x = directions[..., None] * self.freqs  # (R,3,F)
        enc = torch.cat([directions, torch.sin(x).flatten(-2), torch.cos(x).flatten(-2)], -1)
        return torch.sigmoid(self.net(enc))


class LaplaceDensity(nn.Module):
    """VolSDF density sigma = alpha * Psi_beta(-s), alpha = 1/beta (Yariv et al. 2021, eq. 2-3), learnable beta."""

    def __init__(self, beta: float = 0.1, beta_min: float = 1e-4):
        super().__init__()
        self.beta = nn.Parameter(torch.tensor(float(beta)))
        self.beta_min = beta_min
        self.floor = 0.0  # a schedule's lower bound (the trainer's beta annealing); not part of the state

    def get_beta(self) -> torch.Tensor:
        beta = self.beta.abs() + self.beta_min
        return beta.clamp(min=self.floor) if self.floor > 0 else beta

    def forward(self, sdf: torch.Tensor, beta: torch.Tensor | None = None) -> torch.Tensor:
        beta = self.get_beta() if beta is None else beta
        return laplace_density(sdf, beta)


def laplace_density(sdf: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """(1/beta) * Laplace CDF(-sdf; 0, beta) (VolSDF eq. 2), with the two branches written out so that the
    outside tail 0.5 exp(-s/beta) keeps its relative precision (VolSDF's expm1 form cancels there)."""
    e = torch.exp(-sdf.abs() / beta)
    return torch.where(sdf >= 0, 0.5 * e, 1 - 0.5 * e) / beta


def laplace_density_integral(sdf: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """F(s) with dF/ds = laplace_density(s, beta): F(s) = -0.5 exp(-|s|/beta) + min(s, 0)/beta (continuous at 0)."""
    return -0.5 * torch.exp(-sdf.abs() / beta) + sdf.clamp(max=0) / beta


def interval_optical_depth(sdf0: torch.Tensor, sdf1: torch.Tensor, delta: torch.Tensor, beta: torch.Tensor,
                           eps: float = 1e-6) -> torch.Tensor:
    """Optical depth of a ray interval of length delta over which the SDF goes linearly from sdf0 to sdf1:
    delta * (F(sdf0) - F(sdf1)) / (sdf0 - sdf1), exact for the VolSDF density of a plane (F above).

    The left-endpoint rule sigma(sdf0) * delta jumps when a sample crosses the surface, so once beta is smaller than
    the sample spacing the rendered depth no longer follows the surface smoothly and carries no gradient to its
    position; NeuS (Wang et al. 2021, sec. 3.3) computes its discrete opacity from the SDF at the section ends for
    the same reason. Near-equal ends fall back to the midpoint density (same limit, no 0/0)."""
    ds = sdf0 - sdf1
    close = ds.abs() < eps
    safe = torch.where(close, torch.ones_like(ds), ds)
    exact = (laplace_density_integral(sdf0, beta) - laplace_density_integral(sdf1, beta)) / safe
    mid = laplace_density(0.5 * (sdf0 + sdf1), beta)
    return torch.where(close, mid, exact) * delta


def bias_aware_sdf(sdf: torch.Tensor, cos_view: torch.Tensor, curvature: torch.Tensor, cos_min: float = 0.1,
                   curvature_scale: float = 0.05) -> torch.Tensor:
    """DebSDF's bias-aware SDF-to-density input (Xiao et al. 2023, sec. 3.4; their code, model/ray_sampler.py
    sdf_mapping, uses the exact circle model of eqs. 18-21, this is its planar limit with a fade): along a ray at
    angle theta to the surface normal the SDF changes at rate |cos theta|, so VolSDF's
    density profile is stretched by 1/|cos theta| in ray distance and the rendered depth is biased towards the
    camera on grazing rays (thin parts are seen mostly grazing). Dividing the SDF by |cos theta| makes every ray
    see the profile the normal ray sees. The planar model is wrong where the surface bends (curvature estimated
    from neighbouring samples' normals), so the correction fades out there: c = 1 - (1 - |cos|) exp(-k / k0).
    """
    cos = cos_view.abs().clamp(min=cos_min)
    fade = torch.exp(-curvature.clamp(min=0) * curvature_scale)
    c = 1.0 - (1.0 - cos) * fade
    return sdf / c


class ReconModel(nn.Module):
    """Everything trained: SDF net (with its hash grid), colour net, density."""

    def __init__(self, levels=16, features=2, log2_table=15, base_resolution=16, max_resolution=1024, bound=1.0,
                 sdf_hidden=64, sdf_layers=2, feature_dim=15, color_hidden=64, color_layers=2, init_radius=0.5,
                 inside_out=False, beta=0.1, learned_background=False):
        super().__init__()
        grid = HashGrid(levels, features, log2_table, base_resolution, max_resolution, bound)
        self.sdf_net = SDFNetwork(grid, sdf_hidden, sdf_layers, feature_dim, init_radius, inside_out)
        self.color_net = ColorNetwork(feature_dim, color_hidden, color_layers)
        self.density = LaplaceDensity(beta)
        self.background_net = BackgroundNetwork() if learned_background else None

    @torch.no_grad()
    def sdf(self, points: torch.Tensor, chunk: int = 1 << 16) -> torch.Tensor:
        return torch.cat([self.sdf_net.sdf(points[s:s + chunk]) for s in range(0, points.shape[0], chunk)])
