"""Multi-level occupancy grid (instant-ngp cascades, nerfacc-style updates) and packed ray marching, with a torch twin."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .build import load
from .checks import as_tensor, check_rays, ray_bounds

MAX_LEVELS = 16  # kGridMaxLevels in grid.h
_BOX_GROW = 1.00000036  # ray_box's conservative exit factor (vec.h)


def _min_(a, b):
    """`a < b ? a : b` of common.h, including what it does with NaN (returns b)."""
    return torch.where(a < b, a, b)


def _max_(a, b):
    return torch.where(a > b, a, b)


def ray_box_torch(origins, inv_dir, lo, hi, tmin, tmax):
    """Twin of `ray_box` (vec.h): slab test with the same float ops, NaN handling and conservative exit.

    origins, inv_dir (N,3); lo, hi (3,) or (N,3); tmin, tmax (N,). Returns (t0, t1); a miss gives t0 > t1.
    """
    t_lo = (lo - origins) * inv_dir
    t_hi = (hi - origins) * inv_dir
    near, far = _min_(t_lo, t_hi), _max_(t_lo, t_hi)
    grow = torch.tensor(_BOX_GROW, dtype=torch.float32, device=origins.device)
    t0 = _max_(_max_(near[:, 0], near[:, 1]), _max_(near[:, 2], tmin))
    t1 = _min_(_min_(far[:, 0], far[:, 1]) * grow, _min_(far[:, 2] * grow, tmax))
    return t0, t1


def clip_ray_to_box_torch(origins, directions, lo, hi, tmin, tmax):
    """Twin of `clip_ray_to_box` (clip.h): ray_box where zero direction components are decided up front
    (origin outside that slab: miss; inside, faces included: the slab is unbounded). lo, hi (3,)."""
    flat = directions == 0
    outside = flat & ((origins < lo) | (origins > hi))
    lo = torch.where(flat, -math.inf, lo)
    hi = torch.where(flat, math.inf, hi)
    t0, t1 = ray_box_torch(origins, 1.0 / directions, lo, hi, tmin, tmax)
    miss = outside.any(1)
    return torch.where(miss, math.inf, t0), torch.where(miss, -math.inf, t1)


@dataclass
class PackedSamples:
    """Samples of all rays packed in one list, sorted by ray, then by t.

    ray_indices (S,) int64, t_starts / t_ends (S,) float32 (in units of the ray's direction vector),
    packed_info (N,2) int64: (index of the ray's first sample, number of samples) per ray.
    """

    ray_indices: torch.Tensor
    t_starts: torch.Tensor
    t_ends: torch.Tensor
    packed_info: torch.Tensor

    @property
    def num_samples(self) -> int:
        return int(self.ray_indices.shape[0])


def near_far(near, far, origins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ray_bounds (checks.py) under the names these kernels use for tmin / tmax."""
    try:
        return ray_bounds(near, far, origins)
    except ValueError as e:
        message = str(e)
        for old, new in (("tmin:", "near:"), ("tmax:", "far:")):
            if message.startswith(old):
                message = new + message[len(old):]
        raise ValueError(message) from None


def check_aabb(aabb) -> torch.Tensor:
    """(6,) float32 CPU tensor (lo, hi) from a sequence, array or tensor; finite with lo < hi."""
    if isinstance(aabb, (list, tuple)):
        try:
            aabb = torch.tensor(aabb, dtype=torch.float32)
        except (TypeError, ValueError):
            raise ValueError(f"aabb: expected 6 numbers (lo, hi), got {aabb!r}") from None
    aabb = as_tensor(aabb, "aabb", torch.float32, (6,)).cpu()
    if not torch.isfinite(aabb).all() or not (aabb[:3] < aabb[3:]).all():
        raise ValueError(f"aabb: expected finite (lo, hi) with lo < hi, got {aabb.tolist()}")
    return aabb


def _resolution(resolution) -> tuple[int, int, int]:
    if isinstance(resolution, bool):
        raise ValueError(f"resolution: expected an int or 3 ints, got {resolution!r}")
    if isinstance(resolution, int):
        res = (resolution,) * 3
    else:
        try:
            res = tuple(resolution)
        except TypeError:
            raise ValueError(f"resolution: expected an int or 3 ints, got {resolution!r}") from None
        if len(res) != 3 or not all(isinstance(r, int) and not isinstance(r, bool) for r in res):
            raise ValueError(f"resolution: expected an int or 3 ints, got {resolution!r}")
    if not all(1 <= r <= 1 << 20 for r in res):
        raise ValueError(f"resolution: expected values in [1, 2^20], got {res}")
    return res


def _check_positive(value, name: str) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not (math.isfinite(f) and f > 0 and torch.tensor(f, dtype=torch.float32).item() > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")
    return f


class OccupancyGrid:
    """Binary occupancy over `levels` cascades of res[0] x res[1] x res[2] cells (instant-ngp, Mueller et al. 2022).

    Level l covers the box `aabb` = (lo, hi) scaled by 2^l about its center; a point belongs to the finest level
    whose box contains it (boxes are closed; the far face belongs to the last cell). State:
      occs   float32 (levels, X, Y, Z): running occupancy/density estimate per cell (EMA-max, as nerfacc);
      binary uint8   (levels, X, Y, Z): 1 byte per cell, 1 = occupied (no bitfield: simpler, 8x the memory).
    Cell (l, i, j, k) spans level_lo[l] + (i, j, k) / level_scale[l] to the next corner.
    """

    def __init__(self, aabb, resolution=128, levels: int = 1, device="cpu"):
        aabb = check_aabb(aabb)
        if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= MAX_LEVELS:
            raise ValueError(f"levels: expected an int in [1, {MAX_LEVELS}], got {levels!r}")
        self.resolution = _resolution(resolution)
        self.levels = levels
        self.device = torch.device(device)
        lo, hi = aabb[:3], aabb[3:]
        center, half = (lo + hi) * 0.5, (hi - lo) * 0.5
        level_lo, level_hi = [lo], [hi]
        for l in range(1, levels):
            level_lo.append(center - half * 2.0**l)
            level_hi.append(center + half * 2.0**l)
        self.aabb = aabb.to(self.device)
        self.level_lo = torch.stack(level_lo).to(self.device)
        self.level_hi = torch.stack(level_hi).to(self.device)
        res = torch.tensor(self.resolution, dtype=torch.float32, device=self.device)
        self.level_scale = (res / (self.level_hi - self.level_lo)).contiguous()
        shape = (levels, *self.resolution)
        self.occs = torch.zeros(shape, dtype=torch.float32, device=self.device)
        self.binary = torch.zeros(shape, dtype=torch.uint8, device=self.device)

    # --- state ----------------------------------------------------------------------------------------------

    @classmethod
    def from_dense(cls, aabb, occupancy, threshold: float = 0.01, device=None) -> "OccupancyGrid":
        """A grid whose cells are given: occupancy (levels, X, Y, Z) or (X, Y, Z); bool/uint8 is the binary grid,
        float is `occs` (binary = occs > threshold)."""
        occupancy = torch.as_tensor(occupancy)
        if occupancy.dim() == 3:
            occupancy = occupancy[None]
        if occupancy.dim() != 4 or occupancy.numel() == 0:
            raise ValueError(f"occupancy: expected shape (levels, X, Y, Z) or (X, Y, Z), got {tuple(occupancy.shape)}")
        device = occupancy.device if device is None else device
        grid = cls(aabb, tuple(int(s) for s in occupancy.shape[1:]), int(occupancy.shape[0]), device=device)
        if occupancy.dtype in (torch.bool, torch.uint8):
            grid.binary.copy_(occupancy != 0)
            grid.occs.copy_(grid.binary.float())
        elif occupancy.dtype.is_floating_point:
            grid.occs.copy_(occupancy)
            grid.binary.copy_(grid.occs > threshold)
        else:
            raise ValueError(f"occupancy: expected dtype bool, uint8 or float, got {occupancy.dtype}")
        return grid

    def mark_all(self) -> "OccupancyGrid":
        """Every cell occupied (before the first update, so that marching samples everywhere)."""
        self.occs.fill_(1.0)
        self.binary.fill_(1)
        return self

    def to(self, device) -> "OccupancyGrid":
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.device = torch.device(device)
        for name in ("aabb", "level_lo", "level_hi", "level_scale", "occs", "binary"):
            setattr(out, name, getattr(self, name).to(device))
        return out

    def cell_points(self, jitter: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Points (levels * X * Y * Z, 3) in cell order: cell centers, or uniform in each cell with `jitter`."""
        axes = [torch.arange(r, dtype=torch.float32, device=self.device) for r in self.resolution]
        idx = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)  # (X*Y*Z, 3)
        out = []
        for l in range(self.levels):
            if jitter:
                u = torch.rand(idx.shape, generator=generator, device=self.device)
            else:
                u = torch.full_like(idx, 0.5)
            out.append(self.level_lo[l] + (idx + u) / self.level_scale[l])
        return torch.cat(out)

    @torch.no_grad()
    def update(self, occ_eval_fn: Callable[[torch.Tensor], torch.Tensor], threshold: float = 0.01,
               ema_decay: float = 0.95, jitter: bool = True, chunk_size: int = 1 << 18) -> None:
        """One occupancy update as nerfacc's OccGridEstimator (every cell, not nerfacc's sampled subset after warmup).

        occs = max(occs * ema_decay, fn(points)) with points jittered within each cell (or the centers);
        binary = occs > min(threshold, mean(occs)): like nerfacc, the threshold is clamped to the mean so that a
        field with low densities everywhere still keeps its densest cells.
        """
        if not callable(occ_eval_fn):
            raise ValueError(f"occ_eval_fn: expected a callable, got {type(occ_eval_fn).__name__}")
        if not 0.0 <= float(ema_decay) <= 1.0:
            raise ValueError(f"ema_decay: expected a number in [0, 1], got {ema_decay!r}")
        points = self.cell_points(jitter)
        new = []
        for s in range(0, points.shape[0], chunk_size):
            chunk = points[s:s + chunk_size]
            value = occ_eval_fn(chunk)
            if not isinstance(value, torch.Tensor) or value.numel() != chunk.shape[0]:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"occ_eval_fn: expected a tensor of {chunk.shape[0]} values for "
                                 f"{chunk.shape[0]} points, got {got}")
            new.append(value.reshape(-1).to(self.occs))
        new = torch.cat(new).reshape(self.occs.shape)
        self.occs = torch.maximum(self.occs * float(ema_decay), new)
        thresh = torch.clamp(self.occs.mean(), max=float(threshold))
        self.binary = (self.occs > thresh).to(torch.uint8)

    def update_every_n_steps(self, step: int, occ_eval_fn, n: int = 16, **kwargs) -> bool:
        """Training hook as nerfacc's: runs `update` when step % n == 0; returns whether it ran."""
        if step % n != 0:
            return False
        self.update(occ_eval_fn, **kwargs)
        return True

    # --- queries --------------------------------------------------------------------------------------------

    def _locate(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Twin of `locate` (grid.h): finest containing level (-1 outside) and flat cell index, for (M,3) points."""
        res = self.resolution
        level = torch.full(points.shape[:1], -1, dtype=torch.int64, device=points.device)
        flat = torch.zeros_like(level)
        for l in reversed(range(self.levels)):  # finer levels overwrite coarser ones
            inside = ((points >= self.level_lo[l]) & (points <= self.level_hi[l])).all(-1)
            f = torch.floor((points - self.level_lo[l]) * self.level_scale[l])
            hi = torch.tensor([r - 1 for r in res], dtype=torch.float32, device=points.device)
            idx = torch.minimum(f.clamp_min(0.0), hi).long()
            cell = ((l * res[0] + idx[:, 0]) * res[1] + idx[:, 1]) * res[2] + idx[:, 2]
            level = torch.where(inside, l, level)
            flat = torch.where(inside, cell, flat)
        return level, flat

    def query(self, points) -> torch.Tensor:
        """Occupied (bool (M,)) at points (M,3): the cell of the finest level containing each point; outside is empty."""
        points = as_tensor(points, "points", torch.float32, (None, 3), device=self.device)
        level, flat = self._locate(points)
        return (level >= 0) & (self.binary.reshape(-1)[flat] != 0)

    def _march_args(self, origins, directions, near, far, step_size, max_samples):
        check_rays(origins, directions, self.device)
        if origins.numel() and not (torch.isfinite(origins).all() and torch.isfinite(directions).all()):
            raise ValueError("origins, directions: expected finite values, found NaN or inf")
        if origins.numel() and not (directions != 0).any(-1).all():
            raise ValueError("directions: expected nonzero vectors, got a zero row")
        near_t, far_t = near_far(near, far, origins)
        step = _check_positive(step_size, "step_size")
        if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
            raise ValueError(f"max_samples: expected an int >= 1, got {max_samples!r}")
        return origins.contiguous(), directions.contiguous(), near_t, far_t, step

    def march(self, origins, directions, near=0.0, far=math.inf, step_size: float = 1e-2,
              max_samples: int = 1024) -> PackedSamples:
        """Samples [t, t + step_size) of each ray whose midpoints fall in occupied cells (see grid.h, march_ray).

        The ray's [near, far] is clipped to the outermost level's box (t_enter, t_exit); candidate k starts at
        t_enter + k * step_size (float32) and exists while its end is <= t_exit; at most max_samples per ray.
        Directions need not be unit length: t is in units of the direction vector.
        """
        o, d, near_t, far_t, step = self._march_args(origins, directions, near, far, step_size, max_samples)
        out = load().grid_march(self.binary, self.level_lo, self.level_hi, self.level_scale, o, d, near_t, far_t,
                                step, max_samples)
        return PackedSamples(*out)


class OccupancyGridReference(OccupancyGrid):
    """Pure-torch twin of `OccupancyGrid`: `march` enumerates every candidate k (no skipping), for tests."""

    def march(self, origins, directions, near=0.0, far=math.inf, step_size: float = 1e-2,
              max_samples: int = 1024, ray_chunk: int = 1024, k_block: int = 256) -> PackedSamples:
        o, d, near_t, far_t, step = self._march_args(origins, directions, near, far, step_size, max_samples)
        n = o.shape[0]
        step32 = torch.tensor(step, dtype=torch.float32, device=o.device)
        half = step32 * 0.5
        rays, starts, ends = [], [], []
        for s in range(0, n, ray_chunk):
            oc, dc = o[s:s + ray_chunk], d[s:s + ray_chunk]
            t_enter, t_exit = clip_ray_to_box_torch(oc, dc, self.level_lo[-1], self.level_hi[-1],
                                                    near_t[s:s + ray_chunk], far_t[s:s + ray_chunk])
            active = t_enter <= t_exit
            count = torch.zeros(oc.shape[0], dtype=torch.int64, device=o.device)
            ray_ids = torch.arange(s, s + oc.shape[0], device=o.device)
            k0 = 0
            while active.any():
                k = torch.arange(k0, k0 + k_block, device=o.device).float()
                t_start = t_enter[:, None] + k[None, :] * step32
                t_end = t_start + step32
                exists = (t_end <= t_exit[:, None]) & active[:, None]
                p = oc[:, None, :] + (t_start + half)[..., None] * dc[:, None, :]
                occupied = self.query(p.reshape(-1, 3)).reshape(exists.shape)
                keep = exists & occupied
                keep &= (count[:, None] + keep.long().cumsum(1)) <= max_samples
                count += keep.sum(1)
                rr, kk = keep.nonzero(as_tuple=True)
                rays.append(ray_ids[rr])
                starts.append(t_start[rr, kk])
                ends.append(t_end[rr, kk])
                # The existence test is monotone in k, so a ray whose last candidate failed is done.
                active = exists[:, -1] & (count < max_samples)
                k0 += k_block
        if rays:
            ray_indices = torch.cat(rays)
            order = torch.sort(ray_indices, stable=True).indices  # blocks were appended in k order
            ray_indices, t_starts, t_ends = ray_indices[order], torch.cat(starts)[order], torch.cat(ends)[order]
        else:
            ray_indices = torch.zeros(0, dtype=torch.int64, device=o.device)
            t_starts = t_ends = torch.zeros(0, dtype=torch.float32, device=o.device)
        counts = torch.bincount(ray_indices, minlength=n)
        packed_info = torch.stack([torch.cumsum(counts, 0) - counts, counts], 1)
        return PackedSamples(ray_indices, t_starts, t_ends, packed_info)
