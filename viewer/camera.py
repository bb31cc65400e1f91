"""Orbit camera for the viewer: orbit about a target, pan, zoom; gives Mitsuba camera-to-world matrices."""

from __future__ import annotations

import math

import numpy as np

from render.scene.camera import lookat_xml
from render.scene.transforms import look_at, rotate

MIN_POLAR_DEG = 2.0  # keep the view direction off the up axis (look_at needs them apart)


class OrbitCamera:
    """Camera on a sphere around `target`. Starts from a sensor's to_world (Mitsuba: +z forward, +x image left,
    +y up); the target is the point straight ahead at the depth of the scene's bounds centre, so orbiting
    turns the scene about its middle. Orbit/pan amounts are in pixels of a view `width` wide with fov_x."""

    def __init__(self, to_world: np.ndarray, fov_x: float, center: np.ndarray | None = None):
        self.fov_x = float(fov_x)
        self.home = np.asarray(to_world, dtype=np.float64).copy()
        self._center = None if center is None else np.asarray(center, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        m = self.home
        self.origin = m[:3, 3].copy()
        forward = m[:3, 2] / np.linalg.norm(m[:3, 2])
        self.up = m[:3, 1] / np.linalg.norm(m[:3, 1])
        depth = 1.0
        if self._center is not None and np.all(np.isfinite(self._center)):
            depth = float(np.dot(self._center - self.origin, forward))
            if depth <= 1e-3:
                depth = max(float(np.linalg.norm(self._center - self.origin)), 1.0)
        self.target = self.origin + forward * depth
        self._roll = m  # exact home matrix until the first move (no rounding through look_at)

    # ---- the camera as Mitsuba sees it
    @property
    def distance(self) -> float:
        return float(np.linalg.norm(self.origin - self.target))

    @property
    def to_world(self) -> np.ndarray:
        if self._roll is not None:
            return self._roll.copy()
        return look_at(self.origin, self.target, self.up)

    def lookat_xml(self) -> str:
        return lookat_xml(self.to_world, self.target)

    # ---- interaction
    def _moved(self) -> None:
        if self._roll is not None:
            self.up = self._roll[:3, 1] / np.linalg.norm(self._roll[:3, 1])
            self._roll = None

    def orbit(self, dx: float, dy: float, width: int) -> None:
        """Drag by (dx, dy) pixels: the scene turns with the mouse (a full view width = 180 degrees)."""
        self._moved()
        k = 180.0 / max(width, 1)
        offset = self.origin - self.target
        offset = rotate(self.up, -dx * k)[:3, :3] @ offset
        left = np.cross(self.up, -offset)
        if np.linalg.norm(left) > 1e-12:
            left /= np.linalg.norm(left)
            polar = math.degrees(math.acos(np.clip(np.dot(offset, self.up) / np.linalg.norm(offset), -1, 1)))
            # Dragging down tilts the camera up over the target; stay MIN_POLAR_DEG off the poles.
            new_polar = float(np.clip(polar - dy * k, MIN_POLAR_DEG, 180.0 - MIN_POLAR_DEG))
            offset = rotate(left, polar - new_polar)[:3, :3] @ offset
        self.origin = self.target + offset

    def pan(self, dx: float, dy: float, width: int) -> None:
        """Drag by (dx, dy) pixels: the point under the mouse stays under it (at the target's depth)."""
        self._moved()
        m = self.to_world
        left, up = m[:3, 0], m[:3, 1]
        pixel = 2.0 * self.distance * math.tan(math.radians(self.fov_x) / 2) / max(width, 1)
        shift = left * (dx * pixel) + up * (dy * pixel)  # +x camera is image left: content follows the mouse
        self.origin = self.origin + shift
        self.target = self.target + shift

    def zoom(self, steps: float) -> None:
        """Dolly toward the target (steps > 0) or away; each step scales the distance by 0.85."""
        self._moved()
        d = max(self.distance * 0.85 ** steps, 1e-4)
        direction = (self.origin - self.target) / self.distance
        self.origin = self.target + direction * d
