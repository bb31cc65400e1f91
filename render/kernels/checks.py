"""Argument checks shared by the kernel wrappers: a clear ValueError naming the argument, never a crash."""

from __future__ import annotations

import math

import numpy as np
import torch


def as_tensor(x, name: str, dtype: torch.dtype, shape: tuple, *, empty_shape=None, integer: bool = False,
              device=None) -> torch.Tensor:
    """Converts numpy arrays / tensors to a contiguous tensor of `dtype`, checking the shape pattern.

    `shape` uses None for a free dimension. Integer inputs (`integer=True`) accept any integer dtype; float inputs
    must already be float32 or float64 (no silent cast from ints or bools). None gives an empty tensor of
    `empty_shape` when that is given.
    """
    if x is None:
        if empty_shape is None:
            raise ValueError(f"{name}: expected a tensor, got None")
        return torch.zeros(empty_shape, dtype=dtype, device=device)
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor or numpy array, got {type(x).__name__}")
    if integer:
        if x.dtype.is_floating_point or x.dtype == torch.bool or x.dtype.is_complex:
            raise ValueError(f"{name}: expected an integer dtype, got {x.dtype}")
    elif x.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{name}: expected dtype float32, got {x.dtype}")
    if x.dim() != len(shape) or any(s is not None and x.shape[i] != s for i, s in enumerate(shape)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
    if device is not None and x.device != torch.device(device):
        raise ValueError(f"{name}: expected device {device}, got {x.device}")
    return x.to(dtype).contiguous()


def _same_device(a: torch.device, b: torch.device) -> bool:
    a, b = torch.device(a), torch.device(b)
    return a.type == b.type and (a.index is None or b.index is None or a.index == b.index)


def check_rays(origins, directions, device) -> None:
    """origins and directions: float32 tensors of shape (N,3) on `device`."""
    for name, x in (("origins", origins), ("directions", directions)):
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
        if x.dtype != torch.float32:
            raise ValueError(f"{name}: expected dtype float32, got {x.dtype}")
        if x.dim() != 2 or x.shape[1] != 3:
            raise ValueError(f"{name}: expected shape (N, 3), got {tuple(x.shape)}")
        if not _same_device(x.device, device):
            raise ValueError(f"{name}: expected device {device} (where the structure lives), got {x.device}")
    if origins.shape[0] != directions.shape[0]:
        raise ValueError(f"directions: expected {origins.shape[0]} rows like origins, got {directions.shape[0]}")


def ray_bounds(tmin, tmax, origins: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-ray float32 (N,) tmin/tmax from scalars or tensors on the rays' device."""
    n = origins.shape[0]
    out = []
    for name, v in (("tmin", tmin), ("tmax", tmax)):
        if isinstance(v, torch.Tensor):
            if v.dtype != torch.float32:
                raise ValueError(f"{name}: expected dtype float32, got {v.dtype}")
            if v.dim() == 0:
                v = v.expand(n)
            if v.shape != (n,):
                raise ValueError(f"{name}: expected a scalar or shape ({n},), got {tuple(v.shape)}")
            if v.device != origins.device:
                raise ValueError(f"{name}: expected device {origins.device}, got {v.device}")
            out.append(v.contiguous())
        else:
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"{name}: expected a number or a tensor, got {v!r}") from None
            if math.isnan(f):
                raise ValueError(f"{name}: expected a number, got NaN")
            out.append(torch.full((n,), f, dtype=torch.float32, device=origins.device))
    return out[0], out[1]
