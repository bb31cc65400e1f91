"""4x4 affine transforms as Mitsuba builds them (translate, scale, rotate, look_at) and point/normal helpers."""

from __future__ import annotations

import math

import numpy as np


def translate(v) -> np.ndarray:
    m = np.eye(4)
    m[:3, 3] = v
    return m


def scale(v) -> np.ndarray:
    return np.diag([float(v[0]), float(v[1]), float(v[2]), 1.0])


def rotate(axis, angle_deg: float) -> np.ndarray:
    """Right-handed rotation by angle_deg degrees about axis (Rodrigues), as Mitsuba's Transform::rotate.

    Like Mitsuba (drjit's rotate), the axis is NOT normalised: a non-unit axis gives a non-rigid matrix,
    and we reproduce that so scenes load with Mitsuba's geometry.
    """
    a = np.asarray(axis, dtype=np.float64)
    s, c = math.sin(math.radians(angle_deg)), math.cos(math.radians(angle_deg))
    x, y, z = a
    m = np.eye(4)
    m[:3, :3] = [[x * x * (1 - c) + c, x * y * (1 - c) - z * s, x * z * (1 - c) + y * s],
                 [x * y * (1 - c) + z * s, y * y * (1 - c) + c, y * z * (1 - c) - x * s],
                 [x * z * (1 - c) - y * s, y * z * (1 - c) + x * s, z * z * (1 - c) + c]]
    return m


def look_at(origin, target, up) -> np.ndarray:
    """Mitsuba's look_at: columns (left, new_up, dir, origin); left = normalize(cross(up, dir))."""
    origin, target, up = (np.asarray(v, dtype=np.float64) for v in (origin, target, up))
    d = target - origin
    d = d / np.linalg.norm(d)
    left = np.cross(up, d)
    left = left / np.linalg.norm(left)
    new_up = np.cross(d, left)
    m = np.eye(4)
    m[:3, 0], m[:3, 1], m[:3, 2], m[:3, 3] = left, new_up, d, origin
    return m


def transform_points(m: np.ndarray, p: np.ndarray) -> np.ndarray:
    return p @ m[:3, :3].T + m[:3, 3]


def transform_normals(m: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Normals transform by the inverse transpose; returned unit length."""
    inv_t = np.linalg.inv(m[:3, :3]).T
    out = n @ inv_t.T
    length = np.linalg.norm(out, axis=-1, keepdims=True)
    return out / np.where(length > 0, length, 1.0)


def uniform_scale(m: np.ndarray, tol: float = 1e-5):
    """The uniform scale factor of m's linear part if it is a similarity (rotation x uniform scale), else None."""
    a = m[:3, :3]
    gram = a.T @ a
    s2 = float(np.trace(gram)) / 3.0
    if s2 <= 0 or np.abs(gram - s2 * np.eye(3)).max() > tol * max(s2, 1.0):
        return None
    return math.sqrt(s2)
