"""Mesh extraction: marching cubes (scikit-image) of the SDF, culled to the cameras' view, in world units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import UserError


def _marching_cubes():
    try:
        from skimage.measure import marching_cubes
    except ImportError:
        raise UserError("mesh extraction needs scikit-image: pip install 'radiant[recon]'") from None
    return marching_cubes


@torch.no_grad()
def sdf_lattice(sdf_fn, resolution: int, bound: float = 1.0, chunk: int = 1 << 16, coarse_factor: int = 4):
    """The SDF on a resolution^3 lattice over [-bound, bound]^3, evaluated exactly only near the surface.

    A lattice `coarse_factor` times coarser is evaluated first and trilinearly upsampled; fine points whose
    upsampled |sdf| exceeds 1.5 coarse cell diagonals keep that value (the surface is not there, and the sign is
    right), the others are evaluated by sdf_fn. resolution - 1 is rounded down to a multiple of coarse_factor."""
    f = coarse_factor
    resolution = max(f * ((resolution - 1) // f) + 1, f + 1)
    rc = (resolution - 1) // f + 1
    axis_c = torch.linspace(-bound, bound, rc)
    pts_c = torch.stack(torch.meshgrid(axis_c, axis_c, axis_c, indexing="ij"), -1).reshape(-1, 3)
    coarse = torch.cat([sdf_fn(pts_c[s:s + chunk]) for s in range(0, pts_c.shape[0], chunk)]).reshape(rc, rc, rc)
    volume = torch.nn.functional.interpolate(coarse[None, None], size=(resolution,) * 3, mode="trilinear",
                                             align_corners=True)[0, 0]
    band = 1.5 * (3 ** 0.5) * 2 * bound / (rc - 1)
    near = (volume.abs() < band).nonzero()
    spacing = 2 * bound / (resolution - 1)
    for s in range(0, near.shape[0], chunk):
        idx = near[s:s + chunk]
        volume[idx[:, 0], idx[:, 1], idx[:, 2]] = sdf_fn(idx.float() * spacing - bound)
    return volume.numpy(), spacing


def extract_mesh(sdf_fn, resolution: int = 256, bound: float = 1.0):
    """Vertices (V,3) float64 in normalized space and faces (F,3) of the zero level set of sdf_fn."""
    volume, spacing = sdf_lattice(sdf_fn, resolution, bound)
    if not (volume.min() < 0 < volume.max()):
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    verts, faces, _, _ = _marching_cubes()(volume, level=0.0, spacing=(spacing,) * 3)
    return verts.astype(np.float64) - bound, faces.astype(np.int64)


def cull_to_cameras(verts: np.ndarray, faces: np.ndarray, dataset, margin: float = 0.0) -> tuple:
    """Keeps faces with a vertex in front of and inside the image of at least one camera (Nice-SLAM-style
    frustum culling; normalized space, OpenCV cameras); drops unreferenced vertices."""
    if faces.shape[0] == 0:
        return verts, faces
    visible = np.zeros(verts.shape[0], dtype=bool)
    c2w = dataset.cam_to_world.double().cpu().numpy()
    K = dataset.intrinsics.double().cpu().numpy()
    h, w = dataset.height, dataset.width
    for i in range(c2w.shape[0]):
        R, t = c2w[i, :3, :3], c2w[i, :3, 3]
        cam = (verts - t) @ R  # world -> camera (R orthonormal)
        z = cam[:, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = K[i, 0, 0] * cam[:, 0] / z + K[i, 0, 2]
            v = K[i, 1, 1] * cam[:, 1] / z + K[i, 1, 2]
        visible |= (z > 1e-4) & (u >= -margin) & (u <= w + margin) & (v >= -margin) & (v <= h + margin)
    keep = visible[faces].any(1)
    faces = faces[keep]
    used = np.unique(faces)
    remap = np.full(verts.shape[0], -1, dtype=np.int64)
    remap[used] = np.arange(used.shape[0])
    return verts[used], remap[faces]


def to_world(verts: np.ndarray, normalization: torch.Tensor) -> np.ndarray:
    """world = M @ [x, 1] with the dataset's normalized->world matrix."""
    M = normalization.double().cpu().numpy()
    homo = np.concatenate([verts, np.ones((verts.shape[0], 1))], 1)
    return (homo @ M.T)[:, :3]


def write_ply(path: Path, verts: np.ndarray, faces: np.ndarray) -> None:
    """Binary PLY via trimesh, atomically (temp + rename)."""
    import trimesh

    from ..core.image import _write_atomically

    data = trimesh.Trimesh(vertices=verts, faces=faces, process=False).export(file_type="ply")
    _write_atomically(Path(path), lambda tmp: tmp.write_bytes(data))


def export_mesh(model, dataset, path: Path, resolution: int = 256) -> dict:
    dev = next(model.parameters()).device  # the lattice is built on the CPU; the field may live on the GPU
    verts, faces = extract_mesh(lambda p: model.sdf(p.to(dev)).cpu(), resolution)
    verts, faces = cull_to_cameras(verts, faces, dataset)
    world = to_world(verts, dataset.normalization)
    write_ply(Path(path), world, faces)
    return {"vertices": int(world.shape[0]), "faces": int(faces.shape[0])}
