"""Integrators: the Mitsuba-compatible `path` tracer (NEE + MIS) with AOVs, over scenes compiled to tensors."""

from .path import Film, PathIntegrator, RenderResult, RenderSettings
from .scene_data import SceneData

__all__ = ["PathIntegrator", "RenderSettings", "RenderResult", "SceneData", "Film"]
