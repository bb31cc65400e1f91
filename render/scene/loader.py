"""Mitsuba 3 XML scene loader: elements -> typed properties -> plugin builders -> Scene dataclasses.

Every problem raises SceneError with one line `<file>:<line>: <element>: what / expected`. As in Mitsuba,
a property no plugin reads is an error, never silently ignored.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from . import meshes, mitsuba_tables
from .camera import fov_x_from
from .images import ImageReadError, read_image
from .spectra import spectrum_list_to_srgb, uniform_emitter_rgb
from .transforms import look_at, rotate, scale, translate, uniform_scale
from .types import (BSDF, Emitter, Film, Integrator, RFilter, Sampler, Scene, SceneError, Sensor, Shape,
                    Texture)
from .xmlparse import Element, error, parse_xml, substitute
from ..bsdfs.torch_bsdf import PLUGIN_MODULES, torch_bsdf_plugin

OBJECT_TAGS = ("shape", "bsdf", "emitter", "texture", "sensor", "film", "sampler", "integrator", "rfilter")
PROPERTY_TAGS = ("float", "integer", "boolean", "string", "rgb", "spectrum", "point", "vector", "transform", "ref")
UNSUPPORTED_TAGS = ("medium", "phase", "volume", "include", "alias", "path", "shapegroup", "instance")

PLUGINS = {
    "shape": ("obj", "ply", "rectangle", "cube", "disk", "sphere"),
    "bsdf": ("diffuse", "conductor", "roughconductor", "dielectric", "thindielectric", "roughdielectric",
             "plastic", "roughplastic", "twosided"),
    "emitter": ("area", "point", "spot", "constant", "envmap", "directional"),
    "texture": ("bitmap", "checkerboard"),
    "sensor": ("perspective",),
    "film": ("hdrfilm",),
    "sampler": ("independent",),
    "integrator": ("path", "direct", "aov"),
    "rfilter": ("box", "gaussian", "tent"),
}

# Mitsuba 3 plugins we know of but do not support (a clearer message than "unknown").
MITSUBA_ONLY = {
    "shape": ("serialized", "cylinder", "shapegroup", "instance", "bsplinecurve", "linearcurve", "sdfgrid",
              "ellipsoids", "ellipsoidsmesh", "merge"),
    "bsdf": ("blendbsdf", "mask", "bumpmap", "normalmap", "pplastic", "hair", "principled", "principledthin",
             "measured", "measured_polarized", "polarizer", "retarder", "circular", "null"),
    "emitter": ("projector", "sunsky", "sky", "sun"),
    "texture": ("mesh_attribute", "volume"),
    "sensor": ("orthographic", "thinlens", "radiancemeter", "irradiancemeter", "distant", "batch"),
    "film": ("specfilm",),
    "sampler": ("stratified", "multijitter", "orthogonal", "ldsampler"),
    "integrator": ("volpath", "volpathmis", "prb", "prb_basic", "prb_projective", "direct_projective", "ptracer",
                   "moment", "stokes", "depth"),
    "rfilter": ("lanczos", "mitchell", "catmullrom"),
}

AOV_TYPES = ("albedo", "depth", "position", "uv", "geo_normal", "sh_normal", "dp_du", "dp_dv", "duv_dx",
             "duv_dy", "prim_index", "shape_index")

_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d+")
_FLOAT32_MAX = float(np.finfo(np.float32).max)
_NONFINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"}


@dataclass
class Prop:
    """A named property of an object: kind is the XML tag (float, rgb, ...) or 'object' for a nested one."""
    name: str
    kind: str
    value: Any
    el: Element


@dataclass
class Obj:
    """An object element (shape, bsdf, ...) with its named properties and unnamed child objects/refs."""
    tag: str
    type: str
    id: Optional[str]
    el: Element
    props: dict[str, Prop] = field(default_factory=dict)
    children: list[Element] = field(default_factory=list)  # unnamed object elements or <ref id>


class Loader:
    def __init__(self, file: str, base_dir: Path, allow_outside: bool):
        self.file = file
        self.base_dir = base_dir
        self.allow_outside = allow_outside
        self.defs: dict[str, Element] = {}     # id -> defining element
        self.built: dict[str, Any] = {}        # id -> built object (shared by refs)
        self.building: list[str] = []          # ids under construction, for cycle detection
        self.objs: dict[int, Obj] = {}

    # ---------------------------------------------------------------- helpers
    def err(self, el: Optional[Element], msg: str) -> SceneError:
        return error(self.file, el, msg)

    def check_attrs(self, el: Element, allowed: tuple[str, ...], required: tuple[str, ...] = ()):
        for k in el.attrs:
            if k not in allowed:
                raise self.err(el, f"unexpected attribute '{k}' (expected {', '.join(allowed) or 'none'})")
        for k in required:
            if k not in el.attrs:
                raise self.err(el, f"missing attribute '{k}'")

    def number(self, el: Element, text: str, what: str = "value") -> float:
        s = text.strip()
        if s.lower() in _NONFINITE:
            raise self.err(el, f"{what} '{text}' is NaN or infinite (expected a finite number)")
        if not _FLOAT.fullmatch(s):
            raise self.err(el, f"bad number '{text}' in {what} (expected a number like 0.5 or 1e-3)")
        v = float(s)
        if not math.isfinite(v) or abs(v) > _FLOAT32_MAX:
            raise self.err(el, f"{what} '{text}' is out of range (expected a finite 32-bit float)")
        return v

    def numbers(self, el: Element, text: str, counts: tuple[int, ...], what: str = "value") -> list[float]:
        parts = [p for p in re.split(r"[,\s]+", text.strip()) if p]
        if len(parts) not in counts:
            want = " or ".join(str(c) for c in counts)
            raise self.err(el, f"{what}=\"{text}\" has {len(parts)} numbers (expected {want})")
        return [self.number(el, p, what) for p in parts]

    def xyz(self, el: Element, default: float, allow_value: bool = True, what: str = "") -> np.ndarray:
        if allow_value and "value" in el.attrs:
            if any(k in el.attrs for k in "xyz"):
                raise self.err(el, "give either value=\"x y z\" or x/y/z attributes, not both")
            v = self.numbers(el, el.attrs["value"], (1, 3))
            return np.array(v * 3 if len(v) == 1 else v, dtype=np.float64)
        return np.array([self.number(el, el.attrs[k], k) if k in el.attrs else default for k in "xyz"])

    # ---------------------------------------------------------------- structure
    def collect_ids(self, el: Element) -> None:
        if el.tag in OBJECT_TAGS and "id" in el.attrs:
            i = el.attrs["id"]
            if not i:
                raise self.err(el, "empty id")
            if i in self.defs:
                raise self.err(el, f"duplicate id '{i}' (first defined on line {self.defs[i].line})")
            self.defs[i] = el
        for c in el.children:
            self.collect_ids(c)

    def obj(self, el: Element) -> Obj:
        """Sort an object element's children into named properties and unnamed child objects."""
        if id(el) in self.objs:
            return self.objs[id(el)]
        self.check_attrs(el, ("type", "id", "name"), ("type",))
        t = el.attrs["type"]
        if t in MITSUBA_ONLY.get(el.tag, ()):
            raise self.err(el, f"Mitsuba's {el.tag} plugin '{t}' is not supported by Radiant "
                               f"(supported: {', '.join(PLUGINS[el.tag])})")
        if t not in PLUGINS[el.tag] and not (el.tag == "bsdf" and torch_bsdf_plugin(t) is not None):
            known = PLUGINS[el.tag] + (tuple(PLUGIN_MODULES) if el.tag == "bsdf" else ())
            close = difflib.get_close_matches(t, known, 1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise self.err(el, f"unknown {el.tag} plugin '{t}' (supported: {', '.join(known)}){hint}")
        o = Obj(el.tag, t, el.attrs.get("id"), el)
        for c in el.children:
            if c.tag in UNSUPPORTED_TAGS:
                raise self.err(c, f"<{c.tag}> is not supported by Radiant")
            if c.tag == "scene":
                raise self.err(c, "<scene> must be the root element")
            if c.tag in OBJECT_TAGS or c.tag == "ref":
                name = c.attrs.get("name")
                if name is None:
                    if c.tag == "ref":
                        self.check_attrs(c, ("id", "name"), ("id",))
                    o.children.append(c)
                    continue
                prop = Prop(name, "ref" if c.tag == "ref" else "object", c, c)
                if c.tag == "ref":
                    self.check_attrs(c, ("id", "name"), ("id",))
            elif c.tag in PROPERTY_TAGS:
                prop = self.property(c, within_emitter=el.tag == "emitter")
            else:
                raise self.err(c, f"unknown element <{c.tag}> (expected a property tag: {', '.join(PROPERTY_TAGS)}, "
                                  f"or an object: {', '.join(OBJECT_TAGS)})")
            if prop.name in o.props:
                raise self.err(c, f"parameter '{prop.name}' given twice (first on line {o.props[prop.name].el.line})")
            o.props[prop.name] = prop
        self.objs[id(el)] = o
        return o

    def property(self, el: Element, within_emitter: bool = False) -> Prop:
        tag = el.tag
        if "name" not in el.attrs:
            raise self.err(el, "missing attribute 'name'")
        name = el.attrs["name"]
        if tag == "transform":
            self.check_attrs(el, ("name",))
            return Prop(name, tag, self.transform(el), el)
        if tag in ("point", "vector"):
            self.check_attrs(el, ("name", "value", "x", "y", "z"))
            if el.children:
                raise self.err(el, "must be empty")
            if not any(k in el.attrs for k in ("value", "x", "y", "z")):
                raise self.err(el, "needs value=\"x y z\" or x/y/z attributes")
            if "value" in el.attrs:
                if any(k in el.attrs for k in "xyz"):
                    raise self.err(el, "give either value=\"x y z\" or x/y/z attributes, not both")
                v = self.numbers(el, el.attrs["value"], (1, 3))
                return Prop(name, tag, np.array(v * 3 if len(v) == 1 else v, dtype=np.float64), el)
            return Prop(name, tag, self.xyz(el, 0.0), el)
        if el.children:
            raise self.err(el, "must be empty")
        if tag == "spectrum" and "filename" in el.attrs:
            raise self.err(el, "spectrum files are not supported (RGB rendering; give <rgb> or a single value)")
        self.check_attrs(el, ("name", "value"), ("value",))
        text = el.attrs["value"]
        if tag == "float":
            return Prop(name, tag, self.number(el, text), el)
        if tag == "integer":
            s = text.strip()
            if not _INT.fullmatch(s):
                raise self.err(el, f"bad integer '{text}' (expected a whole number like 4)")
            return Prop(name, tag, int(s), el)
        if tag == "boolean":
            s = text.strip().lower()
            if s not in ("true", "false"):
                raise self.err(el, f"bad boolean '{text}' (expected true or false)")
            return Prop(name, tag, s == "true", el)
        if tag == "string":
            return Prop(name, tag, text, el)
        if tag == "rgb":
            v = self.numbers(el, text, (1, 3))
            return Prop(name, tag, np.array(v * 3 if len(v) == 1 else v, dtype=np.float32), el)
        if tag == "spectrum":
            if ":" in text:
                # As Mitsuba's RGB variants: integrate against CIE 1931 (times D65 outside emitters) -> sRGB
                pairs = []
                for item in [p for p in re.split(r"[,\s]+", text.strip()) if p]:
                    if item.count(":") != 1:
                        raise self.err(el, f"bad wavelength:value pair '{item}' (expected e.g. 400:0.5, 700:0.8)")
                    w, v = item.split(":")
                    pairs.append((self.number(el, w, "wavelength"), self.number(el, v)))
                if len(pairs) < 2:
                    raise self.err(el, "a wavelength:value spectrum needs at least two pairs")
                ws = [p[0] for p in pairs]
                if any(b <= a for a, b in zip(ws, ws[1:])):
                    raise self.err(el, "wavelengths must be strictly increasing")
                rgb = spectrum_list_to_srgb(ws, [p[1] for p in pairs], d65=not within_emitter)
                return Prop(name, tag, rgb, el)
            v = self.numbers(el, text, (1,))
            if within_emitter:
                return Prop(name, tag, uniform_emitter_rgb(v[0]), el)
            return Prop(name, tag, np.full(3, v[0], dtype=np.float32), el)
        raise AssertionError(tag)

    def transform(self, el: Element) -> np.ndarray:
        m = np.eye(4)
        for op in el.children:
            if op.children:
                raise self.err(op, "must be empty")
            t = op.tag
            if t == "translate":
                self.check_attrs(op, ("value", "x", "y", "z"))
                m = translate(self.xyz(op, 0.0)) @ m
            elif t == "scale":
                self.check_attrs(op, ("value", "x", "y", "z"))
                if "value" in op.attrs:
                    if any(k in op.attrs for k in "xyz"):
                        raise self.err(op, "give either value or x/y/z attributes, not both")
                    v = self.numbers(op, op.attrs["value"], (1, 3))
                    s = np.array(v * 3 if len(v) == 1 else v)
                else:
                    s = self.xyz(op, 1.0, allow_value=False)
                m = scale(s) @ m
            elif t == "rotate":
                self.check_attrs(op, ("value", "x", "y", "z", "angle"), ("angle",))
                axis = self.xyz(op, 0.0)
                if not np.any(axis):
                    raise self.err(op, "rotation axis is zero (expected value=\"x y z\" or x/y/z, not all 0)")
                m = rotate(axis, self.number(op, op.attrs["angle"], "angle")) @ m
            elif t == "matrix":
                self.check_attrs(op, ("value",), ("value",))
                v = self.numbers(op, op.attrs["value"], (9, 16))
                mat = np.eye(4)
                if len(v) == 9:
                    mat[:3, :3] = np.array(v).reshape(3, 3)
                else:
                    mat = np.array(v).reshape(4, 4)
                m = mat @ m
            elif t == "lookat":
                self.check_attrs(op, ("origin", "target", "up"), ("origin", "target"))
                o = np.array(self.numbers(op, op.attrs["origin"], (3,), "origin"))
                tg = np.array(self.numbers(op, op.attrs["target"], (3,), "target"))
                d = tg - o
                if np.linalg.norm(d) == 0:
                    raise self.err(op, "origin and target are the same point")
                if "up" in op.attrs:
                    up = np.array(self.numbers(op, op.attrs["up"], (3,), "up"))
                else:
                    up = _coordinate_system_s(d / np.linalg.norm(d))
                if np.linalg.norm(np.cross(up, d)) <= 1e-9 * np.linalg.norm(up) * np.linalg.norm(d):
                    raise self.err(op, "up is zero or parallel to the viewing direction")
                m = look_at(o, tg, up) @ m
            else:
                raise self.err(op, f"unknown transform operation <{t}> (expected translate, rotate, scale, "
                                   "matrix, lookat)")
        return m

    # ---------------------------------------------------------------- object building
    def build(self, el: Element, expect: tuple[str, ...], parent: Element) -> Any:
        """Build an object element or a <ref id> child, checking it is one of the `expect` tags."""
        if el.tag == "ref":
            i = el.attrs["id"]
            if i not in self.defs:
                raise self.err(el, f"reference to undefined id '{i}'")
            target = self.defs[i]
            if target.tag not in expect:
                raise self.err(el, f"id '{i}' is a {target.tag} (line {target.line}); expected "
                                   f"{' or '.join(expect)} inside <{parent.describe()}>")
            return self.build_def(i, el)
        if el.tag not in expect:
            raise self.err(el, f"<{el.tag}> is not allowed inside <{parent.describe()}> "
                               f"(expected {' or '.join(expect) if expect else 'no nested objects'})")
        if "id" in el.attrs:
            return self.build_def(el.attrs["id"], el)
        return self.construct(el)

    def build_def(self, i: str, at: Element) -> Any:
        if i in self.built:
            return self.built[i]
        if i in self.building:
            chain = " -> ".join(self.building[self.building.index(i):] + [i])
            raise self.err(at, f"cyclic reference: {chain}")
        self.building.append(i)
        try:
            obj = self.construct(self.defs[i])
        finally:
            self.building.pop()
        self.built[i] = obj
        return obj

    def construct(self, el: Element) -> Any:
        o = self.obj(el)
        r = Reader(self, o)
        builder: Optional[Callable] = getattr(self, f"make_{o.tag}_{o.type}", None)
        if builder is None and o.tag == "bsdf":
            builder = self.make_bsdf_torch
        result = (builder or getattr(self, f"make_{o.tag}"))(r)
        r.finish()
        return result

    # ---- files
    def path(self, r: "Reader", name: str) -> Path:
        prop = r.prop(name, ("string",))
        if prop is None:
            raise self.err(r.o.el, f"missing required parameter '{name}'")
        text = prop.value
        p = Path(text)
        if not text.strip():
            raise self.err(prop.el, "empty filename")
        if not self.allow_outside:
            if p.is_absolute():
                raise self.err(prop.el, f"absolute path '{text}' is not allowed (files must be inside the scene "
                                        "folder; pass allow_outside=True to permit)")
            full = (self.base_dir / p).resolve()
            base = self.base_dir.resolve()
            if full != base and base not in full.parents:
                raise self.err(prop.el, f"path '{text}' leaves the scene folder (files must be inside "
                                        f"{self.base_dir}; pass allow_outside=True to permit)")
        else:
            full = p if p.is_absolute() else (self.base_dir / p)
        if not full.is_file():
            raise self.err(prop.el, f"file not found: {full}")
        return full

    def image(self, r: "Reader", name: str, raw: bool) -> np.ndarray:
        p = self.path(r, name)
        try:
            img = read_image(p, raw=raw)
        except ImageReadError as e:
            raise self.err(r.o.props[name].el, f"{p.name}: {e}")
        if img.size == 0:
            raise self.err(r.o.props[name].el, f"{p.name}: empty image")
        if not np.isfinite(img).all():
            raise self.err(r.o.props[name].el, f"{p.name}: image has NaN or infinite pixels")
        return img

    # ---- textures
    def make_texture_bitmap(self, r: "Reader") -> Texture:
        raw = r.bool("raw", False)
        params = {
            "filter_type": r.choice("filter_type", "bilinear", ("bilinear", "nearest")),
            "wrap_mode": r.choice("wrap_mode", "repeat", ("repeat", "mirror", "clamp")),
            "raw": raw,
        }
        img = self.image(r, "filename", raw)
        params["filename"] = r.o.props["filename"].value
        return Texture("bitmap", params, image=img, to_uv=r.to_uv(), id=r.o.id)

    def make_texture_checkerboard(self, r: "Reader") -> Texture:
        params = {"color0": r.color("color0", 0.4), "color1": r.color("color1", 0.2)}
        return Texture("checkerboard", params, to_uv=r.to_uv(), id=r.o.id)

    # ---- bsdfs
    def make_bsdf_diffuse(self, r):
        return BSDF("diffuse", {"reflectance": r.color("reflectance", 0.5)}, id=r.o.id)

    def _conductor(self, r, rough: bool):
        params: dict[str, Any] = {}
        has_eta = "eta" in r.o.props or "k" in r.o.props
        material = r.string("material", "none")
        if has_eta and material != "none" and "material" in r.o.props:
            raise self.err(r.o.props["material"].el, "give either material or eta/k, not both")
        if material not in mitsuba_tables.CONDUCTORS:
            raise self.err(r.o.props["material"].el, f"unknown conductor material '{material}' "
                           f"(expected one of: {', '.join(mitsuba_tables.CONDUCTORS)})")
        eta, k = mitsuba_tables.CONDUCTORS[material]
        params["material"] = material
        params["eta"] = r.color("eta", np.array(eta, dtype=np.float32) if not has_eta else 0.0, bounded=False)
        params["k"] = r.color("k", np.array(k, dtype=np.float32) if not has_eta else 1.0, bounded=False)
        params["specular_reflectance"] = r.color("specular_reflectance", 1.0)
        if rough:
            params.update(r.microfacet(anisotropic=True))
        return BSDF("roughconductor" if rough else "conductor", params, id=r.o.id)

    def make_bsdf_conductor(self, r):
        return self._conductor(r, False)

    def make_bsdf_roughconductor(self, r):
        return self._conductor(r, True)

    def _dielectric(self, r, kind: str):
        int_ior, ext_ior = r.ior("int_ior", "bk7"), r.ior("ext_ior", "air")
        if int_ior <= 0 or ext_ior <= 0:
            raise self.err(r.o.el, f"int_ior ({int_ior}) and ext_ior ({ext_ior}) must be positive")
        params = {"int_ior": int_ior, "ext_ior": ext_ior, "eta": int_ior / ext_ior,
                  "specular_reflectance": r.color("specular_reflectance", 1.0),
                  "specular_transmittance": r.color("specular_transmittance", 1.0)}
        if kind == "roughdielectric":
            params.update(r.microfacet(anisotropic=True))
        return BSDF(kind, params, id=r.o.id)

    def make_bsdf_dielectric(self, r):
        return self._dielectric(r, "dielectric")

    def make_bsdf_thindielectric(self, r):
        return self._dielectric(r, "thindielectric")

    def make_bsdf_roughdielectric(self, r):
        return self._dielectric(r, "roughdielectric")

    def _plastic(self, r, rough: bool):
        int_ior, ext_ior = r.ior("int_ior", "polypropylene"), r.ior("ext_ior", "air")
        if int_ior <= 0 or ext_ior <= 0:
            raise self.err(r.o.el, f"int_ior ({int_ior}) and ext_ior ({ext_ior}) must be positive")
        params = {"diffuse_reflectance": r.color("diffuse_reflectance", 0.5),
                  "specular_reflectance": r.color("specular_reflectance", 1.0),
                  "int_ior": int_ior, "ext_ior": ext_ior, "eta": int_ior / ext_ior,
                  "nonlinear": r.bool("nonlinear", False)}
        if rough:
            params.update(r.microfacet(anisotropic=False))
        return BSDF("roughplastic" if rough else "plastic", params, id=r.o.id)

    def make_bsdf_plastic(self, r):
        return self._plastic(r, False)

    def make_bsdf_roughplastic(self, r):
        return self._plastic(r, True)

    def make_bsdf_twosided(self, r):
        nested = [self.build(c, ("bsdf",), r.o.el) for c in r.take_children()]
        for p in list(r.o.props.values()):
            if p.kind in ("object", "ref"):
                nested.append(r.object_prop(p.name, ("bsdf",)))
        if not 1 <= len(nested) <= 2:
            raise self.err(r.o.el, f"needs one or two nested bsdfs, got {len(nested)}")
        return BSDF("twosided", {}, nested=nested, id=r.o.id)

    def make_bsdf_torch(self, r):
        """A material evaluated by torch (render/bsdfs/torch_bsdf.py registry): its plugin parses the parameters."""
        plugin = torch_bsdf_plugin(r.o.type)
        params = plugin.parse(r) if plugin.parse is not None else {}
        return BSDF(r.o.type, params, id=r.o.id)

    # ---- emitters
    def make_emitter_area(self, r):
        return Emitter("area", {"radiance": r.color("radiance", 1.0, bounded=False)}, id=r.o.id)

    def make_emitter_point(self, r):
        intensity = r.rgb("intensity", 1.0)
        pos = r.prop("position", ("point", "vector"))
        tw = r.prop("to_world", ("transform",))
        if pos is not None and tw is not None:
            raise self.err(pos.el, "give either position or to_world, not both")
        m = tw.value if tw is not None else translate(pos.value if pos is not None else np.zeros(3))
        return Emitter("point", {"intensity": intensity, "position": m[:3, 3].astype(np.float32)}, m, id=r.o.id)

    def make_emitter_spot(self, r):
        intensity = r.rgb("intensity", 1.0)
        cutoff = r.float("cutoff_angle", 20.0)
        beam = r.float("beam_width", cutoff * 3.0 / 4.0)
        if not 0 < cutoff <= 180 or not 0 < beam <= 180:
            raise self.err(r.o.el, f"cutoff_angle ({cutoff}) and beam_width ({beam}) must be in (0, 180] degrees")
        return Emitter("spot", {"intensity": intensity, "cutoff_angle": cutoff, "beam_width": beam},
                       r.to_world(), id=r.o.id)

    def make_emitter_constant(self, r):
        return Emitter("constant", {"radiance": r.rgb("radiance", 1.0)}, id=r.o.id)

    def make_emitter_envmap(self, r):
        s = r.float("scale", 1.0)
        img = self.image(r, "filename", False)
        if img.shape[-1] == 1:
            img = np.repeat(img, 3, axis=-1)
        if img.shape[0] < 2 or img.shape[1] < 2:
            raise self.err(r.o.props["filename"].el,
                           f"env map is {img.shape[1]}x{img.shape[0]} (expected at least 2x2)")
        return Emitter("envmap", {"scale": s, "filename": r.o.props["filename"].value}, r.to_world(),
                       image=img.astype(np.float32), id=r.o.id)

    def make_emitter_directional(self, r):
        irr = r.rgb("irradiance", 1.0)
        d = r.prop("direction", ("vector", "point"))
        tw = r.prop("to_world", ("transform",))
        if d is not None and tw is not None:
            raise self.err(d.el, "give either direction or to_world, not both")
        if d is not None:
            if not np.any(d.value):
                raise self.err(d.el, "direction is the zero vector")
            m = look_at(np.zeros(3), d.value, _coordinate_system_s(d.value / np.linalg.norm(d.value)))
        else:
            m = tw.value if tw is not None else np.eye(4)
        direction = m[:3, 2] / np.linalg.norm(m[:3, 2])
        return Emitter("directional", {"irradiance": irr, "direction": direction.astype(np.float32)}, m, id=r.o.id)

    # ---- shapes
    def make_shape(self, r) -> Shape:
        t = r.o.type
        m = r.to_world()
        flip = r.bool("flip_normals", False)
        shape = Shape(kind="mesh", type=t, bsdf=None, flip_normals=flip, to_world=m, id=r.o.id)
        if t == "sphere":
            center = r.vec("center", np.zeros(3))
            radius = r.float("radius", 1.0)
            if radius <= 0:
                raise self.err(r.o.props["radius"].el, f"radius must be positive, got {radius}")
            full = m @ translate(center) @ scale([radius] * 3)
            s = uniform_scale(full)
            if s is None:
                raise self.err(r.o.props["to_world"].el, "sphere to_world has non-uniform scale or shear "
                               "(analytic spheres need a uniform scale; use a mesh for ellipsoids)")
            if np.linalg.det(full[:3, :3]) < 0:
                raise self.err(r.o.props["to_world"].el, "sphere to_world mirrors (negative scale); "
                               "use flip_normals instead")
            if not (np.isfinite(full).all() and np.abs(full).max() <= _FLOAT32_MAX):
                raise self.err(r.o.el, "sphere center/radius/to_world overflow a 32-bit float")
            shape.kind, shape.center, shape.radius, shape.to_world = "sphere", full[:3, 3].copy(), float(s), full
        else:
            if t in ("obj", "ply"):
                shape.face_normals = r.bool("face_normals", False)
                flip_uv = r.bool("flip_tex_coords", t == "obj")
                p = self.path(r, "filename")
                try:
                    mesh = meshes.load_mesh_file(p, t, flip_uv)
                except meshes.MeshReadError as e:
                    raise self.err(r.o.props["filename"].el, f"{p.name}: {e}")
            elif t == "rectangle":
                mesh = meshes.rectangle()
            elif t == "cube":
                mesh = meshes.cube()
            else:
                mesh = meshes.tessellated_disk()
            if abs(np.linalg.det(m[:3, :3])) < 1e-12:
                raise self.err(r.o.props["to_world"].el, "to_world is singular (zero scale)")
            with np.errstate(over="ignore", invalid="ignore"):
                shape.vertices, shape.faces, shape.normals, shape.uvs = mesh.to_world(m)
            if not np.isfinite(shape.vertices).all():
                at = r.o.props["to_world"].el if "to_world" in r.o.props else r.o.el
                raise self.err(at, "world-space vertices overflow (to_world or file coordinates too large)")
            if shape.face_normals:
                shape.normals = None  # Mitsuba drops vertex normals and shades with the face normal
            elif shape.normals is None:
                # Mitsuba recomputes smooth normals for meshes that come without them
                shape.normals = meshes.angle_weighted_normals(shape.vertices, shape.faces).astype(np.float32)
        bsdfs, emitters = [], []
        named = [p.el for p in r.o.props.values() if p.kind in ("object", "ref")]
        r.object_props()
        for c in r.take_children() + named:
            target = self.defs.get(c.attrs.get("id", ""), c) if c.tag == "ref" else c
            if target.tag == "bsdf":
                bsdfs.append(c)
            elif target.tag == "emitter":
                if c.tag == "ref":
                    raise self.err(c, "an area emitter cannot be shared by reference; nest it in the shape")
                emitters.append(c)
            else:
                self.build(c, ("bsdf", "emitter"), r.o.el)  # raises: wrong kind or undefined id
        if len(bsdfs) > 1:
            raise self.err(bsdfs[1], f"a shape takes one bsdf (another is on line {bsdfs[0].line})")
        if len(emitters) > 1:
            raise self.err(emitters[1], f"a shape takes one emitter (another is on line {emitters[0].line})")
        # Mitsuba shape.cpp: a shape without a BSDF gets a diffuse one, black (reflectance 0) on emitters.
        default_albedo = 0.0 if emitters else 0.5
        shape.bsdf = (self.build(bsdfs[0], ("bsdf",), r.o.el) if bsdfs
                      else BSDF("diffuse", {"reflectance": np.full(3, default_albedo, dtype=np.float32)}))
        if emitters:
            e = self.build(emitters[0], ("emitter",), r.o.el)
            if e.type != "area":
                raise self.err(emitters[0], f"only an area emitter can be attached to a shape, not '{e.type}'")
            shape.emitter = e
        return shape

    # ---- sensor, film, sampler, integrator
    def make_sensor(self, r) -> Sensor:
        m = r.to_world()
        col = np.linalg.norm(m[:3, :3], axis=0)
        if np.abs(col - 1).max() > 1e-4 or abs(np.linalg.det(m[:3, :3]) - 1) > 1e-3 and \
                abs(np.linalg.det(m[:3, :3]) + 1) > 1e-3:
            raise self.err(r.o.props["to_world"].el, "scale factors in the camera-to-world transformation are "
                           "not allowed (as in Mitsuba)")
        near, far = r.float("near_clip", 1e-2), r.float("far_clip", 1e4)
        if not 0 < near < far:
            raise self.err(r.o.el, f"need 0 < near_clip < far_clip (got {near}, {far})")
        r.float("focus_distance", far)  # read (as Mitsuba's ProjectiveCamera does); a pinhole has no focus
        film, sampler = None, None
        for c in r.take_children() + r.object_props():
            obj = self.build(c, ("film", "sampler"), r.o.el)
            if isinstance(obj, Film):
                if film is not None:
                    raise self.err(c, "a sensor takes one film")
                film = obj
            else:
                if sampler is not None:
                    raise self.err(c, "a sensor takes one sampler")
                sampler = obj
        film = film or Film()
        sampler = sampler or Sampler()
        aspect = film.width / film.height
        fov_p, focal = r.prop("fov", ("float", "integer")), r.prop("focal_length", ("string",))
        if fov_p is not None and focal is not None:
            raise self.err(focal.el, "give either fov or focal_length, not both")
        if fov_p is not None:
            fov = float(fov_p.value)
            if not 0 < fov < 180:
                raise self.err(fov_p.el, f"fov must be in (0, 180) degrees, got {fov}")
            axis = r.choice("fov_axis", "x", ("x", "y", "diagonal", "smaller", "larger"), lower=True)
        else:
            text = focal.value if focal is not None else "50mm"
            mm = re.fullmatch(r"\s*([0-9.eE+-]+)\s*(mm)?\s*", text)
            f = self.number(focal.el if focal else r.o.el, mm.group(1) if mm else text, "focal_length")
            if f <= 0:
                raise self.err(focal.el, f"focal_length must be positive, got {text}")
            # Mitsuba: a 35 mm film (36 x 24 mm), fov along the diagonal.
            fov, axis = math.degrees(2 * math.atan(math.hypot(36, 24) / (2 * f))), "diagonal"
        return Sensor("perspective", m, fov, axis, fov_x_from(fov, axis, aspect), near, far, film, sampler)

    def make_film(self, r) -> Film:
        f = Film()
        f.width, f.height = r.int("width", 768), r.int("height", 576)
        for n in ("width", "height"):
            if getattr(f, n) <= 0:
                raise self.err(r.o.props[n].el, f"{n} must be positive, got {getattr(f, n)}")
        f.pixel_format = r.choice("pixel_format", "rgb", ("rgb", "rgba", "luminance", "luminance_alpha", "xyz", "xyza"))
        f.component_format = r.choice("component_format", "float16", ("float16", "float32", "uint32"))
        f.file_format = r.choice("file_format", "openexr", ("openexr", "rgbe", "pfm"), lower=True)
        f.crop_offset_x, f.crop_offset_y = r.int("crop_offset_x", 0), r.int("crop_offset_y", 0)
        f.crop_width = r.int("crop_width", f.width - f.crop_offset_x)
        f.crop_height = r.int("crop_height", f.height - f.crop_offset_y)
        if (f.crop_offset_x < 0 or f.crop_offset_y < 0 or f.crop_width <= 0 or f.crop_height <= 0
                or f.crop_offset_x + f.crop_width > f.width or f.crop_offset_y + f.crop_height > f.height):
            raise self.err(r.o.el, "crop window lies outside the film")
        f.sample_border = r.bool("sample_border", False)
        filters = r.take_children() + r.object_props()
        if len(filters) > 1:
            raise self.err(filters[1], "a film takes one rfilter")
        if filters:
            f.rfilter = self.build(filters[0], ("rfilter",), r.o.el)
        return f

    def make_rfilter(self, r) -> RFilter:
        if r.o.type == "box":
            return RFilter("box", 0.0)
        if r.o.type == "tent":
            radius = r.float("radius", 1.0)
            if radius <= 0:
                raise self.err(r.o.props["radius"].el, f"radius must be positive, got {radius}")
            return RFilter("tent", 0.0, radius)
        sd = r.float("stddev", 0.5)
        if sd <= 0:
            raise self.err(r.o.props["stddev"].el, f"stddev must be positive, got {sd}")
        return RFilter("gaussian", sd)

    def make_sampler(self, r) -> Sampler:
        s = Sampler("independent", r.int("sample_count", 4), r.int("seed", 0))
        if s.sample_count <= 0:
            raise self.err(r.o.props["sample_count"].el, f"sample_count must be positive, got {s.sample_count}")
        return s

    def make_integrator(self, r) -> Integrator:
        t = r.o.type
        if t == "aov":
            aovs = r.string("aovs", None)
            if aovs is None:
                raise self.err(r.o.el, "missing required parameter 'aovs' (e.g. \"dd.y:depth,nn:sh_normal\")")
            for item in [a for a in aovs.split(",") if a.strip()]:
                parts = item.strip().split(":")
                if len(parts) != 2 or not parts[0] or parts[1] not in AOV_TYPES:
                    raise self.err(r.o.props["aovs"].el, f"bad aov '{item.strip()}' (expected name:type with type "
                                   f"one of {', '.join(AOV_TYPES)})")
            nested = [self.build(c, ("integrator",), r.o.el) for c in r.take_children() + r.object_props()]
            return Integrator("aov", {"aovs": aovs}, nested)
        max_depth = r.int("max_depth", -1)
        if max_depth < -1:
            raise self.err(r.o.props["max_depth"].el, f"max_depth must be -1 (unbounded) or >= 0, got {max_depth}")
        params: dict[str, Any] = {"max_depth": max_depth} if t == "path" else {}
        if t == "path":
            params["rr_depth"] = r.int("rr_depth", 5)
            if params["rr_depth"] <= 0:
                raise self.err(r.o.props["rr_depth"].el, "rr_depth must be positive")
        else:
            params = {k: r.int(k, 1) for k in ("emitter_samples", "bsdf_samples")}
            shading = r.int("shading_samples", -1)
            if "shading_samples" in r.o.props:
                params = {"emitter_samples": shading, "bsdf_samples": shading}
            if any(v < 0 for v in params.values()):
                raise self.err(r.o.el, "sample counts must be >= 0")
        params["hide_emitters"] = r.bool("hide_emitters", False)
        return Integrator(t, params)


def _coordinate_system_s(n: np.ndarray) -> np.ndarray:
    """First tangent of Mitsuba's coordinate_system(n) (Duff et al. 2017), used as lookat's default up."""
    sign = 1.0 if n[2] >= 0 else -1.0
    a = -1.0 / (sign + n[2])
    b = n[0] * n[1] * a
    return np.array([n[0] * n[0] * a * sign + 1.0, b * sign, -n[0] * sign])


class Reader:
    """Typed access to one object's properties; remembers which were read so leftovers become errors."""

    def __init__(self, ld: Loader, o: Obj):
        self.ld, self.o = ld, o
        self.used: set[str] = set()
        self.asked: list[str] = []
        self.children_taken = False

    def prop(self, name: str, kinds: tuple[str, ...]) -> Optional[Prop]:
        if name not in self.asked:
            self.asked.append(name)
        p = self.o.props.get(name)
        if p is None:
            return None
        self.used.add(name)
        if p.kind not in kinds:
            got = f"<{p.el.tag}>"
            shown = [{"object": "a nested <texture>", "ref": "<ref id>"}.get(k, f"<{k}>") for k in kinds]
            raise self.ld.err(p.el, f"parameter '{name}' of {self.o.tag} '{self.o.type}' must be "
                                    f"{', '.join(shown[:-1]) + ' or ' if len(shown) > 1 else ''}{shown[-1]}, got {got}")
        return p

    def float(self, name: str, default: float) -> float:
        p = self.prop(name, ("float", "integer"))
        return default if p is None else float(p.value)

    def int(self, name: str, default: int) -> int:
        p = self.prop(name, ("integer",))
        return default if p is None else p.value

    def bool(self, name: str, default: bool) -> bool:
        p = self.prop(name, ("boolean",))
        return default if p is None else p.value

    def string(self, name: str, default):
        p = self.prop(name, ("string",))
        return default if p is None else p.value

    def choice(self, name: str, default: str, choices: tuple[str, ...], lower: bool = False) -> str:
        v = self.string(name, default)
        v = v.lower() if lower else v
        if v not in choices:
            raise self.ld.err(self.o.props[name].el,
                              f"'{v}' is not a valid {name} (expected one of: {', '.join(choices)})")
        return v

    def vec(self, name: str, default: np.ndarray) -> np.ndarray:
        p = self.prop(name, ("point", "vector"))
        return default if p is None else p.value

    def to_world(self) -> np.ndarray:
        p = self.prop("to_world", ("transform",))
        return np.eye(4) if p is None else p.value

    def to_uv(self) -> np.ndarray:
        p = self.prop("to_uv", ("transform",))
        m = np.eye(4) if p is None else p.value
        return m[np.ix_([0, 1, 3], [0, 1, 3])].astype(np.float32)

    def rgb(self, name: str, default) -> np.ndarray:
        """An RGB constant: <float>, <rgb> or <spectrum> (no textures)."""
        p = self.prop(name, ("float", "integer", "rgb", "spectrum"))
        if p is None:
            return np.broadcast_to(np.asarray(default, dtype=np.float32), (3,)).copy()
        if p.kind in ("float", "integer"):
            return np.full(3, p.value, dtype=np.float32)
        return p.value

    def color(self, name: str, default, bounded: bool = True):
        """Spectrum-or-texture parameter: RGB (3,) float32 or a Texture. bounded: an <rgb> must lie in
        [0, 1] (Mitsuba's reflectance spectra); eta, k and radiance are unbounded."""
        p = self.prop(name, ("float", "integer", "rgb", "spectrum", "object", "ref"))
        if p is not None and p.kind in ("object", "ref"):
            return self.object_prop(name, ("texture",))
        value = self.rgb(name, default)
        if bounded and p is not None and p.kind == "rgb" and (value.min() < 0 or value.max() > 1):
            raise self.ld.err(p.el, f"RGB reflectance {list(map(float, value))} must lie in [0, 1]")
        if bounded and p is not None and p.kind == "spectrum":
            value = np.clip(value, 0.0, 1.0)  # Mitsuba clamps out-of-gamut reflectance spectra (with a warning)
        return value

    def object_prop(self, name: str, expect: tuple[str, ...]):
        p = self.o.props[name]
        self.used.add(name)
        return self.ld.build(p.el, expect, self.o.el)

    def object_props(self) -> list[Element]:
        """Named nested objects/refs (a name on a film or sampler is allowed, as Mitsuba ignores it)."""
        out = []
        for name, p in self.o.props.items():
            if p.kind in ("object", "ref"):
                self.used.add(name)
                out.append(p.el)
        return out

    def ior(self, name: str, default: str) -> float:
        p = self.prop(name, ("float", "integer", "string"))
        if p is None:
            return mitsuba_tables.IORS[default]
        if p.kind != "string":
            return float(p.value)
        key = p.value.lower()
        if key not in mitsuba_tables.IORS:
            raise self.ld.err(p.el, f"unknown IOR name '{p.value}' (expected a number or one of: "
                                    f"{', '.join(mitsuba_tables.IORS)})")
        return mitsuba_tables.IORS[key]

    def microfacet(self, anisotropic: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"distribution": self.choice("distribution", "beckmann", ("beckmann", "ggx"), lower=True)}
        has_uv = "alpha_u" in self.o.props or "alpha_v" in self.o.props
        if anisotropic and has_uv:
            if "alpha" in self.o.props:
                raise self.ld.err(self.o.props["alpha"].el, "give either alpha or alpha_u/alpha_v, not both")
            if not ("alpha_u" in self.o.props and "alpha_v" in self.o.props):
                raise self.ld.err(self.o.el, "alpha_u and alpha_v must be given together")
            out["alpha_u"], out["alpha_v"] = self.alpha("alpha_u"), self.alpha("alpha_v")
        else:
            a = self.alpha("alpha")
            out["alpha_u"] = out["alpha_v"] = a
            if not anisotropic:
                out = {"distribution": out["distribution"], "alpha": a}
        out["sample_visible"] = self.bool("sample_visible", True)
        return out

    def alpha(self, name: str):
        p = self.prop(name, ("float", "integer", "object", "ref"))
        if p is None:
            return 0.1
        if p.kind in ("object", "ref"):
            return self.object_prop(name, ("texture",))
        if p.value < 0:
            raise self.ld.err(p.el, f"{name} must be >= 0, got {p.value}")
        return float(p.value)

    def take_children(self) -> list[Element]:
        self.children_taken = True
        return list(self.o.children)

    def finish(self) -> None:
        for name, p in self.o.props.items():
            if name not in self.used:
                known = self.asked
                close = difflib.get_close_matches(name, known, 1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                expected = ", ".join(known) if known else "no parameters"
                raise self.ld.err(p.el, f"unknown parameter '{name}' for {self.o.tag} '{self.o.type}' "
                                        f"({hint}expected: {expected})")
        if not self.children_taken and self.o.children:
            c = self.o.children[0]
            hint = " (a nested texture needs name=\"<parameter>\")" if c.tag == "texture" else ""
            raise self.ld.err(c, f"<{c.tag}> is not allowed inside <{self.o.el.describe()}>{hint}")


def _load(text: str | bytes, file: str, base_dir: Path, params: Optional[dict[str, str]],
          allow_outside: bool, source: Optional[Path]) -> Scene:
    root = parse_xml(text, file)
    if root.tag != "scene":
        raise error(file, root, "the root element must be <scene version=\"3.x.x\">")
    ld = Loader(file, base_dir, allow_outside)
    for k in root.attrs:
        if k != "version":
            raise error(file, root, f"unexpected attribute '{k}' (expected version)")
    if "version" not in root.attrs:
        raise error(file, root, "missing attribute 'version' (expected version=\"3.0.0\")")
    params = {str(k): str(v) for k, v in (params or {}).items()}
    substitute(root, params, file)
    version = root.attrs["version"]
    if not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise error(file, root, f"bad version '{version}' (expected major.minor.patch, e.g. 3.0.0)")
    if int(version.split(".")[0]) not in (2, 3):
        raise error(file, root, f"unsupported scene version {version} (expected 3.x.x; 2.x.x is read the same way)")
    ld.collect_ids(root)

    sensor, integrator = None, None
    shapes, emitters = [], []
    top_tags = ("shape", "bsdf", "emitter", "texture", "sensor", "integrator")
    for el in root.children:
        if el.tag in UNSUPPORTED_TAGS:
            raise error(file, el, f"<{el.tag}> is not supported by Radiant")
        if el.tag in ("film", "sampler", "rfilter"):
            raise error(file, el, f"<{el.tag}> must be nested inside "
                                  f"{'<sensor>' if el.tag != 'rfilter' else '<film>'}, not at the top level")
        if el.tag not in top_tags:
            if el.tag in PROPERTY_TAGS:
                raise error(file, el, f"<{el.tag}> is a property; at the top level expected one of: "
                                      f"{', '.join(top_tags)}, default")
            raise error(file, el, f"unknown element <{el.tag}> (expected one of: {', '.join(top_tags)}, default)")
        if "name" in el.attrs:
            raise error(file, el, "unexpected attribute 'name' on a top-level object")
        obj = ld.build(el, top_tags, root)
        if el.tag == "shape":
            shapes.append(obj)
            if obj.emitter is not None:
                emitters.append(obj.emitter)
        elif el.tag == "emitter":
            if obj.type == "area":
                raise error(file, el, "an area emitter must be nested inside a <shape>")
            emitters.append(obj)
        elif el.tag == "sensor":
            if sensor is not None:
                raise error(file, el, "only one sensor is supported")
            sensor = obj
        elif el.tag == "integrator":
            if integrator is not None:
                raise error(file, el, "only one integrator is allowed")
            integrator = obj
    bsdfs = {i: o for i, o in ld.built.items() if isinstance(o, BSDF)}
    textures = {i: o for i, o in ld.built.items() if isinstance(o, Texture)}
    # ids defined but never built (e.g. nested unused) were still validated when reached; build the rest
    for i, el in ld.defs.items():
        if i not in ld.built and el.tag in ("bsdf", "texture"):
            obj = ld.build_def(i, el)
            (bsdfs if isinstance(obj, BSDF) else textures)[i] = obj
    return Scene(sensor=sensor, integrator=integrator or Integrator(), shapes=shapes, emitters=emitters,
                 bsdfs=bsdfs, textures=textures, source=source)


def load_scene(path, params: Optional[dict[str, str]] = None, allow_outside: bool = False) -> Scene:
    """Load a Mitsuba 3 XML scene file. params override `<default>` values like mi.load_file(path, **params).

    Files referenced by the scene must lie in the scene's folder (or below) unless allow_outside is True.
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise SceneError(f"{p}: scene file not found") from None
    except OSError as e:
        raise SceneError(f"{p}: cannot read scene file ({e.strerror})") from None
    return _load(data, str(p), p.parent, params, allow_outside, p)


def load_string(xml: str, base_dir=".", params: Optional[dict[str, str]] = None, allow_outside: bool = False,
                name: str = "<string>") -> Scene:
    """Load a scene from an XML string; relative file names resolve against base_dir."""
    return _load(xml, name, Path(base_dir), params, allow_outside, None)
