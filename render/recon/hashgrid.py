"""Multiresolution hash-grid encoding (Mueller et al. 2022, instant-ngp) with its spatial Jacobian.

The encoding returns, besides the features, their derivative with respect to the input point computed in closed
form from the trilinear weights (instant-ngp's dy/dx), so that SDF normals cost no double backward: both outputs
are linear in the table, and autograd differentiates the eikonal loss through the Jacobian into the table.
Two backends with the same numbers: `kernel` (default), the shared C++/CUDA kernel `cuda/include/radiant/hashgrid.h`
(one fused pass per point and level, forward and a scatter-add backward; 3.7x the torch path for forward +
backward of 30k points on CPU, 2.7x per training step, measured), and
`torch`, the pure-torch reference (first-order torch ops; also used when the points themselves need a gradient).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..kernels.build import load as load_kernels

# instant-ngp's spatial hash primes (eq. 4); the first is 1 so that coarse levels stay coherent in x.
_PRIMES = (1, 2654435761, 805459861)
_PRIMES32 = tuple(p - (1 << 32) if p >= 1 << 31 else p for p in _PRIMES)  # the same low bits, as int32


class HashGrid(nn.Module):
    """L levels of F features each over the cube [-bound, bound]^3; level l has resolution floor(N_min * b^l)
    (instant-ngp eq. 2-3), dense indexing while (res+1)^3 <= T, spatial hash (eq. 4) beyond."""

    def __init__(self, levels: int = 16, features: int = 2, log2_table: int = 15, base_resolution: int = 16,
                 max_resolution: int = 1024, bound: float = 1.0, backend: str = "kernel"):
        super().__init__()
        if backend not in ("kernel", "torch"):
            raise ValueError(f"backend: expected 'kernel' or 'torch', got {backend!r}")
        self.backend = backend
        self.levels, self.features, self.bound = levels, features, float(bound)
        self.table_size = 1 << log2_table
        growth = math.exp((math.log(max_resolution) - math.log(base_resolution)) / max(levels - 1, 1))
        resolutions, sizes, dense = [], [], []
        for l in range(levels):
            res = int(math.floor(base_resolution * growth ** l))
            n_dense = (res + 1) ** 3
            resolutions.append(res)
            dense.append(n_dense <= self.table_size)
            sizes.append(min(n_dense, self.table_size))
        offsets = [0]
        for s in sizes:
            offsets.append(offsets[-1] + s)
        self.register_buffer("resolutions", torch.tensor(resolutions, dtype=torch.float32), persistent=False)
        self.register_buffer("sizes", torch.tensor(sizes, dtype=torch.int64), persistent=False)
        self.register_buffer("offsets", torch.tensor(offsets[:-1], dtype=torch.int64), persistent=False)
        self.register_buffer("offsets32", torch.tensor(offsets[:-1], dtype=torch.int32), persistent=False)
        self.register_buffer("dense", torch.tensor(dense), persistent=False)
        self.register_buffer("dense_u8", torch.tensor(dense, dtype=torch.uint8), persistent=False)
        # instant-ngp initialises the table uniformly in [-1e-4, 1e-4].
        self.table = nn.Parameter(torch.empty(offsets[-1], features).uniform_(-1e-4, 1e-4))

    @property
    def output_dim(self) -> int:
        return self.levels * self.features

    def _axes(self, points: torch.Tensor):
        """Per point, level and axis: the two corner coordinates (M,L,3,2) int32 and frac (M,L,3)."""
        x = (points.clamp(-self.bound, self.bound) + self.bound) / (2 * self.bound)  # (M,3) in [0,1]
        scaled = x[:, None, :] * self.resolutions[None, :, None]  # (M,L,3)
        cell = torch.floor(scaled).clamp_max(self.resolutions[None, :, None] - 1)
        frac = scaled - cell
        lo = cell.to(torch.int32)
        return torch.stack([lo, lo + 1], -1), frac

    def corner_indices(self, points: torch.Tensor):
        """Flat table indices (M,L,8) of the 8 cell corners (corner c = 4 dx + 2 dy + dz) and frac (M,L,3).

        Separable: per-axis terms on (M,L,2) tensors, combined by broadcasting to the 8 corners. The hash is
        computed in int32 with wrap-around: T is a power of two, so the low bits of (x p1) ^ (y p2) ^ (z p3) are
        the same as with unbounded integers (instant-ngp eq. 4 uses uint32 arithmetic too)."""
        corners, frac = self._axes(points)
        cx, cy, cz = corners[:, :, 0], corners[:, :, 1], corners[:, :, 2]  # (M,L,2)
        r1 = (self.resolutions.to(torch.int32) + 1)[None, :, None]
        dense = (cx * (r1 * r1))[..., :, None, None] + (cy * r1)[..., None, :, None] + cz[..., None, None, :]
        hashed = ((cx * _PRIMES32[0])[..., :, None, None] ^ (cy * _PRIMES32[1])[..., None, :, None]
                  ^ (cz * _PRIMES32[2])[..., None, None, :]) & (self.table_size - 1)
        idx = torch.where(self.dense[None, :, None, None, None], dense, hashed).reshape(*cx.shape[:2], 8)
        return idx + self.offsets32[None, :, None], frac

    def forward(self, points: torch.Tensor, with_jacobian: bool = True):
        """features (M, L*F) and, with_jacobian, d features / d points (M, L*F, 3)."""
        if (self.backend == "kernel" and not points.requires_grad and self.features <= 8
                and self.table.dtype == torch.float32 and points.dtype == torch.float32):
            feats, jac = _HashGridKernel.apply(self.table, points.contiguous(), self, with_jacobian)
            return feats, (jac if with_jacobian else None)
        return self.forward_torch(points, with_jacobian)

    def kernel_args(self):
        return (self.resolutions, self.offsets32, self.dense_u8, self.table_size, self.bound)

    def forward_torch(self, points: torch.Tensor, with_jacobian: bool = True):
        """The pure-torch path of `forward` (the kernel's reference)."""
        idx, frac = self.corner_indices(points)
        m = points.shape[0]
        values = self.table[idx.reshape(-1).long()].reshape(m, self.levels, 8, self.features)  # (M,L,8,F)
        w1 = torch.stack([1 - frac, frac], -1)  # (M,L,3,2): 1D linear weights per axis
        wx, wy, wz = w1[:, :, 0], w1[:, :, 1], w1[:, :, 2]
        wxy = wx[..., :, None] * wy[..., None, :]  # (M,L,2,2)
        weights = (wxy[..., None] * wz[..., None, None, :]).reshape(m, self.levels, 8)
        feats = torch.einsum("mlc,mlcf->mlf", weights, values).reshape(m, -1)
        if not with_jacobian:
            return feats, None
        # d/dx of the trilinear weights: the derivative of the 1D weights is (-1, +1) times d frac / d x.
        scale = (self.resolutions / (2 * self.bound))[None, :, None]
        d1 = torch.tensor([-1.0, 1.0], device=points.device, dtype=points.dtype)
        ds = d1 * scale  # (1,L,2)
        wyz = wy[..., :, None] * wz[..., None, :]
        dwx = (ds[..., :, None, None] * wyz[..., None, :, :]).reshape(m, self.levels, 8)
        dwy = (wx[..., :, None, None] * (ds[..., :, None] * wz[..., None, :])[..., None, :, :]).reshape(m, self.levels, 8)
        dwz = (wxy[..., None] * ds[..., None, None, :]).reshape(m, self.levels, 8)
        dw = torch.stack([dwx, dwy, dwz], -1)  # (M,L,8,3)
        inside = (points.abs() <= self.bound).to(points.dtype)  # clamped coordinates have no derivative
        jac = torch.einsum("mlcf,mlck->mlfk", values, dw).reshape(m, -1, 3) * inside[:, None, :]
        return feats, jac


class _HashGridKernel(torch.autograd.Function):
    """The C++/CUDA encoding as an autograd op: gradients flow to the table only (points are data)."""

    @staticmethod
    def forward(ctx, table, points, grid: HashGrid, with_jacobian: bool):
        feats, jac = load_kernels().hashgrid_forward(table.detach().contiguous(), *grid.kernel_args(), points,
                                                     with_jacobian)
        ctx.grid = grid
        ctx.save_for_backward(table, points)
        return feats, jac

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_feats, grad_jac):
        table, points = ctx.saved_tensors
        if not ctx.needs_input_grad[0]:
            return None, None, None, None
        gf = grad_feats.contiguous() if grad_feats is not None else None
        gj = grad_jac.contiguous() if grad_jac is not None and grad_jac.numel() else None
        grad_table = load_kernels().hashgrid_backward(table.detach().contiguous(), *ctx.grid.kernel_args(), points,
                                                      gf, gj)
        return grad_table, None, None, None


