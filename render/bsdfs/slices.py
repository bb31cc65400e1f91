"""BRDF slices of a TorchBSDF for plots: f(wi, wo) |cos wo| over the hemisphere of wo, as a disk image."""

from __future__ import annotations

import math

import numpy as np
import torch


def hemisphere_disk(res: int, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """(dirs (res*res, 3), inside (res*res,)) for a res x res image of the unit disk: pixel (x, y) -> wo with
    (wo.x, wo.y) at the pixel centre (orthographic view from above; +x right, +y up) and wo.z = sqrt(1 - r^2)."""
    t = (torch.arange(res, device=device, dtype=torch.float32) + 0.5) / res * 2 - 1
    y, x = torch.meshgrid(-t, t, indexing="ij")
    r2 = x * x + y * y
    inside = (r2 < 1).reshape(-1)
    z = torch.sqrt((1 - r2).clamp_min(0))
    return torch.stack([x, y, z], -1).reshape(-1, 3), inside


def direction(theta_deg: float, phi_deg: float = 0.0) -> torch.Tensor:
    t, p = math.radians(theta_deg), math.radians(phi_deg)
    return torch.tensor([math.sin(t) * math.cos(p), math.sin(t) * math.sin(p), math.cos(t)], dtype=torch.float32)


def brdf_slice(bsdf, theta_i_deg: float, uv=(0.5, 0.5), res: int = 64, phi_i_deg: float = 0.0, device="cpu",
               **eval_kwargs) -> np.ndarray:
    """(res, res, 3) image of bsdf.eval(uv, wi, wo) (f |cos wo|) over wo in the upper hemisphere (disk image;
    outside the disk 0) for wi at (theta_i, phi_i). eval_kwargs go to eval (e.g. n_samples for the layered)."""
    wo, inside = hemisphere_disk(res, device)
    n = len(wo)
    wi = direction(theta_i_deg, phi_i_deg).to(device).expand(n, 3)
    uv_t = torch.tensor(uv, dtype=torch.float32, device=device).expand(n, 2)
    with torch.no_grad():
        value = bsdf.eval(uv_t, wi, wo, **eval_kwargs)
    value = torch.where(inside[:, None], value, 0.0)
    return value.reshape(res, res, 3).cpu().numpy()
