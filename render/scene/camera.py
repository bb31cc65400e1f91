"""Perspective-sensor helpers with Mitsuba's conventions: fov resolution (parse_fov), camera frame and rays."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .types import Sensor


def fov_x_from(fov: float, fov_axis: str, aspect: float) -> float:
    """Horizontal fov in degrees from a fov given along fov_axis (x, y, diagonal, smaller, larger), as Mitsuba."""
    axis = fov_axis
    if axis == "smaller":
        axis = "y" if aspect > 1 else "x"
    elif axis == "larger":
        axis = "x" if aspect > 1 else "y"
    half = math.tan(math.radians(fov) / 2)
    if axis == "x":
        return fov
    if axis == "y":
        return math.degrees(2 * math.atan(half * aspect))
    if axis == "diagonal":
        width = 2 * half / math.sqrt(1 + 1 / (aspect * aspect))
        return math.degrees(2 * math.atan(width / 2))
    raise ValueError(f"fov_axis {fov_axis!r}")


def camera_frame(sensor: Sensor, width: Optional[int] = None, height: Optional[int] = None):
    """(camera_to_world 4x4, fov_x_deg, fov_y_deg) for a film of width x height (default: the sensor's film).

    Camera space is Mitsuba's: the camera looks along +z, +y is up in the image and +x points to the image's
    LEFT (pixel column 0 sees +x). The fov is re-resolved from the scene's fov/fov_axis for this film size.
    """
    w = width if width is not None else sensor.film.width
    h = height if height is not None else sensor.film.height
    aspect = w / h
    fov_x = fov_x_from(sensor.fov, sensor.fov_axis, aspect)
    fov_y = math.degrees(2 * math.atan(math.tan(math.radians(fov_x) / 2) / aspect))
    return sensor.to_world.copy(), fov_x, fov_y


def camera_rays(sensor: Sensor, film_pos: np.ndarray, width: Optional[int] = None, height: Optional[int] = None):
    """World-space ray origins and unit directions for film positions in [0,1]^2 ((N,2); (0,0) = top-left
    corner of the image, x to the right), matching Mitsuba's perspective sample_ray (no crop, no offset)."""
    to_world, fov_x, fov_y = camera_frame(sensor, width, height)
    tx, ty = math.tan(math.radians(fov_x) / 2), math.tan(math.radians(fov_y) / 2)
    p = np.asarray(film_pos, dtype=np.float64)
    d = np.stack([(1 - 2 * p[:, 0]) * tx, (1 - 2 * p[:, 1]) * ty, np.ones(len(p))], axis=1)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    d_world = d @ to_world[:3, :3].T
    o = np.broadcast_to(to_world[:3, 3], d_world.shape).copy()
    return o, d_world


def lookat_xml(to_world: np.ndarray, target: Optional[np.ndarray] = None) -> str:
    """A Mitsuba `<lookat origin=".." target=".." up=".."/>` that reproduces to_world's position and orientation
    (Mitsuba's look_at: columns left, up, forward). target: a point straight ahead (default 1 unit ahead)."""
    m = np.asarray(to_world, dtype=np.float64)
    origin = m[:3, 3]
    forward = m[:3, 2] / np.linalg.norm(m[:3, 2])
    up = m[:3, 1] / np.linalg.norm(m[:3, 1])
    if target is None or np.linalg.norm(np.asarray(target) - origin) < 1e-9:
        target = origin + forward
    else:  # keep the direction exact: project the given target onto the view axis
        target = origin + forward * max(float(np.dot(np.asarray(target) - origin, forward)), 1e-6)
    fmt = lambda v: ", ".join(f"{float(x):.6g}" for x in v)  # noqa: E731
    return f'<lookat origin="{fmt(origin)}" target="{fmt(target)}" up="{fmt(up)}"/>'
