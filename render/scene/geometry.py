"""All of a scene's primitives in flat arrays, in the order the BVH numbers them (triangles, then spheres)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import Scene


@dataclass
class SceneGeometry:
    """Concatenated geometry: vertices/normals/uvs (V,·) float32, faces (F,3) int32 into them, spheres (S,4)
    float32 (center, radius), and prim_shape (F+S,) int32: the index into scene.shapes of each primitive id
    as render.kernels.bvh numbers them (faces first, then spheres). Shapes without normals (face_normals)
    or uvs get zeros there; has_normals / has_uvs per shape say which are real."""
    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray
    uvs: np.ndarray
    spheres: np.ndarray
    prim_shape: np.ndarray
    has_normals: np.ndarray
    has_uvs: np.ndarray


def scene_geometry(scene: Scene) -> SceneGeometry:
    verts, faces, normals, uvs, face_shape = [], [], [], [], []
    spheres, sphere_shape = [], []
    offset = 0
    has_n = np.zeros(len(scene.shapes), dtype=bool)
    has_uv = np.zeros(len(scene.shapes), dtype=bool)
    for i, s in enumerate(scene.shapes):
        if s.kind == "sphere":
            spheres.append([*s.center, s.radius])
            sphere_shape.append(i)
            continue
        n = len(s.vertices)
        verts.append(s.vertices)
        faces.append(s.faces.astype(np.int64) + offset)
        has_n[i], has_uv[i] = s.normals is not None, s.uvs is not None
        normals.append(s.normals if s.normals is not None else np.zeros((n, 3), np.float32))
        uvs.append(s.uvs if s.uvs is not None else np.zeros((n, 2), np.float32))
        face_shape.append(np.full(len(s.faces), i, dtype=np.int32))
        offset += n

    def cat(parts, shape, dtype):
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(shape, dtype)

    return SceneGeometry(
        vertices=cat(verts, (0, 3), np.float32), faces=cat(faces, (0, 3), np.int32),
        normals=cat(normals, (0, 3), np.float32), uvs=cat(uvs, (0, 2), np.float32),
        spheres=np.asarray(spheres, dtype=np.float32).reshape(-1, 4),
        prim_shape=np.concatenate(face_shape + [np.asarray(sphere_shape, dtype=np.int32)]).astype(np.int32),
        has_normals=has_n, has_uvs=has_uv)
