"""Texture lookups in torch with Mitsuba's conventions: bitmap (bilinear/nearest, repeat/mirror/clamp) and checkerboard."""

from __future__ import annotations

import numpy as np
import torch

from .scene.types import Texture


class TextureTable:
    """A scene's textures on a device, evaluated at (N,2) uvs to (N,C) linear values."""

    def __init__(self, textures: list[Texture], device):
        self.device = torch.device(device)
        self.textures = textures
        self.images = [torch.from_numpy(np.ascontiguousarray(t.image, np.float32)).to(self.device)
                       if t.image is not None else None for t in textures]
        self.to_uv = [torch.tensor(t.to_uv, dtype=torch.float32, device=self.device) for t in textures]

    def eval(self, index: int, uv: torch.Tensor) -> torch.Tensor:
        t = self.textures[index]
        m = self.to_uv[index]
        uv = uv @ m[:2, :2].T + m[:2, 2]
        if t.type == "checkerboard":
            # Mitsuba checkerboard.cpp: color0 where both fractional coordinates are on the same side of 0.5.
            frac = uv - torch.floor(uv)
            same = (frac[:, 0] > 0.5) == (frac[:, 1] > 0.5)
            c0 = torch.as_tensor(np.broadcast_to(np.asarray(t.params["color0"], np.float32), (3,)).copy(),
                                 device=self.device)
            c1 = torch.as_tensor(np.broadcast_to(np.asarray(t.params["color1"], np.float32), (3,)).copy(),
                                 device=self.device)
            return torch.where(same[:, None], c0, c1)
        img = self.images[index]
        h, w, c = img.shape
        wrap = t.params.get("wrap_mode", "repeat")
        filt = t.params.get("filter_type", "bilinear")
        # Mitsuba's Texture2D: texel centers at (i + 0.5) / res, row 0 at v = 0.
        x = uv[:, 0] * w
        y = uv[:, 1] * h
        if filt == "nearest":
            xi, yi = _wrap(torch.floor(x).long(), w, wrap), _wrap(torch.floor(y).long(), h, wrap)
            out = img[yi, xi]
        else:
            x, y = x - 0.5, y - 0.5
            x0, y0 = torch.floor(x), torch.floor(y)
            fx, fy = (x - x0)[:, None], (y - y0)[:, None]
            x0, y0 = x0.long(), y0.long()
            xa, xb = _wrap(x0, w, wrap), _wrap(x0 + 1, w, wrap)
            ya, yb = _wrap(y0, h, wrap), _wrap(y0 + 1, h, wrap)
            out = ((img[ya, xa] * (1 - fx) + img[ya, xb] * fx) * (1 - fy)
                   + (img[yb, xa] * (1 - fx) + img[yb, xb] * fx) * fy)
        return out.expand(-1, 3) if c == 1 else out


def _wrap(i: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    if mode == "clamp":
        return i.clamp(0, n - 1)
    if mode == "mirror":
        period = torch.remainder(i, 2 * n)
        return torch.where(period >= n, 2 * n - 1 - period, period)
    return torch.remainder(i, n)