def hashgrid_reference(grid: HashGrid, points: torch.Tensor) -> torch.Tensor:
    """Brute-force twin of HashGrid.forward for tests: per point, level and corner, a Python loop over the
    textbook definition (instant-ngp eq. 2-4, trilinear interpolation). Differentiable in the table and points."""
    out = []
    for p in points:
        feats = []
        for l in range(grid.levels):
            res = int(grid.resolutions[l])
            x = ((p.clamp(-grid.bound, grid.bound) + grid.bound) / (2 * grid.bound)) * res
            base = [min(int(math.floor(float(x[k]))), res - 1) for k in range(3)]
            acc = torch.zeros(grid.features, dtype=points.dtype)
            for dx in (0, 1):
                for dy in (0, 1):
                    for dz in (0, 1):
                        c = (base[0] + dx, base[1] + dy, base[2] + dz)
                        if bool(grid.dense[l]):
                            index = (c[0] * (res + 1) + c[1]) * (res + 1) + c[2]
                        else:
                            index = ((c[0] * _PRIMES[0]) ^ (c[1] * _PRIMES[1]) ^ (c[2] * _PRIMES[2])) % grid.table_size
                        w = 1.0
                        for k, o in enumerate((dx, dy, dz)):
                            f = x[k] - base[k]
                            w = w * (f if o else 1 - f)
                        acc = acc + w * grid.table[int(grid.offsets[l]) + index]
            feats.append(acc)
        out.append(torch.cat(feats))
    return torch.stack(out)
