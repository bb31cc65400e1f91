"""Triangle meshes for Mitsuba's mesh-like shapes: obj/ply files (trimesh), rectangle, cube, tessellated disk."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from . import mitsuba_tables
from .transforms import transform_normals, transform_points

DISK_SEGMENTS = 128  # Mitsuba's disk is analytic; we tessellate (area error 0.04%), see tessellated_disk.


class MeshReadError(Exception):
    """The mesh file could not be parsed or has no triangles; the message says why."""


class Mesh:
    """Object-space triangles: vertices (V,3), faces (F,3), optional normals (V,3) and uvs (V,2)."""

    def __init__(self, vertices, faces, normals=None, uvs=None):
        self.vertices = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
        self.faces = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
        self.normals = None if normals is None else np.asarray(normals, dtype=np.float64).reshape(-1, 3)
        self.uvs = None if uvs is None else np.asarray(uvs, dtype=np.float64).reshape(-1, 2)

    def to_world(self, m: np.ndarray):
        """(vertices f32, faces i32, normals f32 | None, uvs f32 | None) after the object-to-world matrix m."""
        v = transform_points(m, self.vertices).astype(np.float32)
        n = None if self.normals is None else transform_normals(m, self.normals).astype(np.float32)
        uv = None if self.uvs is None else self.uvs.astype(np.float32)
        return v, self.faces.astype(np.int32), n, uv


def rectangle() -> Mesh:
    """Mitsuba's rectangle: [-1,1]^2 at z=0, normal +z, uv = (x+1)/2, (y+1)/2."""
    v = [(-1, -1, 0), (1, -1, 0), (1, 1, 0), (-1, 1, 0)]
    uv = [(0, 0), (1, 0), (1, 1), (0, 1)]
    return Mesh(v, [(0, 1, 2), (0, 2, 3)], [(0, 0, 1)] * 4, uv)


def cube() -> Mesh:
    """Mitsuba's cube mesh: [-1,1]^3, 24 vertices (flat normals), 12 triangles, copied from Mitsuba itself."""
    t = mitsuba_tables
    return Mesh(t.CUBE_VERTICES, t.CUBE_FACES, t.CUBE_NORMALS, t.CUBE_UVS)


def tessellated_disk(segments: int = DISK_SEGMENTS) -> Mesh:
    """Radius-1 disk at z=0 facing +z as a triangle fan; uv = (r, phi / 2pi) like Mitsuba's analytic disk.

    The rim vertices lie on the unit circle, so the fan is slightly smaller than the disk (area ratio
    sin(2pi/n) n / 2pi). The seam vertex is duplicated so v runs 0..1 without wrapping.
    """
    phi = np.linspace(0.0, 2 * math.pi, segments + 1)
    ring = np.stack([np.cos(phi), np.sin(phi), np.zeros_like(phi)], axis=1)
    v = np.concatenate([np.zeros((1, 3)), ring])
    uv = np.concatenate([np.zeros((1, 2)), np.stack([np.ones_like(phi), phi / (2 * math.pi)], axis=1)])
    idx = np.arange(1, segments + 1)
    faces = np.stack([np.zeros(segments, dtype=np.int64), idx, idx + 1], axis=1)
    return Mesh(v, faces, np.tile([0.0, 0.0, 1.0], (len(v), 1)), uv)


def _file_has_normals(path: Path, kind: str) -> bool:
    with open(path, "rb") as f:
        head = f.read(1 << 20)
    if kind == "obj":
        return b"\nvn " in head or head.startswith(b"vn ")
    end = head.find(b"end_header")
    return b" nx" in head[:end if end >= 0 else len(head)]


def load_mesh_file(path: Path, kind: str, flip_tex_coords: bool) -> Mesh:
    """Read an obj or ply file with trimesh (no merging/reordering); raise MeshReadError if unusable."""
    import logging

    import trimesh

    logging.getLogger("trimesh").setLevel(logging.ERROR)
    try:
        loaded = trimesh.load(str(path), file_type=kind, process=False, force="mesh", skip_materials=True)
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MeshReadError(f"could not parse {kind.upper()} file ({msg})") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0 or len(loaded.vertices) == 0:
        raise MeshReadError(f"{kind.upper()} file has no triangles")
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    faces = np.asarray(loaded.faces, dtype=np.int64)
    if not np.isfinite(vertices).all():
        raise MeshReadError(f"{kind.upper()} file has NaN or infinite vertex positions")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise MeshReadError(f"{kind.upper()} file has face indices outside the vertex list")
    normals: Optional[np.ndarray] = None
    if _file_has_normals(path, kind):
        normals = np.asarray(loaded.vertex_normals, dtype=np.float64)
    uvs = getattr(loaded.visual, "uv", None)
    if uvs is not None:
        uvs = np.asarray(uvs, dtype=np.float64)
        if len(uvs) != len(vertices):
            uvs = None
        elif flip_tex_coords:
            uvs = np.stack([uvs[:, 0], 1.0 - uvs[:, 1]], axis=1)
    return Mesh(vertices, faces, normals, uvs)
