"""Wavefront unidirectional path tracer with next-event estimation and MIS, as Mitsuba 3's `path` integrator.

Each bounce is a set of batched stages over the live paths: closest hit (BVH kernel) -> emission with MIS ->
emitter sampling + shadow rays (any-hit kernel) + BSDF eval/pdf (BSDF kernels) -> BSDF sampling -> Russian
roulette. Stages run on the CPU kernels or on CUDA, by the tensors' device. Rays that hit a material without a
fused kernel (layered reference, neural materials: render/bsdfs/torch_bsdf.py) get their own stage: their rows
(type DEFERRED_TYPE + index) are evaluated and sampled by one batched TorchBSDF call per material per bounce, with
the same NEE + MIS as analytic rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..bsdfs import FIELDS, FLAGS, bsdf_eval, bsdf_pdf, bsdf_sample
from ..bsdfs.torch_bsdf import dispatch, flip_to_front
from ..core.warp import coordinate_system
from ..scene.camera import camera_frame
from .emitters import area_pdf, env_eval, env_pdf, sample_emitters
from .scene_data import DEFERRED_TYPE, RAY_EPS, SHADOW_EPS, SceneData

DELTA_FLAGS = 1 | 32 | 64  # Mitsuba BSDFFlags::Delta = Null | DeltaReflection | DeltaTransmission

# Test-only perturbations, to show that the regression suite catches a broken integrator:
# "drop_mis": both strategies get weight 1 (light counted twice where NEE and BSDF sampling overlap).
TEST_HOOKS: dict[str, bool] = {}


@dataclass
class RenderSettings:
    spp: int                 # the image's spp (sets the LOD footprint scale; passes choose their own counts)
    max_depth: int = -1      # -1: unbounded (Russian roulette ends paths), as Mitsuba
    rr_depth: int = 5
    hide_emitters: bool = False
    seed: int = 0
    width: int = 0
    height: int = 0
    aovs: tuple = ()
    samples_per_pass: int = 1 << 20


@dataclass
class RenderResult:
    rgb: np.ndarray                       # (H,W,3) linear
    aovs: dict = field(default_factory=dict)
    samples: int = 0
    seconds: float = 0.0
    integrator: str = "torch"             # which integrator rendered it: "fused" or "torch"


def mis_weight(pdf_a: torch.Tensor, pdf_b: torch.Tensor) -> torch.Tensor:
    """Power heuristic (beta = 2), as Mitsuba's mis_weight: 0 where pdf_a is 0. Written as 1 / (1 + (b/a)^2) so
    that huge pdfs (grazing light samples) do not overflow to inf / inf."""
    if TEST_HOOKS.get("drop_mis"):
        return (pdf_a > 0).to(pdf_a.dtype)
    ratio = pdf_b / pdf_a.clamp_min(1e-30)
    w = 1.0 / (1.0 + ratio * ratio)
    return torch.where((pdf_a > 0) & torch.isfinite(w), w, torch.zeros_like(pdf_a))


def shading_frame(n: torch.Tensor, dp_du: torch.Tensor):
    """Tangents (s, t) about unit n as Mitsuba's SurfaceInteraction::initialize_sh_frame: s is dp_du made
    orthogonal to n (Gram-Schmidt), t = n x s; where dp_du is missing or parallel to n, Duff et al.'s basis."""
    s = dp_du - n * (n * dp_du).sum(1, keepdim=True)
    length = s.norm(dim=1, keepdim=True)
    fs, ft = coordinate_system(n)
    good = length > 1e-12
    s = torch.where(good, s / length.clamp_min(1e-30), fs)
    t = torch.where(good, torch.linalg.cross(n, s), ft)
    return s, t


def to_local(v, s, t, n):
    return torch.stack([(v * s).sum(1), (v * t).sum(1), (v * n).sum(1)], 1)


def to_world(v, s, t, n):
    return s * v[:, :1] + t * v[:, 1:2] + n * v[:, 2:3]


