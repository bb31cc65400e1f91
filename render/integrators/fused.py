"""The fused path tracer: SceneData packed into flat tables for the C++/CUDA kernel (cuda/include/radiant/path.h)
that traces whole paths per camera sample, and the passes that run it and splat the samples to the film.

Same integrator as PathIntegrator (path.py, the torch reference, used by the tests): NEE + MIS power heuristic,
Russian roulette as Mitsuba, Mitsuba's ray offsets, the same emitter / texture / BSDF math; only the random
numbers differ (PCG32 per (seed, pixel, sample index) instead of torch's generator per pass), so the expected
image is the same. Materials without a fused kernel (neural materials) are the seam: their BSDF rows carry a type
id >= DEFERRED_TYPE, and paths that reach them are exported by the kernel (see `deferred` in `trace`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..kernels.build import load
from .path import Film, PathIntegrator, RenderSettings
from .scene_data import AREA_MESH, AREA_SPHERE, CONSTANT, DEFERRED_TYPE, DIRECTIONAL, ENVMAP, POINT, SPOT, SceneData

# Order of the packed tensors; cuda/bind/path_bind.cpp kFields checks the same list.
PACKED_FIELDS = ("nodes", "prims", "prim_ids", "vertices", "faces", "normals", "uvs", "spheres", "prim_shape",
                 "shape_info", "shape_to_local", "bsdf_rows", "row_textures", "tex_info", "tex_params", "tex_data",
                 "emitter_info", "emitter_params", "tri_cdf", "tri_faces", "env_image", "env_marginal",
                 "env_conditional", "env_cell_pdf")

# Table layouts of path.h (kShapeInts, kRowTextures, kTexInts, kTexFloats, kEmitterInts, kEmitterFloats, EmitterFloat).
ROW_TEXTURES, TEX_INTS, TEX_FLOATS, EMITTER_FLOATS = 3, 8, 12, 24
EM_COLOR, EM_POS, EM_RADIUS, EM_AXIS, EM_CUTOFF, EM_BEAM, EM_AREA, EM_FRAME = 0, 3, 6, 7, 10, 11, 12, 13
EM_COS_CUTOFF, EM_COS_BEAM = 22, 23
FILTER_KINDS = {"box": 0, "gaussian": 1, "tent": 2}
WRAP_MODES = {"repeat": 0, "mirror": 1, "clamp": 2}


def unsupported_reason(sd: SceneData, settings: RenderSettings) -> str | None:
    """Why the fused kernel cannot render this scene (None when it can)."""
    if settings.aovs:
        return "AOVs are written by the torch integrator"
    if sd.bsdf_rows.numel() and bool((sd.bsdf_rows[:, 0] >= DEFERRED_TYPE).any()):
        return "materials evaluated by torch (layered, neural) are shaded by the torch integrator"
    for t in sd.textures.textures:
        if t.type == "bitmap" and t.image.shape[-1] == 2:
            return "two-channel bitmap textures"
    return None


class PackedScene:
    """SceneData as the flat tensors path.h reads (all on the SceneData's device)."""

    def __init__(self, sd: SceneData):
        dev = sd.device
        i32 = dict(dtype=torch.int32, device=dev)
        f32 = dict(dtype=torch.float32, device=dev)
        num_shapes = len(sd.scene.shapes)
        t = {}
        t["nodes"], t["prims"], t["prim_ids"] = sd.bvh.nodes, sd.bvh.prims, sd.bvh.prim_ids
        t["vertices"] = sd.vertices.float()
        t["faces"] = sd.faces.to(torch.int32)
        t["normals"] = sd.normals.float()
        t["uvs"] = sd.uvs.float()
        t["spheres"] = sd.spheres.float().reshape(-1, 4)
        t["prim_shape"] = sd.prim_shape.to(torch.int32)
        t["shape_info"] = torch.stack([sd.shape_flip.to(torch.int32), sd.shape_has_normals.to(torch.int32),
                                       sd.bsdf_of_shape.to(torch.int32), sd.shape_emitter.to(torch.int32)], 1) \
            if num_shapes else torch.zeros(0, 4, **i32)
        t["shape_to_local"] = sd.sphere_to_local.reshape(-1, 9).float()
        t["bsdf_rows"] = sd.bsdf_rows.float()

        # Textures: one info / params row each, bitmaps concatenated into one float array.
        row_tex = torch.full((len(sd.bsdf_rows), 2 * ROW_TEXTURES), -1, **i32)
        for r, textured in enumerate(sd.textured):
            if len(textured) > ROW_TEXTURES:
                raise ValueError(f"bsdf row {r}: more than {ROW_TEXTURES} textured fields")
            for k, (off, ti) in enumerate(textured):
                row_tex[r, 2 * k], row_tex[r, 2 * k + 1] = off, ti
        t["row_textures"] = row_tex
        tex_info, tex_params, data, offset = [], [], [], 0
        for tex in sd.textures.textures:
            info = [0] * TEX_INTS
            prm = np.zeros(TEX_FLOATS, np.float32)
            prm[:6] = np.asarray(tex.to_uv, np.float32)[:2].reshape(-1)
            if tex.type == "checkerboard":
                info[0] = 1
                prm[6:9] = np.broadcast_to(np.asarray(tex.params["color0"], np.float32).reshape(-1), (3,))
                prm[9:12] = np.broadcast_to(np.asarray(tex.params["color1"], np.float32).reshape(-1), (3,))
            else:
                img = np.ascontiguousarray(tex.image, np.float32)
                h, w, c = img.shape
                info[1] = 1 if tex.params.get("filter_type", "bilinear") == "nearest" else 0
                info[2] = WRAP_MODES[tex.params.get("wrap_mode", "repeat")]
                info[3:7] = [w, h, c, offset]
                data.append(img.reshape(-1))
                offset += img.size
            tex_info.append(info)
            tex_params.append(prm)
        t["tex_info"] = torch.tensor(tex_info, **i32).reshape(-1, TEX_INTS)
        t["tex_params"] = torch.from_numpy(np.array(tex_params, np.float32).reshape(-1, TEX_FLOATS)).to(dev)
        t["tex_data"] = torch.from_numpy(np.concatenate(data) if data else np.zeros(0, np.float32)).to(dev)

        # Emitters.
        ne = sd.num_emitters
        info = np.zeros((ne, 4), np.int32)
        prm = np.zeros((ne, EMITTER_FLOATS), np.float32)
        cdfs, tri_faces, begin = [], [], 0
        face_shape = sd.prim_shape[: sd.num_triangles]
        mesh_begin = 0  # position of the emitter's triangles in sd.tri_cdf / sd.tri_faces
        for e, (kind, p) in enumerate(zip(sd.emitter_kinds, sd.emitter_params)):
            info[e, 0] = kind
            info[e, 1] = p.get("shape", -1)
            if kind == AREA_MESH:
                count = int((face_shape == p["shape"]).sum())
                local = (sd.tri_cdf[mesh_begin:mesh_begin + count] - sd.emitter_rank[e]).float()
                local[-1] = 1.0
                cdfs.append(local)
                tri_faces.append(sd.tri_faces[mesh_begin:mesh_begin + count])
                info[e, 2], info[e, 3] = begin, count
                mesh_begin += count
                begin += count
                prm[e, EM_COLOR:EM_COLOR + 3] = p["radiance"]
                prm[e, EM_AREA] = p["area"]
            elif kind == AREA_SPHERE:
                from .emitters import _sphere_params

                center, radius = _sphere_params(sd, e)
                prm[e, EM_COLOR:EM_COLOR + 3] = p["radiance"]
                prm[e, EM_POS:EM_POS + 3] = center.cpu().numpy()
                prm[e, EM_RADIUS] = float(radius)
            elif kind in (POINT, SPOT):
                prm[e, EM_COLOR:EM_COLOR + 3] = p["intensity"]
                prm[e, EM_POS:EM_POS + 3] = p["pos"].cpu().numpy()
                if kind == SPOT:
                    prm[e, EM_AXIS:EM_AXIS + 3] = p["frame"][:, 2].cpu().numpy()
                    prm[e, EM_CUTOFF], prm[e, EM_BEAM] = p["cutoff"], p["beam"]
                    prm[e, EM_COS_CUTOFF], prm[e, EM_COS_BEAM] = math.cos(p["cutoff"]), math.cos(p["beam"])
            elif kind == DIRECTIONAL:
                prm[e, EM_COLOR:EM_COLOR + 3] = p["irradiance"]
                prm[e, EM_POS:EM_POS + 3] = p["dir"].cpu().numpy()
            elif kind == CONSTANT:
                prm[e, EM_COLOR:EM_COLOR + 3] = p["radiance"]
            elif kind == ENVMAP:
                prm[e, EM_FRAME:EM_FRAME + 9] = p["frame"].cpu().numpy().reshape(-1)
        t["emitter_info"] = torch.from_numpy(info).to(dev)
        t["emitter_params"] = torch.from_numpy(prm).to(dev)
        t["tri_cdf"] = torch.cat(cdfs).contiguous() if cdfs else torch.zeros(0, **f32)
        t["tri_faces"] = torch.cat(tri_faces).to(torch.int32) if tri_faces else torch.zeros(0, **i32)
        env = sd.emitter_params[sd.env] if sd.env is not None and sd.emitter_kinds[sd.env] == ENVMAP else None
        if env is not None:
            t["env_image"] = env["image"].float().contiguous()
            t["env_marginal"] = env["marginal"].float().contiguous()
            t["env_conditional"] = env["conditional"].float().contiguous()
            t["env_cell_pdf"] = env["cell_pdf"].float().contiguous()
        else:
            t["env_image"] = torch.zeros(0, 1, 3, **f32)
            t["env_marginal"] = torch.zeros(0, **f32)
            t["env_conditional"] = torch.zeros(0, 0, **f32)
            t["env_cell_pdf"] = torch.zeros(0, 0, **f32)
        self.tensors = [t[k].contiguous() for k in PACKED_FIELDS]
        self.num_triangles = sd.num_triangles
        self.env = -1 if sd.env is None else int(sd.env)


class FusedIntegrator(PathIntegrator):
    """PathIntegrator's camera and film, with the whole path traced by the fused kernel."""

    def __init__(self, sd: SceneData, settings: RenderSettings, packed: PackedScene | None = None, sensor=None):
        super().__init__(sd, settings, sensor)
        self.packed = packed if packed is not None else PackedScene(sd)
        self.camera = ([float(x) for x in self.cam_to_world.reshape(-1).tolist()]
                       + [float(x) for x in self.cam_pos.tolist()]
                       + [self.tan_x, self.tan_y, float(self.near), float(self.far)])
        kind = self.rfilter.type
        self.filter_kind = FILTER_KINDS[kind]
        self.filter_stddev = float(getattr(self.rfilter, "stddev", 0.5))
        self.filter_radius = {"box": 0.5, "gaussian": 4 * self.filter_stddev}.get(
            kind, self.rfilter.radius if self.rfilter.radius > 0 else 1.0)

    def trace(self, first_sample: int, layers: int, deferred_capacity: int = 0, window=None):
        """(pos (N,2), L (N,3), deferred (K,20), deferred count) for `layers` samples of every pixel of `window`
        ((x0, y0, w, h); default the whole film), sample indices first_sample .. first_sample + layers - 1. A pixel's
        samples depend only on (seed, pixel, sample index), so any split into windows and sample ranges gives the
        same samples. Deferred rows: o(3) d(3) beta(3) L(3) pos(2) eta prev_pdf prev_delta depth pixel sample, for
        paths that reached a material without a fused kernel."""
        s = self.s
        pos, L, deferred, count = load().path_trace(
            self.packed.tensors, self.packed.num_triangles, self.packed.env, self.camera, self.width, self.height,
            s.max_depth, s.rr_depth, s.hide_emitters, s.seed & 0x7FFFFFFFFFFFFFFF, first_sample, layers,
            deferred_capacity, list(window) if window is not None else [])
        return pos, L, deferred, int(count.item())

    def splat_margin(self) -> int:
        """How many pixels beyond its own a sample's filter footprint reaches."""
        return 0 if self.filter_kind == FILTER_KINDS["box"] else int(np.ceil(self.filter_radius))

    def render_window(self, window, first_sample: int, layers: int):
        """Samples first_sample .. +layers of the pixels in window (x0, y0, w, h), splatted into an accumulator over
        the window grown by the filter's reach (clipped to the film): (acc_window (x0, y0, w, h), acc (w h, 4)
        float64 of weighted RGB and weight sums). Summing such accumulators over a partition of the film's pixels
        and sample indices gives Film.acc of the whole render."""
        x0, y0, w, h = (int(v) for v in window)
        m = self.splat_margin()
        ax0, ay0 = max(0, x0 - m), max(0, y0 - m)
        ax1, ay1 = min(self.width, x0 + w + m), min(self.height, y0 + h + m)
        acc_window = (ax0, ay0, ax1 - ax0, ay1 - ay0)
        acc = torch.zeros((ax1 - ax0) * (ay1 - ay0), 4, dtype=torch.float64, device=self.sd.device)
        pos, L, _, deferred = self.trace(first_sample, layers, window=(x0, y0, w, h))
        if deferred:
            raise RuntimeError(f"{deferred} paths reached materials without a fused kernel")
        load().film_splat(acc, pos, L, self.width, self.height, self.filter_kind, self.filter_radius,
                          self.filter_stddev, [x0, y0, w, h, *acc_window])
        return acc_window, acc

    def render_pass(self, film: Film, aov_film, pass_index: int, spp_in_pass: int, progress=None,
                    first_sample: int | None = None):
        if first_sample is None:
            raise ValueError("first_sample: the fused integrator seeds by sample index; pass it")
        pos, L, _, deferred = self.trace(first_sample, spp_in_pass)
        if deferred:
            raise RuntimeError(f"{deferred} paths reached materials without a fused kernel")
        load().film_splat(film.acc, pos, L, self.width, self.height, self.filter_kind, self.filter_radius,
                          self.filter_stddev)
