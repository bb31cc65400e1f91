"""Sphere tracing of signed distance fields: a dense-grid SDF kernel (C++/CUDA) and a pure-torch tracer for any field."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .build import load
from .checks import as_tensor, check_rays
from .grid import check_aabb, clip_ray_to_box_torch, near_far


@dataclass
class TraceResult:
    """Per ray: t of the hit (inf on a miss), hit (bool), steps (int32: number of SDF evaluations)."""

    t: torch.Tensor
    hit: torch.Tensor
    steps: torch.Tensor


def _trilinear(values: torch.Tensor, lo, inv_spacing, points: torch.Tensor) -> torch.Tensor:
    """Twin of `sdf_trilinear` (sdf.h), same float ops in the same order; differentiable in points and values."""
    res = values.shape
    top = torch.tensor([r - 1 for r in res], dtype=torch.float32, device=points.device)
    u = torch.minimum(((points - lo) * inv_spacing).clamp_min(0.0), top)
    c = torch.minimum(torch.floor(u), top - 1.0)
    f = u - c
    i = c.long()
    flat = values.reshape(-1)
    sx, sy = res[1] * res[2], res[2]
    base = i[:, 0] * sx + i[:, 1] * sy + i[:, 2]
    v = lambda offset: flat[base + offset]
    lerp = lambda a, b, t: a + (b - a) * t  # not torch.lerp: its formula differs in the last bits
    fx, fy, fz = f.unbind(1)
    c00 = lerp(v(0), v(sx), fx)
    c10 = lerp(v(sy), v(sx + sy), fx)
    c01 = lerp(v(1), v(sx + 1), fx)
    c11 = lerp(v(sy + 1), v(sx + sy + 1), fx)
    c0 = lerp(c00, c10, fy)
    c1 = lerp(c01, c11, fy)
    return lerp(c0, c1, fz)


class DenseSDF:
    """SDF samples on a regular grid over the box `aabb` = (lo, hi), trilinearly interpolated.

    values: float32 (X, Y, Z), X first: values[i, j, k] is the distance at lo + (i, j, k) * (hi - lo) / (res - 1)
    (samples on the cell corners, faces included; NOT grid_sample's (D, H, W) = (z, y, x) order). Each axis needs
    at least 2 samples. Outside the box the value of the nearest point of the box is returned.
    """

    def __init__(self, values, aabb):
        values = as_tensor(values, "values", torch.float32, (None, None, None))
        if min(values.shape) < 2:
            raise ValueError(f"values: expected at least 2 samples per axis, got shape {tuple(values.shape)}")
        if not torch.isfinite(values).all():
            raise ValueError("values: expected finite values, found NaN or inf")
        aabb = check_aabb(aabb)
        self.values = values
        self.device = values.device
        self.aabb = aabb.to(self.device)
        self.lo, self.hi = self.aabb[:3], self.aabb[3:]
        res = torch.tensor([s - 1 for s in values.shape], dtype=torch.float32)
        self.inv_spacing = (res / (aabb[3:] - aabb[:3])).to(self.device)
        self._box = [float(x) for x in torch.cat([aabb, self.inv_spacing.cpu()])]

    @classmethod
    def from_function(cls, fn: Callable[[torch.Tensor], torch.Tensor], aabb, resolution) -> "DenseSDF":
        """Samples fn(points (M,3)) -> (M,) at the grid corners; resolution is an int or 3 ints (>= 2)."""
        aabb = check_aabb(aabb)
        res = (resolution,) * 3 if isinstance(resolution, int) else tuple(resolution)
        if len(res) != 3 or min(res) < 2:
            raise ValueError(f"resolution: expected an int or 3 ints >= 2, got {resolution!r}")
        axes = [torch.linspace(float(aabb[a]), float(aabb[3 + a]), res[a]) for a in range(3)]
        points = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        return cls(fn(points).reshape(res).float(), aabb)

    def to(self, device) -> "DenseSDF":
        return DenseSDF(self.values.to(device), self.aabb.cpu())

    def query(self, points) -> torch.Tensor:
        """Trilinear SDF (M,) at points (M,3), in torch (differentiable in points and values; any device)."""
        points = as_tensor(points, "points", torch.float32, (None, 3), device=self.device)
        return _trilinear(self.values, self.lo, self.inv_spacing, points)

    def query_kernel(self, points) -> torch.Tensor:
        """Same as `query` through the C++/CUDA kernel (no autograd)."""
        points = as_tensor(points, "points", torch.float32, (None, 3), device=self.device)
        return load().sdf_query(self.values, self._box, points)

    def sphere_trace(self, origins, directions, near=0.0, far=math.inf, max_steps: int = 128, eps: float = 1e-4,
                     step_scale: float = 1.0) -> TraceResult:
        """Sphere tracing through the C++/CUDA kernel; see `sphere_trace_torch` for the definition."""
        o, d, near_t, far_t = _trace_args(origins, directions, near, far, max_steps, eps, step_scale, self.device)
        t, hit, steps = load().sdf_trace(self.values, self._box, o, d, near_t, far_t, int(max_steps), float(eps),
                                         float(step_scale))
        return TraceResult(t, hit, steps)


def _trace_args(origins, directions, near, far, max_steps, eps, step_scale, device):
    check_rays(origins, directions, device)
    if origins.numel() and not (torch.isfinite(origins).all() and torch.isfinite(directions).all()):
        raise ValueError("origins, directions: expected finite values, found NaN or inf")
    if origins.numel() and not (directions != 0).any(-1).all():
        raise ValueError("directions: expected nonzero vectors, got a zero row")
    near_t, far_t = near_far(near, far, origins)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 1 <= max_steps < 2**31:
        raise ValueError(f"max_steps: expected an int >= 1, got {max_steps!r}")
    for name, value, low in (("eps", eps, 0.0), ("step_scale", step_scale, None)):
        try:
            f = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected a number, got {value!r}") from None
        ok = math.isfinite(f) and (f >= low if low is not None else f > 0)
        if not ok:
            raise ValueError(f"{name}: expected a finite number {'>= 0' if low is not None else '> 0'}, got {value!r}")
    return origins.contiguous(), directions.contiguous(), near_t, far_t


@torch.no_grad()
def sphere_trace_torch(fn: Callable[[torch.Tensor], torch.Tensor], origins, directions, near=0.0, far=math.inf,
                       max_steps: int = 128, eps: float = 1e-4, step_scale: float = 1.0, aabb=None) -> TraceResult:
    """Sphere tracing (Hart 1996) of any torch field fn(points (M,3)) -> (M,) signed distances, e.g. a network.

    Per ray: [t_start, t_end] = [near, far], clipped to `aabb` when given (clip_ray_to_box, as the kernels).
    t = t_start; each step evaluates dist = fn(o + t*d); |dist| < eps (absolute, in the field's distance units)
    is a hit at t; otherwise t += step_scale * side * dist / |d|, with side = -1 when the first sample is inside
    (dist < 0) so that rays starting inside march forward to the surface they exit through. A ray leaving
    [t_start, t_end] or running out of max_steps is a miss (t = inf). Only the still-active rays are evaluated
    at each step (compaction), and without autograd: evaluate the field at the hits again for gradients/normals.
    With fn = DenseSDF.query this is the exact twin of DenseSDF.sphere_trace.
    """
    device = origins.device if isinstance(origins, torch.Tensor) else torch.device("cpu")
    o, d, near_t, far_t = _trace_args(origins, directions, near, far, max_steps, eps, step_scale, device)
    n = o.shape[0]
    if aabb is not None:
        box = check_aabb(aabb).to(device)
        t_start, t_end = clip_ray_to_box_torch(o, d, box[:3], box[3:], near_t, far_t)
    else:
        t_start, t_end = near_t, far_t
    eps32 = torch.tensor(float(eps), dtype=torch.float32, device=device)
    # |d| as length() in vec.h: dot() order, then sqrtf. torch.sqrt on float32 is not correctly rounded on every
    # CPU (vectorized approximations); sqrt in float64 rounded to float32 is (53 >= 2 * 24 + 2 bits).
    length = torch.sqrt((d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1] + d[:, 2] * d[:, 2]).double()).float()
    factor = torch.tensor(float(step_scale), dtype=torch.float32, device=device) / length
    t_out = torch.full((n,), math.inf, device=device)
    hit = torch.zeros(n, dtype=torch.bool, device=device)
    steps = torch.zeros(n, dtype=torch.int32, device=device)
    active = torch.nonzero(t_start <= t_end).squeeze(1)
    t = t_start[active]
    for s in range(max_steps):
        if active.numel() == 0:
            break
        dist = fn(o[active] + t[:, None] * d[active])
        if not isinstance(dist, torch.Tensor) or dist.numel() != active.numel():
            got = tuple(dist.shape) if isinstance(dist, torch.Tensor) else type(dist).__name__
            raise ValueError(f"fn: expected a tensor of {active.numel()} distances, got {got}")
        dist = dist.reshape(-1).to(torch.float32)
        steps[active] = s + 1
        done = dist.abs() < eps32
        t_out[active[done]] = t[done]
        hit[active[done]] = True
        if s == 0:
            factor[active] = torch.where(dist < 0, -factor[active], factor[active])
        t = t + factor[active] * dist
        # NaN t keeps going, as `t > t_end || t < t_start` does in sdf.h.
        keep = ~done & ~((t > t_end[active]) | (t < t_start[active]))
        active, t = active[keep], t[keep]
    return TraceResult(t_out, hit, steps)


def sphere_trace(sdf, origins, directions, near=0.0, far=math.inf, max_steps: int = 128, eps: float = 1e-4,
                 step_scale: float = 1.0) -> TraceResult:
    """Sphere tracing of a DenseSDF (C++/CUDA kernel) or of any torch callable (sphere_trace_torch, unclipped)."""
    if isinstance(sdf, DenseSDF):
        return sdf.sphere_trace(origins, directions, near, far, max_steps, eps, step_scale)
    if callable(sdf):
        return sphere_trace_torch(sdf, origins, directions, near, far, max_steps, eps, step_scale)
    raise ValueError(f"sdf: expected a DenseSDF or a callable, got {type(sdf).__name__}")


def sphere_trace_reference(sdf: DenseSDF, origins, directions, near=0.0, far=math.inf, max_steps: int = 128,
                           eps: float = 1e-4, step_scale: float = 1.0) -> TraceResult:
    """Pure-torch twin of DenseSDF.sphere_trace: sphere_trace_torch over the torch trilinear field, clipped the same."""
    return sphere_trace_torch(sdf.query, origins, directions, near, far, max_steps, eps, step_scale, aabb=sdf.aabb)
