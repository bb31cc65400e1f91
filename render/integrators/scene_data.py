"""A loaded Scene compiled to tensors on a device: BVH, surface attributes, BSDF rows with textures, emitter tables."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..bsdfs import FIELDS, TYPES, pack_bsdf
from ..bsdfs.torch_bsdf import TorchBSDF, torch_bsdf_plugin
from ..errors import UserError
from ..kernels.bvh import BVH
from ..scene import Scene, scene_geometry
from ..scene.types import BSDF, Texture
from ..textures import TextureTable

# Mitsuba's RayEpsilon (float epsilon * 1500) and ShadowEpsilon (10x): origin offsets along the normal.
RAY_EPS = 2.0 ** -24 * 1500
SHADOW_EPS = RAY_EPS * 10

# Emitter kinds in the compiled tables.
AREA_MESH, AREA_SPHERE, POINT, SPOT, DIRECTIONAL, CONSTANT, ENVMAP = range(7)
DELTA_KINDS = (POINT, SPOT, DIRECTIONAL)

# BSDF parameters that may be textures, and the row field each fills.
_TEXTURED_FIELDS = {
    ("diffuse", "reflectance"): "diffuse_reflectance",
    ("plastic", "diffuse_reflectance"): "diffuse_reflectance",
    ("roughplastic", "diffuse_reflectance"): "diffuse_reflectance",
}
_ANY_TEXTURED = {"specular_reflectance": "specular_reflectance", "specular_transmittance": "specular_transmittance"}
_DELTA_ONLY = {"conductor", "dielectric", "thindielectric"}
DEFERRED_TYPE = 100  # path.h kDeferredBSDFType: rows at or above it are torch materials (DEFERRED_TYPE + index)


@dataclass
class Surface:
    """Closest-hit surface attributes for a batch of rays."""
    p: torch.Tensor       # (N,3) position
    ng: torch.Tensor      # (N,3) geometric normal (flip_normals applied)
    ns: torch.Tensor      # (N,3) shading normal
    uv: torch.Tensor      # (N,2)
    shape: torch.Tensor   # (N,) long, index into scene.shapes
    t: torch.Tensor       # (N,) ray distance
    dp_du: torch.Tensor   # (N,3) surface tangent along u (zeros where undefined); orients anisotropic BSDFs


def _bsdf_row(bsdf: BSDF, textures: list[Texture], tex_index: dict[int, int], tex_table_means, where: str,
              torch_bsdfs: list[TorchBSDF], device):
    """(row (P,) float32, [(field offset, texture index)]) for one scene BSDF. Torch materials (layered, neural)
    are built and appended to `torch_bsdfs`; their row is a placeholder of type DEFERRED_TYPE + index."""
    twosided = False
    if bsdf.type == "twosided":
        if len(bsdf.nested) != 1:
            raise UserError(f"{where}: twosided with two different BSDFs is not supported yet; use one nested BSDF")
        bsdf, twosided = bsdf.nested[0], True
    plugin = torch_bsdf_plugin(bsdf.type) if bsdf.type not in TYPES else None
    if plugin is not None:
        material = plugin.factory(bsdf, where).to(device)
        torch_bsdfs.append(material)
        row = pack_bsdf("diffuse", twosided=twosided or bool(getattr(material, "twosided", False)))
        row[FIELDS["type"][0]] = DEFERRED_TYPE + len(torch_bsdfs) - 1
        return row, []
    if bsdf.type not in TYPES:
        raise UserError(f"{where}: bsdf type '{bsdf.type}' is not supported by the path tracer")
    props, textured = {}, []
    for name, value in bsdf.params.items():
        if isinstance(value, Texture):
            field = _TEXTURED_FIELDS.get((bsdf.type, name)) or _ANY_TEXTURED.get(name)
            if field is None:
                raise UserError(f"{where}: bsdf '{bsdf.type}' parameter '{name}' cannot be a texture yet")
            key = id(value)
            if key not in tex_index:
                tex_index[key] = len(textures)
                textures.append(value)
            ti = tex_index[key]
            mean = tex_table_means(value)
            props[name] = mean.tolist()
            if bsdf.type in ("plastic", "roughplastic"):
                props["diffuse_mean" if name == "diffuse_reflectance" else "specular_mean"] = float(np.mean(mean))
            textured.append((FIELDS[field][0], ti))
        else:
            props[name] = value.tolist() if isinstance(value, np.ndarray) else value
    # The loader resolves named materials / IORs into numbers and keeps the names; pack from the numbers.
    if "eta" in props and "material" in props:
        props.pop("material")
    if "int_ior" in props:
        props.pop("eta", None)
    try:
        row = pack_bsdf(bsdf.type, twosided=twosided, **props)
    except ValueError as e:
        raise UserError(f"{where}: {e}") from None
    return row, textured


def _texture_mean(tex: Texture) -> np.ndarray:
    if tex.type == "bitmap":
        m = tex.image.reshape(-1, tex.image.shape[-1]).mean(0)
        return np.repeat(m, 3) if m.size == 1 else m
    return 0.5 * (np.broadcast_to(np.asarray(tex.params["color0"], np.float32), (3,))
                  + np.broadcast_to(np.asarray(tex.params["color1"], np.float32), (3,)))


def _rgb(v) -> np.ndarray:
    return np.broadcast_to(np.asarray(v, np.float32).reshape(-1), (3,)).copy()


class SceneData:
    """Everything the integrators need, as tensors on `device`."""

    def __init__(self, scene: Scene, device="cpu"):
        self.scene = scene
        self.device = dev = torch.device(device)
        geo = scene_geometry(scene)
        f32 = dict(dtype=torch.float32, device=dev)
        self.num_triangles = len(geo.faces)
        self.vertices = torch.from_numpy(geo.vertices).to(dev)
        self.faces = torch.from_numpy(geo.faces).long().to(dev)
        self.normals = torch.from_numpy(geo.normals).to(dev)
        self.uvs = torch.from_numpy(geo.uvs).to(dev)
        self.spheres = torch.from_numpy(geo.spheres).to(dev)
        self.prim_shape = torch.from_numpy(geo.prim_shape).long().to(dev)
        bvh = BVH(geo.vertices, geo.faces, geo.spheres)
        self.bvh = bvh if dev.type == "cpu" else bvh.to(dev)
        shapes = scene.shapes
        self.shape_has_normals = torch.as_tensor(geo.has_normals & np.array([not s.face_normals for s in shapes],
                                                                            dtype=bool), device=dev)
        self.shape_has_uvs = torch.as_tensor(geo.has_uvs, device=dev)
        self.shape_flip = torch.as_tensor([s.flip_normals for s in shapes], device=dev, dtype=torch.bool)
        self.sphere_to_local = torch.stack([torch.from_numpy(np.linalg.inv(s.to_world)[:3, :3]).float()
                                            if s.kind == "sphere" else torch.eye(3) for s in shapes]).to(dev) \
            if shapes else torch.zeros(0, 3, 3, device=dev)
        self.sphere_to_world = torch.linalg.inv(self.sphere_to_local) if shapes else self.sphere_to_local

        # BSDFs: one packed row per distinct scene BSDF; textured fields recorded per row.
        rows, bsdf_of_shape, row_index, self.textured = [], [], {}, []
        textures: list[Texture] = []
        tex_index: dict[int, int] = {}
        self.delta_only_row = []
        self.torch_bsdfs: list[TorchBSDF] = []
        for i, s in enumerate(shapes):
            key = id(s.bsdf)
            if key not in row_index:
                where = f"shape {i} ({s.type}{' id=' + s.id if s.id else ''})"
                row, textured = _bsdf_row(s.bsdf, textures, tex_index, _texture_mean, where, self.torch_bsdfs, dev)
                row_index[key] = len(rows)
                rows.append(row)
                inner = s.bsdf.nested[0] if s.bsdf.type == "twosided" else s.bsdf
                self.delta_only_row.append(inner.type in _DELTA_ONLY)
                self.textured.append(textured)
            bsdf_of_shape.append(row_index[key])
        self.bsdf_rows = torch.stack(rows).to(dev) if rows else torch.zeros(0, 89, **f32)
        self.bsdf_of_shape = torch.as_tensor(bsdf_of_shape, dtype=torch.long, device=dev)
        self.row_delta_only = torch.as_tensor(self.delta_only_row, dtype=torch.bool, device=dev)
        self.textures = TextureTable(textures, dev)
        self.any_textured = any(self.textured)
        self._compile_emitters(scene, textures, tex_index)

    # ------------------------------------------------------------------------------------------------------
    def _compile_emitters(self, scene: Scene, textures, tex_index):
        dev = self.device
        kinds, params = [], []  # params: dict per emitter
        self.shape_emitter = torch.full((len(scene.shapes),), -1, dtype=torch.long, device=dev)
        tri_area, tri_index, tri_emitter = [], [], []
        face_shape = self.prim_shape[: self.num_triangles]
        for i, s in enumerate(scene.shapes):
            if s.emitter is None:
                continue
            e = len(kinds)
            self.shape_emitter[i] = e
            radiance = s.emitter.params.get("radiance", np.ones(3, np.float32))
            if isinstance(radiance, Texture):
                raise UserError(f"shape {i}: textured area emitter radiance is not supported yet")
            if s.kind == "sphere":
                kinds.append(AREA_SPHERE)
                params.append({"radiance": _rgb(radiance), "shape": i})
                continue
            kinds.append(AREA_MESH)
            faces = torch.nonzero(face_shape == i)[:, 0]
            v = self.vertices[self.faces[faces]]
            area = 0.5 * torch.linalg.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0]).norm(dim=1)
            params.append({"radiance": _rgb(radiance), "shape": i, "area": float(area.sum())})
            tri_area.append(area / area.sum().clamp_min(1e-30))
            tri_index.append(faces)
            tri_emitter.append(torch.full_like(faces, e))
        self.env = None
        for em in scene.emitters:
            if em.type == "area":  # listed by the scene too; compiled above with its shape
                continue
            e = len(kinds)
            p = em.params
            frame = torch.tensor(em.to_world[:3, :3], dtype=torch.float32, device=dev)
            pos = torch.tensor(em.to_world[:3, 3], dtype=torch.float32, device=dev)
            if em.type == "point":
                kinds.append(POINT)
                params.append({"intensity": _rgb(p.get("intensity", 1.0)), "pos": pos})
            elif em.type == "spot":
                cutoff = math.radians(float(p.get("cutoff_angle", 20.0)))
                beam = math.radians(float(p.get("beam_width", math.degrees(cutoff) * 3 / 4)))
                kinds.append(SPOT)
                params.append({"intensity": _rgb(p.get("intensity", 1.0)), "pos": pos, "frame": frame,
                               "cutoff": cutoff, "beam": beam})
            elif em.type == "directional":
                kinds.append(DIRECTIONAL)
                d = frame[:, 2] / frame[:, 2].norm()
                params.append({"irradiance": _rgb(p.get("irradiance", 1.0)), "dir": d})
            elif em.type in ("constant", "envmap"):
                if self.env is not None:
                    raise UserError("scene: only one environment emitter (constant or envmap) is supported")
                kinds.append(CONSTANT if em.type == "constant" else ENVMAP)
                self.env = e
                if em.type == "constant":
                    params.append({"radiance": _rgb(p.get("radiance", 1.0))})
                else:
                    params.append(self._compile_envmap(em, frame))
            else:
                raise UserError(f"emitter '{em.type}' is not supported by the path tracer")
        self.emitter_kinds = kinds
        self.emitter_params = params
        self.num_emitters = len(kinds)
        # Radiance of area emitters (zeros for the others), indexed by emitter.
        self.emitter_radiance = torch.tensor(
            np.array([p["radiance"] if k in (AREA_MESH, AREA_SPHERE) else np.zeros(3, np.float32)
                      for k, p in zip(kinds, params)], np.float32).reshape(-1, 3), device=dev)
        if tri_area:
            areas = torch.cat(tri_area)
            owner = torch.cat(tri_emitter)
            # One global CDF; each emitter's triangles occupy [rank, rank + 1) so that searchsorted(rank + u) picks
            # a triangle of that emitter with probability proportional to area.
            rank = torch.zeros(self.num_emitters, dtype=torch.float64, device=dev)
            mesh_ids = [e for e, k in enumerate(kinds) if k == AREA_MESH]
            rank[mesh_ids] = torch.arange(len(mesh_ids), dtype=torch.float64, device=dev)
            cdf = torch.zeros_like(areas, dtype=torch.float64)
            for e in mesh_ids:
                m = owner == e
                cdf[m] = torch.cumsum(areas[m].double(), 0) / areas[m].double().sum() + rank[e]
            self.tri_cdf = cdf
            self.tri_faces = torch.cat(tri_index)
            self.emitter_rank = rank
            self.emitter_inv_area = torch.tensor([1.0 / params[e]["area"] if k == AREA_MESH else 0.0
                                                  for e, k in enumerate(kinds)], dtype=torch.float32, device=dev)
        else:
            self.tri_cdf = None

    def _compile_envmap(self, em, frame):
        dev = self.device
        img = torch.from_numpy(np.ascontiguousarray(em.image, np.float32)).to(dev)
        if img.shape[-1] == 1:
            img = img.expand(-1, -1, 3)
        h, w, _ = img.shape
        scale = float(em.params.get("scale", 1.0))
        lum = (img * torch.tensor([0.212671, 0.715160, 0.072169], device=dev)).sum(-1)  # sRGB luminance
        # Mitsuba's envmap.cpp samples its bitmap with corner alignment: column i at u = i / w (wrapping), row j at
        # v = j / (h - 1). Sampling cells are [j, j+1] x [i, i+1] in texel units: (h-1) x w cells.
        lum_wrap = torch.cat([lum, lum[:, :1]], 1)
        corner_max = torch.maximum(torch.maximum(lum_wrap[:-1, :-1], lum_wrap[:-1, 1:]),
                                   torch.maximum(lum_wrap[1:, :-1], lum_wrap[1:, 1:]))
        theta = (torch.arange(h - 1, device=dev, dtype=torch.float32) + 0.5) / (h - 1) * math.pi
        weight = (corner_max + 1e-6 * corner_max.max().clamp_min(1e-12)) * torch.sin(theta)[:, None]
        weight = weight.double()
        row_sum = weight.sum(1)
        total = row_sum.sum()
        return {
            "image": torch.cat([img, img[:, :1]], 1) * scale,  # (h, w+1, 3) with the wrap column
            "frame": frame, "to_local": frame.T.contiguous(), "w": w, "h": h,
            "marginal": torch.cumsum(row_sum / total, 0).float(),
            "conditional": (torch.cumsum(weight, 1) / row_sum[:, None]).float(),
            "cell_pdf": (weight / total).float(),  # probability per cell
        }

    # ------------------------------------------------------------------------------------------------------
    def surface(self, o: torch.Tensor, d: torch.Tensor, t: torch.Tensor, prim: torch.Tensor, u: torch.Tensor,
                v: torch.Tensor) -> Surface:
        """Surface attributes at hits (prim >= 0 everywhere)."""
        n = len(prim)
        p = o + t[:, None] * d
        shape = self.prim_shape[prim.long()]
        ng = torch.zeros(n, 3, device=self.device)
        ns = torch.zeros(n, 3, device=self.device)
        uv = torch.zeros(n, 2, device=self.device)
        dp_du = torch.zeros(n, 3, device=self.device)
        tri = prim < self.num_triangles
        if tri.any():
            f = self.faces[prim[tri].long()]
            v0, v1, v2 = self.vertices[f[:, 0]], self.vertices[f[:, 1]], self.vertices[f[:, 2]]
            g = torch.linalg.cross(v1 - v0, v2 - v0)
            g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-30)
            b1, b2 = u[tri][:, None], v[tri][:, None]
            b0 = 1 - b1 - b2
            sn = self.normals[f[:, 0]] * b0 + self.normals[f[:, 1]] * b1 + self.normals[f[:, 2]] * b2
            sn = sn / sn.norm(dim=1, keepdim=True).clamp_min(1e-30)
            has_n = self.shape_has_normals[shape[tri]][:, None]
            ng[tri] = g
            ns[tri] = torch.where(has_n, sn, g)
            t0, t1, t2 = self.uvs[f[:, 0]], self.uvs[f[:, 1]], self.uvs[f[:, 2]]
            uv[tri] = t0 * b0 + t1 * b1 + t2 * b2
            # Mitsuba mesh.cpp: dp_du from the uv parametrization when the mesh has uvs and it is not degenerate.
            duv1, duv2 = t1 - t0, t2 - t0
            det = duv1[:, 0] * duv2[:, 1] - duv1[:, 1] * duv2[:, 0]
            ok = (det != 0) & self.shape_has_uvs[shape[tri]]
            tangent = (duv2[:, 1:2] * (v1 - v0) - duv1[:, 1:2] * (v2 - v0)) / torch.where(ok, det, 1.0)[:, None]
            dp_du[tri] = torch.where(ok[:, None], tangent, 0.0)
        sph = ~tri
        if sph.any():
            s = self.spheres[prim[sph].long() - self.num_triangles]
            g = (p[sph] - s[:, :3]) / s[:, 3:4]
            g = g / g.norm(dim=1, keepdim=True)
            ng[sph] = g
            ns[sph] = g
            # Mitsuba sphere uv from the local frame: u = phi / 2pi, v = theta / pi.
            loc = torch.einsum("nij,nj->ni", self.sphere_to_local[shape[sph]], g)
            loc = loc / loc.norm(dim=1, keepdim=True)
            phi = torch.atan2(loc[:, 1], loc[:, 0])
            phi = torch.where(phi < 0, phi + 2 * math.pi, phi)
            uv[sph] = torch.stack([phi / (2 * math.pi), torch.acos(loc[:, 2].clamp(-1, 1)) / math.pi], 1)
            # Mitsuba sphere.cpp: dp_du = to_world * 2 pi (-y, x, 0) in the unit sphere's local frame; its length
            # (2 pi r sin theta) sets the uv footprint of the neural materials' LOD.
            local_du = 2 * math.pi * torch.stack([-loc[:, 1], loc[:, 0], torch.zeros_like(loc[:, 0])], 1)
            dp_du[sph] = torch.einsum("nij,nj->ni", self.sphere_to_world[shape[sph]], local_du)
        flip = self.shape_flip[shape][:, None]
        ng = torch.where(flip, -ng, ng)
        ns = torch.where(flip, -ns, ns)
        return Surface(p=p, ng=ng, ns=ns, uv=uv, shape=shape, t=t, dp_du=dp_du)

    def bsdf_params(self, surf: Surface) -> tuple[torch.Tensor, torch.Tensor]:
        """(params table, index per hit) for the BSDF kernels, with textured fields looked up at the hits' uvs."""
        row = self.bsdf_of_shape[surf.shape]
        if not self.any_textured:
            return self.bsdf_rows, row
        extra, index = [], row.clone()
        base = len(self.bsdf_rows)
        for r, textured in enumerate(self.textured):
            if not textured:
                continue
            sel = torch.nonzero(row == r)[:, 0]
            if len(sel) == 0:
                continue
            rows = self.bsdf_rows[r].expand(len(sel), -1).clone()
            for off, ti in textured:
                rows[:, off:off + 3] = self.textures.eval(ti, surf.uv[sel])
            index[sel] = base + sum(len(x) for x in extra) + torch.arange(len(sel), device=self.device)
            extra.append(rows)
        params = torch.cat([self.bsdf_rows, *extra]) if extra else self.bsdf_rows
        return params, index
