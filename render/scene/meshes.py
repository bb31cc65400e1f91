"""Triangle meshes for Mitsuba shapes: OBJ (own reader, Mitsuba semantics), PLY (trimesh), rectangle, cube, disk."""

from __future__ import annotations

import math
from pathlib import Path

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
    """Mitsuba's rectangle mesh: [-1,1]^2 at z=0, normal +z, uv = (x+1)/2, (y+1)/2; Mitsuba's vertex order
    and diagonal (faces (1,2,0), (1,3,2))."""
    v = [(-1, -1, 0), (1, -1, 0), (-1, 1, 0), (1, 1, 0)]
    uv = [(0, 0), (1, 0), (0, 1), (1, 1)]
    return Mesh(v, [(1, 2, 0), (1, 3, 2)], [(0, 0, 1)] * 4, uv)


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


def angle_weighted_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Smooth vertex normals as Mitsuba's Mesh::recompute_vertex_normals: face normals weighted by the corner
    angle (Thuermer and Wuethrich 1998), summed per vertex and normalised."""
    v = vertices.astype(np.float64)
    tri = v[faces]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    length = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.where(length > 0, n / np.where(length > 0, length, 1), 0)
    out = np.zeros_like(v)
    for i in range(3):
        d0 = tri[:, (i + 1) % 3] - tri[:, i]
        d1 = tri[:, (i + 2) % 3] - tri[:, i]
        d0 /= np.maximum(np.linalg.norm(d0, axis=1, keepdims=True), 1e-30)
        d1 /= np.maximum(np.linalg.norm(d1, axis=1, keepdims=True), 1e-30)
        angle = np.arccos(np.clip((d0 * d1).sum(axis=1), -1, 1))
        np.add.at(out, faces[:, i], n * angle[:, None])
    length = np.linalg.norm(out, axis=1, keepdims=True)
    return np.where(length > 0, out / np.where(length > 0, length, 1), 0)


def _obj_index(token: str, count: int, lineno: int, what: str) -> int:
    i = int(token)
    i = i - 1 if i > 0 else count + i
    if not 0 <= i < count:
        raise MeshReadError(f"line {lineno}: {what} index {token} out of range (have {count})")
    return i


def read_obj(path: Path, flip_tex_coords: bool) -> Mesh:
    """OBJ as Mitsuba reads it: polygons fan-triangulated, one vertex per distinct (v, vt, vn) triple,
    negative indices relative; other statements (o, g, usemtl, ...) ignored."""
    pos, tex, nor = [], [], []
    keys: dict[tuple, int] = {}
    corners: list[tuple] = []
    faces: list[tuple] = []
    try:
        text = path.read_text(errors="replace")
    except OSError as e:
        raise MeshReadError(f"cannot read OBJ file ({e.strerror})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        tag = parts[0]
        try:
            if tag == "v":
                pos.append([float(x) for x in parts[1:4]])
                if len(pos[-1]) != 3:
                    raise ValueError
            elif tag == "vt":
                tex.append([float(x) for x in (parts[1:3] + ["0"])[:2]])
            elif tag == "vn":
                nor.append([float(x) for x in parts[1:4]])
                if len(nor[-1]) != 3:
                    raise ValueError
            elif tag == "f":
                ids = []
                for corner in parts[1:]:
                    f = corner.split("/")
                    key = (_obj_index(f[0], len(pos), lineno, "vertex"),
                           _obj_index(f[1], len(tex), lineno, "texture") if len(f) > 1 and f[1] else -1,
                           _obj_index(f[2], len(nor), lineno, "normal") if len(f) > 2 and f[2] else -1)
                    if key not in keys:
                        keys[key] = len(corners)
                        corners.append(key)
                    ids.append(keys[key])
                if len(ids) < 3:
                    raise MeshReadError(f"line {lineno}: a face needs at least 3 vertices")
                faces.extend((ids[0], ids[i - 1], ids[i]) for i in range(2, len(ids)))
        except ValueError:
            raise MeshReadError(f"line {lineno}: cannot parse {line.strip()[:40]!r}") from None
    if not faces:
        raise MeshReadError("OBJ file has no triangles")
    c = np.array(corners, dtype=np.int64)
    vertices = np.asarray(pos, dtype=np.float64)[c[:, 0]]
    uvs = normals = None
    if tex and (c[:, 1] >= 0).all():
        uvs = np.asarray(tex, dtype=np.float64)[c[:, 1]]
        if flip_tex_coords:
            uvs[:, 1] = 1.0 - uvs[:, 1]
    if nor and (c[:, 2] >= 0).all():
        normals = np.asarray(nor, dtype=np.float64)[c[:, 2]]
    if not np.isfinite(vertices).all():
        raise MeshReadError("OBJ file has NaN or infinite vertex positions")
    return Mesh(vertices, np.asarray(faces, dtype=np.int64), normals, uvs)


def read_ply(path: Path, flip_tex_coords: bool) -> Mesh:
    """PLY via trimesh (no merging/reordering); normals (nx, ny, nz) and uvs (u/v, s/t, texture_u/v) kept."""
    import logging

    import trimesh

    logging.getLogger("trimesh").setLevel(logging.ERROR)
    try:
        loaded = trimesh.load(str(path), file_type="ply", process=False, force="mesh")
    except Exception as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise MeshReadError(f"could not parse PLY file ({msg})") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0 or len(loaded.vertices) == 0:
        raise MeshReadError("PLY file has no triangles")
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    faces = np.asarray(loaded.faces, dtype=np.int64)
    if not np.isfinite(vertices).all():
        raise MeshReadError("PLY file has NaN or infinite vertex positions")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise MeshReadError("PLY file has face indices outside the vertex list")
    raw = loaded.metadata.get("_ply_raw", {}).get("vertex", {}).get("data", {})
    normals = None
    names = raw.dtype.names or () if isinstance(raw, np.ndarray) else tuple(raw.keys())
    if all(k in names for k in ("nx", "ny", "nz")):
        normals = np.concatenate([np.asarray(raw[k], dtype=np.float64).reshape(-1, 1) for k in ("nx", "ny", "nz")], 1)
        if len(normals) != len(vertices):
            normals = None
    uvs = getattr(loaded.visual, "uv", None)
    if uvs is not None:
        uvs = np.asarray(uvs, dtype=np.float64)
        if len(uvs) != len(vertices):
            uvs = None
        elif flip_tex_coords:
            uvs = np.stack([uvs[:, 0], 1.0 - uvs[:, 1]], axis=1)
    return Mesh(vertices, faces, normals, uvs)


def load_mesh_file(path: Path, kind: str, flip_tex_coords: bool) -> Mesh:
    """Read an obj or ply file; raise MeshReadError (message says why) if it is unusable."""
    return read_obj(path, flip_tex_coords) if kind == "obj" else read_ply(path, flip_tex_coords)
