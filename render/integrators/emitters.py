"""Emitter sampling and evaluation over batches (area meshes and spheres, point, spot, directional, constant, envmap)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.warp import coordinate_system
from .scene_data import (AREA_MESH, AREA_SPHERE, CONSTANT, DELTA_KINDS, DIRECTIONAL, ENVMAP, POINT, SPOT,
                         SceneData)


@dataclass
class EmitterSample:
    """Direction toward the light from the reference points, with everything NEE needs."""
    d: torch.Tensor       # (N,3) unit direction to the light
    dist: torch.Tensor    # (N,) distance to the sampled point (inf for environment / directional)
    weight: torch.Tensor  # (N,3) radiance / pdf, emitter choice included (0 where invalid)
    pdf: torch.Tensor     # (N,) solid-angle pdf including the emitter choice (for MIS; meaningless if delta)
    delta: torch.Tensor   # (N,) bool: point/spot/directional
    target: torch.Tensor  # (N,3) the sampled point (for finite distances)


def _sphere_cone(ref: torch.Tensor, center: torch.Tensor, radius: torch.Tensor):
    """(cos_theta_max, dist to center, inside) of the cone a sphere subtends from ref points."""
    dc = (center - ref).norm(dim=1)
    inside = dc <= radius
    sin_max = (radius / dc.clamp_min(1e-30)).clamp(max=1.0)
    cos_max = torch.sqrt((1 - sin_max * sin_max).clamp_min(0))
    return cos_max, dc, inside


def env_eval(sd: SceneData, d: torch.Tensor) -> torch.Tensor:
    """Environment radiance arriving along -d for rays travelling along d (N,3)."""
    if sd.env is None:
        return torch.zeros_like(d)
    p = sd.emitter_params[sd.env]
    if sd.emitter_kinds[sd.env] == CONSTANT:
        return torch.as_tensor(p["radiance"], device=d.device).expand(len(d), 3)
    u, v = _env_uv(p, d)
    img = p["image"]
    h, w = p["h"], p["w"]
    # Mitsuba 3.9 envmap.cpp eval_spectrum: shift by half a texel (texel i's center at u = (i + 0.5) / w), wrap,
    # then corner-aligned bilinear over the (w + 1)-column image whose last column repeats the first.
    u = u - 0.5 / w
    u = u - torch.floor(u)
    x, y = u * w, v * (h - 1)
    x0 = torch.floor(x).clamp(0, w - 1)
    y0 = torch.floor(y).clamp(0, h - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    x0, y0 = x0.long(), y0.long()
    return ((img[y0, x0] * (1 - fx) + img[y0, x0 + 1] * fx) * (1 - fy)
            + (img[y0 + 1, x0] * (1 - fx) + img[y0 + 1, x0 + 1] * fx) * fy)


def _env_uv(p, d):
    # Mitsuba envmap.cpp: local = to_local(d); uv = (atan2(x, -z) / 2pi, acos(y) / pi), wrapped to [0,1).
    loc = d @ p["to_local"].T
    loc = loc / loc.norm(dim=1, keepdim=True)
    u = torch.atan2(loc[:, 0], -loc[:, 2]) * (0.5 / math.pi)
    u = u - torch.floor(u)
    v = torch.acos(loc[:, 1].clamp(-1, 1)) / math.pi
    return u, v


def env_pdf(sd: SceneData, d: torch.Tensor) -> torch.Tensor:
    """Solid-angle pdf of sampling direction d from the environment emitter (emitter choice included)."""
    if sd.env is None:
        return torch.zeros(len(d), device=d.device)
    choose = 1.0 / sd.num_emitters
    p = sd.emitter_params[sd.env]
    if sd.emitter_kinds[sd.env] == CONSTANT:
        return torch.full((len(d),), choose / (4 * math.pi), device=d.device)
    u, v = _env_uv(p, d)
    h, w = p["h"], p["w"]
    u = u - 0.5 / w  # the cells follow eval's half-texel shift, so each cell is one bilinear patch
    u = u - torch.floor(u)
    col = (u * w).long().clamp(0, w - 1)
    row = (v * (h - 1)).long().clamp(0, h - 2)
    pdf_uv = p["cell_pdf"][row, col] * (w * (h - 1))
    sin_t = torch.sin(v * math.pi)
    return choose * pdf_uv / (2 * math.pi * math.pi * sin_t.clamp_min(1e-12)) * (sin_t > 0)


def area_pdf(sd: SceneData, emitter: torch.Tensor, ref: torch.Tensor, p: torch.Tensor, n: torch.Tensor,
             d: torch.Tensor) -> torch.Tensor:
    """Solid-angle pdf (emitter choice included) that NEE from `ref` samples point p (normal n) on `emitter`."""
    choose = 1.0 / sd.num_emitters
    out = torch.zeros(len(emitter), device=ref.device)
    kinds = torch.as_tensor(sd.emitter_kinds, device=ref.device)[emitter]
    mesh = kinds == AREA_MESH
    if mesh.any():
        dist2 = ((p[mesh] - ref[mesh]) ** 2).sum(1)
        cos = (n[mesh] * d[mesh]).sum(1).abs()
        out[mesh] = choose * sd.emitter_inv_area[emitter[mesh]] * dist2 / cos.clamp_min(1e-30)
    sph = kinds == AREA_SPHERE
    if sph.any():
        idx = torch.nonzero(sph)[:, 0]
        for e in emitter[sph].unique().tolist():
            sel = idx[emitter[idx] == e]
            out[sel] = choose * _sphere_pdf(sd, e, ref[sel], p[sel], n[sel], d[sel])
    return out


def _sphere_params(sd: SceneData, e: int):
    shape = sd.emitter_params[e]["shape"]
    sphere_prim = torch.nonzero(sd.prim_shape == shape)[0, 0] - sd.num_triangles
    s = sd.spheres[sphere_prim]
    return s[:3], s[3]


def _sphere_pdf(sd, e, ref, p, n, d):
    center, radius = _sphere_params(sd, e)
    cos_max, _, inside = _sphere_cone(ref, center[None], radius)
    cone = 1.0 / (2 * math.pi * (1 - cos_max).clamp_min(1e-12))
    dist2 = ((p - ref) ** 2).sum(1)
    area = dist2 / ((n * d).sum(1).abs().clamp_min(1e-30) * 4 * math.pi * radius * radius)
    return torch.where(inside, area, cone)


def sample_emitters(sd: SceneData, ref: torch.Tensor, u: torch.Tensor) -> EmitterSample:
    """Next-event estimation from points `ref`: choose an emitter uniformly (as Mitsuba) with u[:,0], a triangle of
    an area mesh by area with u[:,1], then a point / direction with u[:,2:4]."""
    u_choose, u_tri, u2 = u[:, 0], u[:, 1], u[:, 2:4]
    n = len(ref)
    dev = ref.device
    ne = sd.num_emitters
    out = EmitterSample(d=torch.zeros(n, 3, device=dev), dist=torch.full((n,), math.inf, device=dev),
                        weight=torch.zeros(n, 3, device=dev), pdf=torch.zeros(n, device=dev),
                        delta=torch.zeros(n, dtype=torch.bool, device=dev), target=torch.zeros(n, 3, device=dev))
    if ne == 0:
        return out
    choose = 1.0 / ne
    e_of = (u_choose * ne).long().clamp(max=ne - 1)
    kinds = sd.emitter_kinds
    for e in range(ne):
        sel = torch.nonzero(e_of == e)[:, 0]
        if len(sel) == 0:
            continue
        k, prm = kinds[e], sd.emitter_params[e]
        r, uu = ref[sel], u2[sel]
        if k == AREA_MESH:
            key = sd.emitter_rank[e] + u_tri[sel].double()
            tri = torch.searchsorted(sd.tri_cdf, key, right=True).clamp(max=len(sd.tri_cdf) - 1)
            f = sd.faces[sd.tri_faces[tri]]
            # Mitsuba square_to_uniform_triangle: t = sqrt(1 - u0); barycentrics (1 - t, t * u1) of v1, v2.
            t = torch.sqrt((1 - uu[:, 0]).clamp_min(0))
            b1, b2 = (1 - t)[:, None], (t * uu[:, 1])[:, None]
            b0 = 1 - b1 - b2
            v0, v1, v2 = sd.vertices[f[:, 0]], sd.vertices[f[:, 1]], sd.vertices[f[:, 2]]
            p = v0 * b0 + v1 * b1 + v2 * b2
            g = torch.linalg.cross(v1 - v0, v2 - v0)
            nrm = g / g.norm(dim=1, keepdim=True).clamp_min(1e-30)
            shape = prm["shape"]
            if bool(sd.shape_has_normals[shape]):
                sn = sd.normals[f[:, 0]] * b0 + sd.normals[f[:, 1]] * b1 + sd.normals[f[:, 2]] * b2
                nrm = sn / sn.norm(dim=1, keepdim=True).clamp_min(1e-30)
            if bool(sd.shape_flip[shape]):
                nrm = -nrm
            _finish_area(out, sel, r, p, nrm, torch.as_tensor(prm["radiance"], device=dev), choose,
                         choose / prm["area"])
        elif k == AREA_SPHERE:
            center, radius = _sphere_params(sd, e)
            cos_max, dc, inside = _sphere_cone(r, center[None], radius)
            # Outside: uniform in the subtended cone; inside: uniform on the surface (as Mitsuba's sphere).
            axis = (center[None] - r) / dc[:, None].clamp_min(1e-30)
            s_ax, t_ax = coordinate_system(axis)
            cos_t = (1 - uu[:, 0]) + uu[:, 0] * cos_max
            sin_t = torch.sqrt((1 - cos_t * cos_t).clamp_min(0))
            phi = 2 * math.pi * uu[:, 1]
            dirs = s_ax * (sin_t * torch.cos(phi))[:, None] + t_ax * (sin_t * torch.sin(phi))[:, None] + axis * cos_t[:, None]
            # Distance to the near intersection along dirs (tangent point if rounding misses it).
            b = (dirs * (center[None] - r)).sum(1)
            disc = (radius * radius - (dc * dc - b * b)).clamp_min(0)
            tn = b - torch.sqrt(disc)
            p_cone = r + dirs * tn[:, None]
            z = 1 - 2 * uu[:, 0]
            rr = torch.sqrt((1 - z * z).clamp_min(0))
            p_area = center[None] + radius * torch.stack([rr * torch.cos(phi), rr * torch.sin(phi), z], 1)
            p = torch.where(inside[:, None], p_area, p_cone)
            nrm = (p - center[None]) / radius
            if bool(sd.shape_flip[prm["shape"]]):
                nrm = -nrm
            dvec = p - r
            dist = dvec.norm(dim=1)
            dd = dvec / dist[:, None].clamp_min(1e-30)
            pdf_sa = torch.where(inside, dist * dist / ((nrm * dd).sum(1).abs().clamp_min(1e-30)
                                                          * 4 * math.pi * radius * radius),
                                 1.0 / (2 * math.pi * (1 - cos_max).clamp_min(1e-12)))
            front = (nrm * -dd).sum(1) > 0
            L = torch.as_tensor(prm["radiance"], device=dev)
            pdf = choose * pdf_sa
            out.d[sel], out.dist[sel], out.target[sel], out.pdf[sel] = dd, dist, p, pdf
            out.weight[sel] = torch.where(front[:, None] & (pdf[:, None] > 0), L / pdf.clamp_min(1e-30)[:, None], 0.0)
        elif k in (POINT, SPOT):
            dvec = prm["pos"][None] - r
            dist = dvec.norm(dim=1)
            dd = dvec / dist[:, None].clamp_min(1e-30)
            L = torch.as_tensor(prm["intensity"], device=dev)[None] / (dist * dist).clamp_min(1e-30)[:, None]
            if k == SPOT:
                # Mitsuba spot.cpp falloff: 1 inside beam_width, linear in angle to 0 at cutoff_angle.
                cos_t = ((-dd) @ prm["frame"]).select(1, 2) / prm["frame"][:, 2].norm()
                angle = torch.acos(cos_t.clamp(-1, 1))
                ramp = (prm["cutoff"] - angle) / max(prm["cutoff"] - prm["beam"], 1e-12)
                fall = torch.where(cos_t >= math.cos(prm["beam"]), torch.ones_like(cos_t), ramp)
                fall = torch.where(cos_t > math.cos(prm["cutoff"]), fall, torch.zeros_like(cos_t))
                L = L * fall[:, None]
            out.d[sel], out.dist[sel], out.target[sel] = dd, dist, prm["pos"].expand(len(sel), 3)
            out.weight[sel], out.pdf[sel], out.delta[sel] = L / choose, choose, True
        elif k == DIRECTIONAL:
            out.d[sel] = -prm["dir"].expand(len(sel), 3)
            out.weight[sel] = torch.as_tensor(prm["irradiance"], device=dev) / choose
            out.pdf[sel], out.delta[sel] = choose, True
        elif k == CONSTANT:
            z = 1 - 2 * uu[:, 0]
            rr = torch.sqrt((1 - z * z).clamp_min(0))
            phi = 2 * math.pi * uu[:, 1]
            out.d[sel] = torch.stack([rr * torch.cos(phi), rr * torch.sin(phi), z], 1)
            pdf = choose / (4 * math.pi)
            out.pdf[sel] = pdf
            out.weight[sel] = torch.as_tensor(prm["radiance"], device=dev) / pdf
        elif k == ENVMAP:
            d, pdf = _sample_env(sd, prm, uu, choose)
            out.d[sel], out.pdf[sel] = d, pdf
            out.weight[sel] = torch.where(pdf[:, None] > 0, env_eval(sd, d) / pdf.clamp_min(1e-30)[:, None], 0.0)
    return out


def _finish_area(out, sel, r, p, nrm, L, choose, pdf_area):
    dvec = p - r
    dist = dvec.norm(dim=1)
    dd = dvec / dist[:, None].clamp_min(1e-30)
    cos_l = (nrm * -dd).sum(1)
    pdf = pdf_area * dist * dist / cos_l.abs().clamp_min(1e-30)
    out.d[sel], out.dist[sel], out.target[sel], out.pdf[sel] = dd, dist, p, pdf
    ok = (cos_l > 0) & (pdf > 0)
    out.weight[sel] = torch.where(ok[:, None], L[None] / pdf.clamp_min(1e-30)[:, None], 0.0)


def _sample_env(sd: SceneData, prm, uu, choose):
    """Piecewise-constant over (h-1) x w cells of luminance x sin(theta); returns (direction, pdf incl. choice)."""
    h, w = prm["h"], prm["w"]
    row = torch.searchsorted(prm["marginal"], uu[:, 0].contiguous(), right=True).clamp(max=h - 2)
    row_lo = torch.where(row > 0, prm["marginal"][(row - 1).clamp_min(0)], torch.zeros_like(uu[:, 0]))
    row_p = prm["marginal"][row] - row_lo
    fy = ((uu[:, 0] - row_lo) / row_p.clamp_min(1e-30)).clamp(0, 1)
    cond = prm["conditional"][row]
    col = torch.searchsorted(cond, uu[:, 1:2].contiguous(), right=True)[:, 0].clamp(max=w - 1)
    col_lo = torch.where(col > 0, cond.gather(1, (col - 1).clamp_min(0)[:, None])[:, 0], torch.zeros_like(uu[:, 1]))
    col_p = cond.gather(1, col[:, None])[:, 0] - col_lo
    fx = ((uu[:, 1] - col_lo) / col_p.clamp_min(1e-30)).clamp(0, 1)
    u = (col.float() + fx + 0.5) / w  # undo the half-texel shift of the cells (see env_pdf)
    u = u - torch.floor(u)
    v = (row.float() + fy) / (h - 1)
    theta, phi = v * math.pi, u * 2 * math.pi
    sin_t = torch.sin(theta)
    # Inverse of _env_uv: local (x, y, z) = (sin t sin phi, cos t, -sin t cos phi).
    loc = torch.stack([sin_t * torch.sin(phi), torch.cos(theta), -sin_t * torch.cos(phi)], 1)
    d = loc @ prm["frame"].T
    d = d / d.norm(dim=1, keepdim=True)
    pdf_uv = prm["cell_pdf"][row, col] * (w * (h - 1))
    pdf = choose * pdf_uv / (2 * math.pi * math.pi * sin_t.clamp_min(1e-12))
    return d, torch.where(sin_t > 0, pdf, torch.zeros_like(pdf))


def is_delta_kind(kind: int) -> bool:
    return kind in DELTA_KINDS
