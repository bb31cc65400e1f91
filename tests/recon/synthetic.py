"""Tiny analytic datasets for the reconstruction-method tests: a sphere (object) or a box room, ray cast in torch
with Lambertian shading and a texture, with GT depth (under a per-image scale/shift) and normal priors."""

from __future__ import annotations

import math
import torch

from render.recon.dataset import ReconDataset


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> torch.Tensor:
    eye, target, up = (torch.tensor(v, dtype=torch.float32) for v in (eye, target, up))
    z = torch.nn.functional.normalize(target - eye, dim=0)
    x = torch.nn.functional.normalize(torch.linalg.cross(z, up), dim=0)  # OpenCV: x right, y down, z forward
    y = torch.linalg.cross(z, x)
    m = torch.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = x, y, z, eye
    return m


def _sphere_hit(o, d, radius):
    b = (o * d).sum(-1)
    c = (o * o).sum(-1) - radius ** 2
    disc = b * b - c
    t = -b - torch.sqrt(disc.clamp(min=0))
    hit = (disc > 0) & (t > 0)
    p = o + t[:, None] * d
    return torch.where(hit, t, torch.inf), p / radius


def _room_hit(o, d, half):
    """Inside of the box [-half, half]^3: exit distance and inward normal."""
    t_axis = torch.where(d > 0, (half - o) / d, (-half - o) / d)
    t, axis = t_axis.min(-1)
    n = torch.zeros_like(o)
    n.scatter_(1, axis[:, None], -torch.sign(d.gather(1, axis[:, None])))
    return t, n


def make_dataset(kind: str = "sphere", views: int = 16, width: int = 48, height: int = 36, radius: float = 0.4,
                 room_half: float = 0.7, scale: float = 2.0, center=(0.1, 0.0, 0.05)) -> ReconDataset:
    """kind 'sphere': a textured sphere of `radius` seen from a ring of cameras; 'room': a box room with a
    pillar, seen from inside. normalization maps normalized -> world by x_world = scale * x."""
    f = 0.9 * width
    K = torch.tensor([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=torch.float32)
    poses = []
    for i in range(views):
        a = 2 * math.pi * i / views
        if kind == "sphere":
            eye = (1.8 * math.cos(a), 1.8 * math.sin(a), 0.6 * math.sin(3 * a))
            poses.append(look_at(eye, (0.0, 0.0, 0.0)))
        else:
            eye = (0.25 * math.cos(a), 0.25 * math.sin(a), 0.1 * math.sin(2 * a))
            target = (eye[0] + math.cos(a + 1.2), eye[1] + math.sin(a + 1.2), -0.2)
            poses.append(look_at(eye, target))
    c2w = torch.stack(poses)
    ds = ReconDataset(torch.zeros(views, height, width, 3), K.expand(views, 3, 3).clone(), c2w, None, None, None,
                          torch.diag(torch.tensor([scale, scale, scale, 1.0], dtype=torch.float64)),
                          [f"{i:06d}" for i in range(views)])
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    pix = torch.stack([xs.reshape(-1) + 0.5, ys.reshape(-1) + 0.5], -1).float()
    images, depths, normals, masks = [], [], [], []
    light = torch.nn.functional.normalize(torch.tensor([0.4, 0.3, 0.85]), dim=0)
    for i in range(views):
        o, d = ds.rays(torch.full((pix.shape[0],), i), pix)
        if kind == "sphere":
            t, n = _sphere_hit(o - torch.tensor(center), d, radius)
        else:
            t, n = _room_hit(o, d, room_half)
            # A pillar (sphere) in the room's corner.
            t2, n2 = _sphere_hit(o - torch.tensor([0.35, -0.35, -0.3]), d, 0.2)
            closer = t2 < t
            t, n = torch.where(closer, t2, t), torch.where(closer[:, None], n2, n)
        hit = torch.isfinite(t)
        p = o + torch.where(hit, t, 0)[:, None] * d
        checker = ((torch.floor(p * 6).sum(-1) % 2) * 0.4 + 0.5)[:, None]
        albedo = checker * torch.tensor([0.9, 0.7, 0.5])
        shade = 0.25 + 0.75 * (n * light).sum(-1).abs()[:, None]
        rgb = torch.where(hit[:, None], albedo * shade, torch.zeros(3))
        z = torch.where(hit, t * (d @ c2w[i, :3, 2]), 0.0)
        n_cam = n @ c2w[i, :3, :3]
        images.append(rgb.reshape(height, width, 3))
        depths.append((z * (1.5 + 0.1 * i) + 0.3).reshape(height, width))  # affine-ambiguous like a mono prior
        normals.append(torch.where(hit[:, None], n_cam, torch.tensor([0.0, 0.0, -1.0])).reshape(height, width, 3))
        masks.append(hit.reshape(height, width))
    ds.images, ds.depths, ds.normals = torch.stack(images).clamp(0, 1), torch.stack(depths), torch.stack(normals)
    ds.masks = torch.stack(masks) if kind == "sphere" else None
    return ds


def sphere_points(n: int = 20000, radius: float = 0.4, scale: float = 2.0, center=(0.1, 0.0, 0.05)) -> torch.Tensor:
    """Points on the GT sphere in world units."""
    p = torch.nn.functional.normalize(torch.randn(n, 3, dtype=torch.float64), dim=-1)
    return (p * radius + torch.tensor(center, dtype=torch.float64)) * scale