def offset_origin(p: torch.Tensor, ng: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Mitsuba's SurfaceInteraction::offset_p: push along the geometric normal toward the side d leaves on."""
    mag = (1 + p.abs().max(dim=1).values) * RAY_EPS
    side = torch.where((ng * d).sum(1) >= 0, 1.0, -1.0)
    return p + ng * (mag * side)[:, None]


class Film:
    """Accumulates weighted samples with the film's reconstruction filter (box, gaussian or tent), as Mitsuba's
    ImageBlock: each sample adds filter(x_pixel_center - x_sample) * value to the pixels within the radius."""

    def __init__(self, width: int, height: int, rfilter, channels: int, device):
        self.w, self.h, self.c = width, height, channels
        self.acc = torch.zeros(height * width, channels + 1, dtype=torch.float64, device=device)
        self.kind = rfilter.type
        if self.kind == "box":
            self.radius = 0.5
        elif self.kind == "gaussian":
            self.stddev = rfilter.stddev
            self.radius = 4 * rfilter.stddev
        else:  # tent
            self.radius = rfilter.radius if rfilter.radius > 0 else 1.0

    def _weight(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "box":
            return ((x >= -0.5) & (x < 0.5)).float()
        if self.kind == "gaussian":
            s = self.stddev
            # Mitsuba gaussian.cpp: exp(-x^2 / 2s^2) minus its value at the radius, clamped at 0.
            return (torch.exp(-x * x / (2 * s * s)) - math.exp(-self.radius ** 2 / (2 * s * s))).clamp_min(0)
        return (1 - x.abs() / self.radius).clamp_min(0)

    def splat(self, pos: torch.Tensor, values: torch.Tensor):
        """pos (N,2) continuous pixel coordinates (x right, y down), values (N,C)."""
        if self.kind == "box":
            xi = pos[:, 0].floor().long().clamp(0, self.w - 1)
            yi = pos[:, 1].floor().long().clamp(0, self.h - 1)
            row = torch.cat([values, torch.ones(len(values), 1, device=values.device)], 1).double()
            self.acc.index_add_(0, yi * self.w + xi, row)
            return
        r = self.radius
        span = int(math.ceil(2 * r)) + 1
        base = torch.floor(pos - r + 0.5).long()  # first pixel whose center (i + 0.5) is within the radius
        offs = torch.arange(span, device=pos.device)
        px = base[:, 0:1] + offs[None]  # (N, span)
        py = base[:, 1:2] + offs[None]
        wx = self._weight(px.float() + 0.5 - pos[:, 0:1]) * ((px >= 0) & (px < self.w))
        wy = self._weight(py.float() + 0.5 - pos[:, 1:2]) * ((py >= 0) & (py < self.h))
        w = (wy[:, :, None] * wx[:, None, :]).reshape(len(pos), -1)  # (N, span*span)
        idx = (py.clamp(0, self.h - 1)[:, :, None] * self.w + px.clamp(0, self.w - 1)[:, None, :]).reshape(len(pos), -1)
        keep = w > 0
        wk = w[keep].double()
        vals = values.double()[:, None, :].expand(-1, span * span, -1)[keep]
        self.acc.index_add_(0, idx[keep], torch.cat([vals * wk[:, None], wk[:, None]], 1))

    def develop(self) -> np.ndarray:
        w = self.acc[:, -1:]
        img = torch.where(w > 0, self.acc[:, :-1] / w.clamp_min(1e-300), torch.zeros_like(self.acc[:, :-1]))
        return img.reshape(self.h, self.w, self.c).float().cpu().numpy()


class PathIntegrator:
    """Mitsuba-compatible `path` integrator over a SceneData."""

    def __init__(self, sd: SceneData, settings: RenderSettings, sensor=None):
        """sensor: the camera to render from (default: the scene's); e.g. a viewer's moved copy of it."""
        self.sd, self.s = sd, settings
        sensor = sensor if sensor is not None else sd.scene.sensor
        self.width = settings.width or sensor.film.width
        self.height = settings.height or sensor.film.height
        to_world, fov_x, fov_y = camera_frame(sensor, self.width, self.height)
        dev = sd.device
        self.cam_to_world = torch.tensor(to_world[:3, :3], dtype=torch.float32, device=dev)
        self.cam_pos = torch.tensor(to_world[:3, 3], dtype=torch.float32, device=dev)
        self.tan_x = math.tan(math.radians(fov_x) / 2)
        self.tan_y = math.tan(math.radians(fov_y) / 2)
        self.near = sensor.near_clip
        self.far = sensor.far_clip
        self.rfilter = sensor.film.rfilter

    # ------------------------------------------------------------------------------------------------------
    def camera_rays(self, film_pos: torch.Tensor):
        """film_pos (N,2) in [0,1]^2 (x right, y down) -> world rays as Mitsuba's perspective sensor."""
        d = torch.stack([(1 - 2 * film_pos[:, 0]) * self.tan_x, (1 - 2 * film_pos[:, 1]) * self.tan_y,
                         torch.ones(len(film_pos), device=film_pos.device)], 1)
        d = d / d.norm(dim=1, keepdim=True)
        # Mitsuba starts the ray at the near clip plane: maxt/mint from near_clip / cos.
        tmin = self.near / d[:, 2]
        tmax = self.far / d[:, 2]
        dw = d @ self.cam_to_world.T
        return self.cam_pos.expand(len(d), 3).contiguous(), dw.contiguous(), tmin, tmax

    def render_pass(self, film: Film, aov_film: Film | None, pass_index: int, spp_in_pass: int, progress=None):
        sd, s = self.sd, self.s
        dev = sd.device
        gen = torch.Generator(device=dev)
        gen.manual_seed((s.seed * 1_000_003 + pass_index * 7919) & 0x7FFFFFFFFFFFFFFF)
        rand = lambda *shape: torch.rand(*shape, generator=gen, device=dev)
        n_pix = self.width * self.height
        n = n_pix * spp_in_pass
        pix = torch.arange(n, device=dev) % n_pix
        pos = torch.stack([(pix % self.width).float(), (pix // self.width).float()], 1) + rand(n, 2)
        o, d, tmin, tmax = self.camera_rays(pos / torch.tensor([self.width, self.height], device=dev))
        L = self.trace(o, d, tmin, tmax, rand, aov_out=(aov := {}) if aov_film is not None else None)
        if film is not None:  # None: AOVs only (the viewer's AOV views)
            film.splat(pos, L)
        if aov_film is not None and aov:
            aov_film.splat(pos, torch.cat([aov[k] for k in self.s.aovs], 1))

    def trace(self, o, d, tmin, tmax, rand, aov_out=None) -> torch.Tensor:
        sd, s = self.sd, self.s
        dev = o.device
        n = len(o)
        L = torch.zeros(n, 3, device=dev)
        idx = torch.arange(n, device=dev)
        beta = torch.ones(n, 3, device=dev)
        eta = torch.ones(n, device=dev)
        prev_pdf = torch.zeros(n, device=dev)
        prev_delta = torch.ones(n, dtype=torch.bool, device=dev)
        prev_p = o.clone()
        depth = 0
        max_depth = s.max_depth if s.max_depth >= 0 else 1 << 30
        if aov_out is not None:
            for k in s.aovs:
                aov_out[k] = torch.zeros(n, 1 if k == "depth" else 3, device=dev)
        while len(idx) > 0 and max_depth > 0:
            hits = sd.bvh.closest_hit(o, d, tmin, tmax)
            hit = hits.hit
            # ---- environment seen along escaping rays
            miss = ~hit
            if miss.any() and sd.env is not None:
                Le = env_eval(sd, d[miss])
                w = torch.where(prev_delta[miss], torch.ones_like(prev_pdf[miss]),
                                mis_weight(prev_pdf[miss], env_pdf(sd, d[miss])))
                if depth == 0 and s.hide_emitters:
                    w = torch.zeros_like(w)
                L.index_add_(0, idx[miss], beta[miss] * Le * w[:, None])
            keep = torch.nonzero(hit)[:, 0]
            idx, o, d, beta, eta = idx[keep], o[keep], d[keep], beta[keep], eta[keep]
            prev_pdf, prev_delta, prev_p = prev_pdf[keep], prev_delta[keep], prev_p[keep]
            if len(idx) == 0:
                break
            surf = sd.surface(o, d, hits.t[keep], hits.prim[keep], hits.u[keep], hits.v[keep])
            if depth == 0 and aov_out is not None:
                self._write_aovs(aov_out, idx, surf)
            # ---- emission from hit area lights, MIS-weighted against NEE
            emitter = sd.shape_emitter[surf.shape]
            lit = torch.nonzero(emitter >= 0)[:, 0]
            if len(lit) and not (depth == 0 and s.hide_emitters):
                em = emitter[lit]
                front = (surf.ns[lit] * -d[lit]).sum(1) > 0
                pdf_l = area_pdf(sd, em, prev_p[lit], surf.p[lit], surf.ns[lit], d[lit] / d[lit].norm(dim=1, keepdim=True))
                w = torch.where(prev_delta[lit], torch.ones_like(pdf_l), mis_weight(prev_pdf[lit], pdf_l))
                contrib = beta[lit] * sd.emitter_radiance[em] * (w * front)[:, None]
                L.index_add_(0, idx[lit], contrib)
            depth += 1
            if depth >= max_depth:
                break
            # ---- shading frame and BSDF rows
            s_ax, t_ax = shading_frame(surf.ns, surf.dp_du)
            dn = d / d.norm(dim=1, keepdim=True)
            wi = to_local(-dn, s_ax, t_ax, surf.ns)
            params, row = sd.bsdf_params(surf)
            smooth = ~sd.row_delta_only[sd.bsdf_of_shape[surf.shape]]
            torch_mat, twosided = self._torch_rows(params, row)
            # primary hits: the pixel footprint, for materials that filter by it (neural latent pyramid LOD)
            fp = self._footprint(surf, dn) if depth == 1 and torch_mat is not None else None
            m = len(idx)
            # ---- next-event estimation
            ne_sel = torch.nonzero(smooth)[:, 0] if sd.num_emitters else torch.zeros(0, dtype=torch.long, device=dev)
            u_em = rand(m, 4)
            if len(ne_sel):
                ref = surf.p[ne_sel]
                es = sample_emitters(sd, ref, u_em[ne_sel])
                ok = (es.weight.abs().sum(1) > 0)
                so = offset_origin(ref, surf.ng[ne_sel], es.d)
                finite = torch.isfinite(es.dist)
                sdir = torch.where(finite[:, None], es.target - so, es.d)
                smax = torch.where(finite, torch.full_like(es.dist, 1 - SHADOW_EPS), torch.full_like(es.dist, math.inf))
                occluded = sd.bvh.any_hit(so.contiguous(), sdir.contiguous(), 0.0, smax)
                wo_l = to_local(es.d, s_ax[ne_sel], t_ax[ne_sel], surf.ns[ne_sel])
                f = bsdf_eval(params, wi[ne_sel].contiguous(), wo_l.contiguous(), row[ne_sel])
                pdf_b = bsdf_pdf(params, wi[ne_sel].contiguous(), wo_l.contiguous(), row[ne_sel])
                if torch_mat is not None:
                    f, pdf_b = self._torch_eval(torch_mat[ne_sel], twosided[ne_sel], surf.uv[ne_sel], wi[ne_sel],
                                                wo_l, f, pdf_b, None if fp is None else fp[ne_sel])
                w = torch.where(es.delta, torch.ones_like(pdf_b), mis_weight(es.pdf, pdf_b))
                contrib = beta[ne_sel] * f * es.weight * (w * (ok & ~occluded))[:, None]
                L.index_add_(0, idx[ne_sel], contrib)
            # ---- BSDF sampling
            u_b = rand(m, 3)
            wo_l, weight, pdf, eta_s, flags = bsdf_sample(params, wi.contiguous(), u_b[:, 0].contiguous(),
                                                          u_b[:, 1:3].contiguous(), row)
            if torch_mat is not None:
                wo_l, weight, pdf, eta_s, flags = self._torch_sample(torch_mat, twosided, surf.uv, wi, u_b,
                                                                     (wo_l, weight, pdf, eta_s, flags), fp)
            wo = to_world(wo_l, s_ax, t_ax, surf.ns)
            beta = beta * weight
            eta = eta * eta_s
            prev_delta = (flags & DELTA_FLAGS) != 0
            prev_pdf = pdf
            prev_p = surf.p
            o = offset_origin(surf.p, surf.ng, wo)
            d = wo
            tmin = torch.zeros(m, device=dev)
            tmax = torch.full((m,), math.inf, device=dev)
            # ---- Russian roulette (Mitsuba: q = min(max(beta) * eta^2, 0.95) from rr_depth on)
            bmax = beta.max(dim=1).values
            alive = bmax > 0
            if depth >= s.rr_depth:
                q = torch.clamp(bmax * eta * eta, max=0.95)
                survive = rand(m) < q
                beta = torch.where(survive[:, None], beta / q.clamp_min(1e-30)[:, None], beta)
                alive &= survive
            keep = torch.nonzero(alive)[:, 0]
            idx, o, d, beta, eta = idx[keep], o[keep], d[keep], beta[keep], eta[keep]
            prev_pdf, prev_delta, prev_p = prev_pdf[keep], prev_delta[keep], prev_p[keep]
            tmin, tmax = tmin[keep], tmax[keep]
        return L

    # ------------------------------------------------------------------------------------------------------
    # Torch stage: materials evaluated by TorchBSDF (render/bsdfs/torch_bsdf.py), one batched call per material.

    def _torch_rows(self, params, row):
        """(index into sd.torch_bsdfs per item, -1 for analytic rows; twosided flag per item), or (None, None)
        when the scene has no torch materials."""
        if not self.sd.torch_bsdfs:
            return None, None
        p = params[row]
        which = p[:, FIELDS["type"][0]].round().long() - DEFERRED_TYPE
        return torch.where(which >= 0, which, -1), p[:, FIELDS["twosided"][0]] != 0

    def _footprint(self, surf, d):
        """(N,) width of the pixel's footprint on the surface in uv units (0 where dp_du is undefined): the pixel
        cone's width at the hit distance, stretched by 1/sqrt|cos| (geometric mean of the two axes), over |dp_du|.
        Scaled by max(1/8, 1/sqrt(spp)) as pbrt-v4 scales camera ray differentials: the spp samples of a pixel
        already integrate its footprint, so prefiltering each at the full footprint would blur twice."""
        pixel = 2 * self.tan_x / self.width * max(0.125, 1 / math.sqrt(self.s.spp))
        cos = (d * surf.ng).sum(1).abs().clamp_min(1e-3)
        width = surf.t * pixel / cos.sqrt()
        du = surf.dp_du.norm(dim=1)
        return torch.where(du > 0, width / du.clamp_min(1e-30), torch.zeros_like(du))

    @staticmethod
    def _footprint_kw(bsdf, footprint, k) -> dict:
        return {"footprint": footprint[k]} if footprint is not None and getattr(bsdf, "uses_footprint", False) \
            else {}

    def _torch_eval(self, which, twosided, uv, wi, wo, f, pdf, footprint=None):
        sel = torch.nonzero(which >= 0)[:, 0]
        if len(sel) == 0:
            return f, pdf
        _, wi_f, wo_f = flip_to_front(wi[sel], wo[sel], twosided[sel])
        uv_s = uv[sel]
        fp = None if footprint is None else footprint[sel]

        def call(b, k):
            kw = self._footprint_kw(b, fp, k)
            return b.eval(uv_s[k], wi_f[k], wo_f[k], **kw), b.pdf(uv_s[k], wi_f[k], wo_f[k], **kw)

        f_t, pdf_t = dispatch(self.sd.torch_bsdfs, which[sel], call, len(sel), ((3,), ()), wi.device)
        f, pdf = f.clone(), pdf.clone()
        f[sel], pdf[sel] = f_t, pdf_t
        return f, pdf

    def _torch_sample(self, which, twosided, uv, wi, u_b, analytic, footprint=None):
        sel = torch.nonzero(which >= 0)[:, 0]
        if len(sel) == 0:
            return analytic
        wo, weight, pdf, eta_s, flags = (t.clone() for t in analytic)
        flip, wi_f, _ = flip_to_front(wi[sel], None, twosided[sel])
        uv_s, u_s = uv[sel], u_b[sel]
        fp = None if footprint is None else footprint[sel]
        wo_t, w_t, pdf_t = dispatch(self.sd.torch_bsdfs, which[sel],
                                    lambda b, k: b.sample(uv_s[k], wi_f[k], u_s[k, 1:3], u_s[k, 0],
                                                          **self._footprint_kw(b, fp, k)),
                                    len(sel), ((3,), (3,), ()), wi.device)
        ok = (pdf_t > 0) & torch.isfinite(w_t).all(1)
        wo_t = torch.where(flip[:, None], wo_t * torch.tensor([1.0, 1.0, -1.0], device=wi.device), wo_t)
        wo[sel] = torch.where(ok[:, None], wo_t, 0.0)
        weight[sel] = torch.where(ok[:, None], w_t, 0.0)
        pdf[sel] = torch.where(ok, pdf_t, 0.0)
        eta_s[sel] = 1.0
        flags[sel] = torch.where(ok, FLAGS["glossy_reflection"], 0).to(flags.dtype)
        return wo, weight, pdf, eta_s, flags

    def _write_aovs(self, aov, idx, surf):
        for k in self.s.aovs:
            if k == "depth":
                aov[k][idx] = surf.t[:, None]
            elif k == "normal":
                aov[k][idx] = surf.ns
            elif k == "albedo":
                params, row = self.sd.bsdf_params(surf)
                off = FIELDS["diffuse_reflectance"][0]
                spec = FIELDS["specular_reflectance"][0]
                p = params[row]
                diffuse = p[:, off:off + 3]
                albedo = torch.where(diffuse.sum(1, keepdim=True) > 0, diffuse, p[:, spec:spec + 3])
                which, _ = self._torch_rows(params, row)
                if which is not None and bool((which >= 0).any()):
                    sel = torch.nonzero(which >= 0)[:, 0]
                    uv = surf.uv[sel]
                    albedo[sel] = dispatch(self.sd.torch_bsdfs, which[sel], lambda b, j: b.albedo(uv[j]), len(sel),
                                           ((3,),), uv.device)[0]
                aov[k][idx] = albedo
            elif k == "position":
                aov[k][idx] = surf.p
