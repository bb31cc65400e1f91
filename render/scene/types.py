"""Scene dataclasses: what the Mitsuba-XML loader returns and the path tracer consumes (numpy arrays, plain values)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np

from ..errors import UserError


class SceneError(UserError):
    """A scene file problem, as one line: `<file>:<line>: <element>: what was wrong / what was expected`."""


@dataclass
class Texture:
    """`bitmap` (image: (H, W, C) float32 linear, C = 1 or 3) or `checkerboard` (params color0, color1).

    `to_uv` is the 3x3 matrix Mitsuba applies to (u, v, 1) before the lookup.
    """
    type: str
    params: dict[str, Any]
    image: Optional[np.ndarray] = None
    to_uv: np.ndarray = field(default_factory=lambda: np.eye(3, dtype=np.float32))
    id: Optional[str] = None


# An RGB value (shape (3,) float32) or a texture, as Mitsuba's spectrum-or-texture parameters.
Color = Union[np.ndarray, Texture]


@dataclass
class BSDF:
    """One BSDF: Mitsuba plugin name, its parameters resolved to plain values (floats, strings, bools,
    (3,) float32 RGB arrays, Texture), and nested BSDFs (twosided: one or two)."""
    type: str
    params: dict[str, Any]
    nested: list["BSDF"] = field(default_factory=list)
    id: Optional[str] = None


@dataclass
class Emitter:
    """An emitter: `area` (attached to a shape), `point`, `spot`, `constant`, `envmap`, `directional`.

    params holds radiance/intensity/irradiance as (3,) float32 RGB (or Texture for area radiance), plus
    plugin scalars (cutoff_angle, beam_width in degrees; scale). `to_world` is the emitter frame: point
    position in the last column, spot/directional emit along its +z, envmap uses Mitsuba's mapping.
    `image` is the envmap's linear (H, W, 3) float32 radiance (before `scale`).
    """
    type: str
    params: dict[str, Any]
    to_world: np.ndarray = field(default_factory=lambda: np.eye(4, dtype=np.float64))
    image: Optional[np.ndarray] = None
    id: Optional[str] = None


@dataclass
class Shape:
    """A shape in world space. kind 'mesh': vertices (V,3) float32, faces (F,3) int32, optional normals
    (V,3) float32 (unit, world space) and uvs (V,2) float32. kind 'sphere': analytic center (3,) and radius.

    Mesh normals are the file's (or Mitsuba's angle-weighted recomputation when the file has none), None when
    face_normals is set (shade with the geometric normal). flip_normals is NOT baked into the arrays: the
    tracer negates geometric and shading normals when set (as Mitsuba does).
    `to_world` is the object-to-world matrix the shape was built with (sphere: its full frame, for uvs).
    """
    kind: str
    type: str
    bsdf: BSDF
    emitter: Optional[Emitter] = None
    vertices: Optional[np.ndarray] = None
    faces: Optional[np.ndarray] = None
    normals: Optional[np.ndarray] = None
    uvs: Optional[np.ndarray] = None
    center: Optional[np.ndarray] = None
    radius: float = 0.0
    flip_normals: bool = False
    face_normals: bool = False
    to_world: np.ndarray = field(default_factory=lambda: np.eye(4, dtype=np.float64))
    id: Optional[str] = None


@dataclass
class RFilter:
    """Reconstruction filter: `box`, `gaussian` (stddev, Mitsuba's default 0.5; radius 4 stddev) or `tent`
    (radius, default 1)."""
    type: str = "gaussian"
    stddev: float = 0.5
    radius: float = 0.0


@dataclass
class Film:
    """`hdrfilm`: size, reconstruction filter and output format, with Mitsuba's defaults."""
    type: str = "hdrfilm"
    width: int = 768
    height: int = 576
    rfilter: RFilter = field(default_factory=RFilter)
    pixel_format: str = "rgb"
    component_format: str = "float16"
    file_format: str = "openexr"
    crop_offset_x: int = 0
    crop_offset_y: int = 0
    crop_width: Optional[int] = None
    crop_height: Optional[int] = None
    sample_border: bool = False


@dataclass
class Sampler:
    """`independent` sampler: samples per pixel and seed."""
    type: str = "independent"
    sample_count: int = 4
    seed: int = 0


@dataclass
class Integrator:
    """`path` (max_depth -1 = unbounded, rr_depth, hide_emitters), `direct` or `aov` (aovs + nested)."""
    type: str = "path"
    params: dict[str, Any] = field(default_factory=lambda: {"max_depth": -1, "rr_depth": 5, "hide_emitters": False})
    nested: list["Integrator"] = field(default_factory=list)


@dataclass
class Sensor:
    """`perspective` camera. to_world maps Mitsuba camera space (looks along +z, +x is image LEFT, +y image
    up) to world. fov_x is the horizontal field of view in degrees for `film`'s size (fov/fov_axis or
    focal_length resolved as Mitsuba's parse_fov)."""
    type: str
    to_world: np.ndarray
    fov: float
    fov_axis: str
    fov_x: float
    near_clip: float
    far_clip: float
    film: Film
    sampler: Sampler


@dataclass
class Scene:
    """A loaded scene. bsdfs/textures: the objects that had an `id`, by id."""
    sensor: Optional[Sensor]
    integrator: Integrator
    shapes: list[Shape]
    emitters: list[Emitter]
    bsdfs: dict[str, BSDF]
    textures: dict[str, Texture]
    source: Optional[Path]

    @property
    def film(self) -> Optional[Film]:
        return self.sensor.film if self.sensor is not None else None

    @property
    def sampler(self) -> Optional[Sampler]:
        return self.sensor.sampler if self.sensor is not None else None
