"""Mitsuba 3 XML scenes -> Scene dataclasses (numpy arrays, plain values) for the path tracer."""

from .camera import camera_frame, camera_rays, fov_x_from
from .loader import load_scene, load_string
from .types import BSDF, Emitter, Film, Integrator, RFilter, Sampler, Scene, SceneError, Sensor, Shape, Texture

__all__ = ["load_scene", "load_string", "camera_frame", "camera_rays", "fov_x_from", "Scene", "SceneError",
           "Sensor", "Film", "Sampler", "Integrator", "RFilter", "Shape", "BSDF", "Emitter", "Texture"]
