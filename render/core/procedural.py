"""Procedural test meshes and ray sets (bumpy blobs on a terrain, camera and diffuse-bounce rays) for tests and benches."""

from __future__ import annotations

import math

import numpy as np


def _grid_faces(rows: int, cols: int, wrap_cols: bool) -> np.ndarray:
    """Two triangles per cell of a rows x cols vertex grid (optionally closed around the columns)."""
    ncols = cols if wrap_cols else cols - 1
    r, c = np.meshgrid(np.arange(rows - 1), np.arange(ncols), indexing="ij")
    a = r * cols + c
    b = r * cols + (c + 1) % cols
    d = (r + 1) * cols + c
    e = (r + 1) * cols + (c + 1) % cols
    return np.concatenate([np.stack([a, d, b], -1).reshape(-1, 3), np.stack([b, d, e], -1).reshape(-1, 3)])


def bumpy_sphere(num_triangles: int, center=(0.0, 0.0, 0.0), radius: float = 1.0, seed: int = 0,
                 roughness: float = 0.12) -> tuple[np.ndarray, np.ndarray]:
    """A closed, displaced UV sphere ("scanned blob") with about `num_triangles` triangles, pole fans included."""
    rng = np.random.default_rng(seed)
    cols = max(8, int(round(math.sqrt(num_triangles))))
    rows = max(3, num_triangles // (2 * cols))  # interior rings
    theta = np.linspace(0, math.pi, rows + 2)[1:-1]
    phi = np.linspace(0, 2 * math.pi, cols, endpoint=False)
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    dirs = np.stack([np.sin(th) * np.cos(ph), np.sin(th) * np.sin(ph), np.cos(th)], -1)
    # Sum of random plane waves on the sphere: smooth, multi-scale bumps like a scan.
    disp = np.zeros(th.shape)
    for octave in range(5):
        freq = 2.0 ** octave * 1.5
        for _ in range(3):
            k = rng.normal(size=3)
            k /= np.linalg.norm(k)
            disp += roughness / (1.6 ** octave) * np.sin(freq * 3 * dirs @ k + rng.uniform(0, 2 * math.pi))
    verts = dirs * (radius * (1 + disp))[..., None]
    verts = verts.reshape(-1, 3)
    faces = _grid_faces(rows, cols, wrap_cols=True)
    top, bottom = len(verts), len(verts) + 1
    ring0 = np.arange(cols)
    last = (rows - 1) * cols
    cap_top = np.stack([np.full(cols, top), ring0, (ring0 + 1) % cols], -1)
    cap_bot = np.stack([np.full(cols, bottom), last + (ring0 + 1) % cols, last + ring0], -1)
    poles = np.array([[0, 0, radius * (1 + disp[0].mean())], [0, 0, -radius * (1 + disp[-1].mean())]])
    verts = np.concatenate([verts, poles]) + np.asarray(center)
    faces = np.concatenate([faces, cap_top, cap_bot])
    return verts.astype(np.float32), faces.astype(np.int32)


def terrain(num_triangles: int, size: float = 6.0, height: float = 0.3, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A rough heightfield on z in roughly [-1.3, -1.0]: the table/ground under the blobs."""
    rng = np.random.default_rng(seed)
    n = max(2, int(round(math.sqrt(num_triangles / 2))) + 1)
    x, y = np.meshgrid(np.linspace(-size / 2, size / 2, n), np.linspace(-size / 2, size / 2, n), indexing="ij")
    z = np.zeros_like(x)
    for octave in range(4):
        f = 2.0 ** octave
        z += height / (2 ** octave) * np.sin(f * x * rng.uniform(0.5, 1.5) + rng.uniform(0, 6)) * np.cos(
            f * y * rng.uniform(0.5, 1.5) + rng.uniform(0, 6))
    verts = np.stack([x, y, z - 1.15], -1).reshape(-1, 3)
    return verts.astype(np.float32), _grid_faces(n, n, wrap_cols=False).astype(np.int32)


def scanned_scene(num_triangles: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three overlapping bumpy blobs on a terrain, about `num_triangles` triangles in all."""
    parts = [terrain(num_triangles // 4, seed=seed + 1)]
    blobs = [((0.0, 0.0, 0.0), 1.0), ((1.4, 0.6, -0.4), 0.6), ((-1.2, -0.9, -0.5), 0.5)]
    for i, (c, r) in enumerate(blobs):
        parts.append(bumpy_sphere(num_triangles // 4, center=c, radius=r, seed=seed + 10 + i))
    verts, faces, off = [], [], 0
    for v, f in parts:
        verts.append(v)
        faces.append(f + off)
        off += len(v)
    return np.concatenate(verts), np.concatenate(faces)


def camera_rays(width: int, height: int, origin=(0.0, -4.5, 1.2), target=(0.0, 0.0, -0.3), fov_deg: float = 50.0):
    """Pinhole camera rays (coherent), row-major, unit directions: (origins, directions) float32."""
    o = np.asarray(origin, np.float64)
    fwd = np.asarray(target, np.float64) - o
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0, 0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, fwd)
    tan = math.tan(math.radians(fov_deg) / 2)
    px = (np.arange(width) + 0.5) / width * 2 - 1
    py = 1 - (np.arange(height) + 0.5) / height * 2
    gx, gy = np.meshgrid(px * tan * width / height, py * tan)
    d = fwd + gx[..., None] * right + gy[..., None] * up
    d /= np.linalg.norm(d, axis=-1, keepdims=True)
    d = d.reshape(-1, 3).astype(np.float32)
    return np.broadcast_to(o.astype(np.float32), d.shape).copy(), d


def bounce_rays(vertices: np.ndarray, faces: np.ndarray, n: int, seed: int = 0, offset: float = 1e-4):
    """Incoherent rays: area-uniform points on the surface, cosine-distributed directions about the face normal."""
    rng = np.random.default_rng(seed)
    tri = vertices[faces].astype(np.float64)
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = np.linalg.norm(cross, axis=1)
    pick = rng.choice(len(faces), size=n, p=area / area.sum())
    r1, r2 = rng.random(n), rng.random(n)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], -1)
    p = (tri[pick] * bary[..., None]).sum(1)
    nrm = cross[pick] / np.maximum(area[pick], 1e-30)[:, None]
    # Cosine hemisphere about the normal (Malley's method) in a Duff et al. 2017 frame.
    u1, u2 = rng.random(n), rng.random(n)
    r, ph = np.sqrt(u1), 2 * math.pi * u2
    local = np.stack([r * np.cos(ph), r * np.sin(ph), np.sqrt(np.maximum(0, 1 - u1))], -1)
    sign = np.where(nrm[:, 2] >= 0, 1.0, -1.0)
    a = -1 / (sign + nrm[:, 2])
    b = nrm[:, 0] * nrm[:, 1] * a
    t = np.stack([1 + sign * nrm[:, 0] ** 2 * a, sign * b, -sign * nrm[:, 0]], -1)
    bt = np.stack([b, sign + nrm[:, 1] ** 2 * a, -nrm[:, 1]], -1)
    d = local[:, :1] * t + local[:, 1:2] * bt + local[:, 2:3] * nrm
    scale = np.abs(vertices).max()
    o = p + nrm * offset * scale
    return o.astype(np.float32), (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32)
