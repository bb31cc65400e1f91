"""Mitsuba 3 XML scenes -> Scene dataclasses (numpy arrays, plain values) for the path tracer.

    scene = load_scene("scenes/cbox/cbox.xml", params={"spp": "16"})   # like mi.load_file(path, spp=16)
    to_world, fov_x, fov_y = camera_frame(scene.sensor)                 # Mitsuba camera: +z forward, +x left
    geo = scene_geometry(scene)  # flat vertices/faces/spheres + prim -> shape index, as the BVH numbers them

Supported: scene version 2.x/3.x, default/$param, ref/id (forward refs too), transforms (translate, scale,
rotate, matrix, lookat); shapes obj, ply, rectangle, cube, disk (tessellated fan), sphere (analytic);
bsdfs diffuse, conductor, roughconductor, dielectric, thindielectric, roughdielectric, plastic,
roughplastic, twosided; emitters area, point, spot, constant, envmap, directional; textures bitmap,
checkerboard; sensor perspective + hdrfilm (box/gaussian/tent) + independent; integrators path, direct, aov.
Anything else, any unread parameter and any malformed value raises SceneError (a UserError) with one
line `<file>:<line>: <element>: what was wrong / what was expected`.

Colours are linear sRGB as in Mitsuba's *_rgb variants: wavelength:value spectra are integrated exactly
as Mitsuba does (D65-weighted for reflectances, plain for emitters; see spectra.py). Deliberate differences
from Mitsuba: spectrum files are unsupported; spheres must have a positive radius and uniform scale; an
area emitter outside a shape, a non-area emitter inside one, film/sampler outside a sensor, NaN/inf values
are errors; files must lie inside the scene folder unless allow_outside=True. As Mitsuba: rotation axes
are not normalised, OBJ v is flipped (flip_tex_coords), meshes without normals get angle-weighted normals.
"""

from .camera import camera_frame, camera_rays, fov_x_from
from .geometry import SceneGeometry, scene_geometry
from .loader import load_scene, load_string
from .types import BSDF, Emitter, Film, Integrator, RFilter, Sampler, Scene, SceneError, Sensor, Shape, Texture

__all__ = ["load_scene", "load_string", "camera_frame", "camera_rays", "fov_x_from", "scene_geometry",
           "SceneGeometry", "Scene", "SceneError",
           "Sensor", "Film", "Sampler", "Integrator", "RFilter", "Shape", "BSDF", "Emitter", "Texture"]
