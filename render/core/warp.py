"""Warps from the unit square to disks, spheres, hemispheres, cones and triangles, with pdfs (torch twin of warp.h)."""

from __future__ import annotations

import math

import torch

INV_PI = 1.0 / math.pi


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(torch.clamp(x, min=0.0))


def square_to_uniform_disk_concentric(u: torch.Tensor) -> torch.Tensor:
    """(N,2) -> (N,2); Shirley-Chiu concentric map in Dave Cline's form (as Mitsuba)."""
    x = 2.0 * u[..., 0] - 1.0
    y = 2.0 * u[..., 1] - 1.0
    is_zero = (x == 0) & (y == 0)
    q13 = x.abs() < y.abs()
    r = torch.where(q13, y, x)
    rp = torch.where(q13, x, y)
    phi = 0.25 * math.pi * rp / r
    phi = torch.where(q13, 0.5 * math.pi - phi, phi)
    phi = torch.where(is_zero, torch.zeros_like(phi), phi)
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi)], -1)


def square_to_uniform_disk_concentric_pdf(p: torch.Tensor) -> torch.Tensor:
    return torch.where((p * p).sum(-1) <= 1.0, INV_PI, 0.0).to(p.dtype)


def square_to_uniform_sphere(u: torch.Tensor) -> torch.Tensor:
    z = 1.0 - 2.0 * u[..., 1]
    r = safe_sqrt(1.0 - z * z)
    phi = 2.0 * math.pi * u[..., 0]
    return torch.stack([r * torch.cos(phi), r * torch.sin(phi), z], -1)


def square_to_uniform_sphere_pdf(v: torch.Tensor) -> torch.Tensor:
    return torch.full(v.shape[:-1], 0.25 / math.pi, dtype=v.dtype, device=v.device)


def square_to_uniform_hemisphere(u: torch.Tensor) -> torch.Tensor:
    p = square_to_uniform_disk_concentric(u)
    z = 1.0 - (p[..., 0] * p[..., 0] + p[..., 1] * p[..., 1])
    s = torch.sqrt(z + 1.0)
    return torch.stack([p[..., 0] * s, p[..., 1] * s, z], -1)


def square_to_uniform_hemisphere_pdf(v: torch.Tensor) -> torch.Tensor:
    return torch.where(v[..., 2] >= 0, 0.5 / math.pi, 0.0).to(v.dtype)


def square_to_cosine_hemisphere(u: torch.Tensor) -> torch.Tensor:
    p = square_to_uniform_disk_concentric(u)
    z = safe_sqrt(1.0 - p[..., 0] * p[..., 0] - p[..., 1] * p[..., 1])
    return torch.stack([p[..., 0], p[..., 1], z], -1)


def square_to_cosine_hemisphere_pdf(v: torch.Tensor) -> torch.Tensor:
    z = v[..., 2]
    return torch.where(z > 0, INV_PI * z, torch.zeros_like(z))


def square_to_uniform_cone(u: torch.Tensor, cos_cutoff: float) -> torch.Tensor:
    one_minus = 1.0 - cos_cutoff
    p = square_to_uniform_disk_concentric(u)
    pn = p[..., 0] * p[..., 0] + p[..., 1] * p[..., 1]
    z = cos_cutoff + one_minus * (1.0 - pn)
    s = safe_sqrt(one_minus * (2.0 - one_minus * pn))
    return torch.stack([p[..., 0] * s, p[..., 1] * s, z], -1)


def square_to_uniform_cone_pdf(v: torch.Tensor, cos_cutoff: float) -> torch.Tensor:
    return torch.where(v[..., 2] >= cos_cutoff, 0.5 / math.pi / (1.0 - cos_cutoff), 0.0).to(v.dtype)


def square_to_uniform_triangle(u: torch.Tensor) -> torch.Tensor:
    t = safe_sqrt(1.0 - u[..., 0])
    return torch.stack([1.0 - t, t * u[..., 1]], -1)


def square_to_uniform_triangle_pdf(p: torch.Tensor) -> torch.Tensor:
    inside = (p[..., 0] >= 0) & (p[..., 1] >= 0) & (p[..., 0] + p[..., 1] <= 1)
    return torch.where(inside, 2.0, 0.0).to(p.dtype)


def coordinate_system(n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tangents (s, t) of unit normals n (N,3): Duff et al. 2017, listing 3 (frame.h)."""
    nx, ny, nz = n.unbind(-1)
    sign = torch.where(nz >= 0, 1.0, -1.0).to(n.dtype)
    a = -1.0 / (sign + nz)
    b = nx * ny * a
    s = torch.stack([1.0 + sign * nx * nx * a, sign * b, -sign * nx], -1)
    t = torch.stack([b, sign + ny * ny * a, -ny], -1)
    return s, t


WARP_KINDS = {"uniform_sphere": 0, "uniform_hemisphere": 1, "cosine_hemisphere": 2, "uniform_cone": 3,
              "uniform_disk_concentric": 4, "uniform_triangle": 5}


def warp_kernel(name: str, u: torch.Tensor, param: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The C++/CUDA warp of warp.h (for tests): u (N,2) float32 -> (points (N,3), pdf (N,)); planar warps z = 0."""
    from ..kernels.build import load

    if name not in WARP_KINDS:
        raise ValueError(f"unknown warp {name!r} (known: {', '.join(WARP_KINDS)})")
    if not isinstance(u, torch.Tensor) or u.dtype != torch.float32 or u.dim() != 2 or u.shape[1] != 2:
        raise ValueError("u: expected a float32 tensor of shape (N, 2)")
    return load().warp_sample(WARP_KINDS[name], u.contiguous(), float(param))
