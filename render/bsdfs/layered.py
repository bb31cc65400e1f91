"""Layered reference material: a dielectric coat over a rough conductor or diffuse base, evaluated by pbrt-v4's
stochastic random walk between the layers (the costly shader that neural materials replace).

    bsdf = LayeredBSDF(base="conductor", coat_eta=1.5, coat_alpha=0.05, thickness=0.01, base_alpha=tex, ...)
    value = bsdf.eval(uv, wi, wo, n_samples=64)     # (N,3) f * |cos wo|, deterministic per (wi, wo)
    wo, weight, pdf = bsdf.sample(uv, wi, u, u_lobe)
    maps = bsdf.parameter_textures(256)             # (C, 256, 256) inputs of the neural encoder

eval() follows pbrt-v4's LayeredBxDF::f() (src/pbrt/bxdfs.h; Guo et al. 2018, "Position-free Monte Carlo
simulation for arbitrary layered BSDFs"): entrance reflection, then n_samples walks that sample transmission
through the entrance, presample a "virtual light" direction through the exit interface from wo, and up to max_depth
steps of medium scattering (Henyey-Greenstein, sigma_t = 1 per unit thickness) and interface scattering, with NEE
through the exit interface combined by the power heuristic, and Russian roulette after depth 3. The walk's random
numbers are a hash of (wi, wo) and a counter (pbrt seeds its RNG with Hash(wo), Hash(wi)), so values repeat.
Vectorized: all (item, sample) walks advance together through the unrolled depth loop (masks; finished walks are
dropped, and each interface step runs on the walks at that interface).

Interfaces use the project's Mitsuba-compatible microfacet functions (render/bsdfs/reference.py: GGX with
separable Smith G where pbrt has height-correlated G, visible-normal sampling, dielectric/conductor Fresnel) in
pbrt's BxDF conventions (pbrt wo is our wi, the camera side; f without the cosine; radiance transport divides
transmission by eta'^2, importance does not). Deviations from pbrt, on purpose: interface roughness alpha is at
least ALPHA_MIN (the TorchBSDF protocol has no delta lobes); a coat of IOR 1 is pbrt's specular pass-through;
eval is one-sided (zero unless wi and wo are above the geometric and the normal-mapped surface), two-sidedness
comes from the integrator's `twosided` mirror. sample()/pdf() are NOT pbrt's stochastic Sample_f/PDF (whose pdf
is only proportional): they are an analytic mixture of the coat's GGX reflection lobe, a widened base lobe and a
cosine lobe, so the pdf is exact and MIS stays unbiased; weight = eval / pdf.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch
from torch import Tensor

from ..core.warp import coordinate_system, square_to_cosine_hemisphere, square_to_cosine_hemisphere_pdf
from ..errors import UserError
from ..scene import mitsuba_tables
from ..scene.types import BSDF, Texture
from ..textures import TextureTable
from .reference import GGX, dot, fresnel_conductor, fresnel_dielectric, mf_D, mf_G, mf_pdf, mf_sample, normalize
from .torch_bsdf import register_torch_bsdf

ALPHA_MIN = 1e-3       # smallest interface roughness (near-specular; the protocol has no delta lobes)
FLT_MIN = 1.17549435e-38  # pbrt clamps the thickness to this
COSINE_LOBE = 0.1      # share of the cosine lobe in the sampling mixture (covers every direction with energy)
CHUNK_ROWS = 1 << 18   # walks advanced together (items x samples), bounds memory

Param = Union[float, np.ndarray, Texture]


# ---------------------------------------------------------------------------------------------------------
# Counter-based random numbers seeded by the direction pair.

_MASK = 0xFFFFFFFF


def _mix32(x: Tensor) -> Tensor:
    """lowbias32 integer hash (C. Wellons), on int64 holding 32-bit values."""
    x = x & _MASK
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK
    return x ^ (x >> 16)


def direction_pair_key(wi: Tensor, wo: Tensor) -> Tensor:
    """(N,) int64 hash of the float bits of wi and wo (pbrt: RNG(Hash(seed, wo), Hash(wi)))."""
    bits = torch.cat([wi, wo], 1).float().contiguous().view(torch.int32).to(torch.int64) & _MASK
    h = torch.full_like(bits[:, 0], 0x9E3779B9)
    for j in range(6):
        h = _mix32(h ^ bits[:, j]) + j
    return h & _MASK


class _Rng:
    """Uniforms in [0, 1) for each walk: hash(key, sample index, counter); every step draws the same count."""

    def __init__(self, key: Tensor):
        self.key, self.counter = key, 0

    def __call__(self) -> Tensor:
        self.counter += 1
        x = _mix32(self.key ^ int(_mix32(torch.tensor(self.counter * 0x9E3779B9, dtype=torch.int64))))
        return (x >> 8).to(torch.float32) * (1.0 / (1 << 24))


# ---------------------------------------------------------------------------------------------------------
# Interfaces (pbrt-v4 DielectricBxDF, ConductorBxDF, DiffuseBxDF), batched. Flags restrict sampling to
# "reflection", "transmission" or "all". Each sample returns (ok, wi, f, pdf).

def _same(a: Tensor, b: Tensor) -> Tensor:
    return a[:, 2] * b[:, 2] > 0


def _up(w: Tensor) -> Tensor:
    return w * torch.where(w[:, 2:3] < 0, -1.0, 1.0)


def _reflect(wo: Tensor, n: Tensor) -> Tensor:
    return -wo + n * (2.0 * dot(wo, n))[:, None]


def power_heuristic(a: Tensor, b: Tensor) -> Tensor:
    """pbrt PowerHeuristic(1, a, 1, b); 1 where b is 0, 0 where a is 0."""
    ratio = b / a.clamp_min(1e-30)
    w = 1.0 / (1.0 + ratio * ratio)
    return torch.where(a > 0, torch.nan_to_num(w, nan=0.0), torch.zeros_like(a))


def _safe(x: Tensor, ok: Tensor) -> Tensor:
    return torch.where(ok[:, None] if x.dim() == 2 else ok, torch.nan_to_num(x, nan=0.0, posinf=0.0), 0.0)


class Dielectric:
    """pbrt DielectricBxDF with a GGX distribution; eta == 1 is a specular pass-through (pbrt: eta == 1 or smooth)."""

    def __init__(self, eta: float, alpha: Tensor):
        self.eta = float(eta)
        self.specular = self.eta == 1.0
        a = alpha.clamp_min(ALPHA_MIN)
        self.dist = (torch.full_like(a, GGX, dtype=torch.long), a, a, torch.ones_like(a, dtype=torch.bool))

    def _half(self, wo, wi):
        cos_o, cos_i = wo[:, 2], wi[:, 2]
        reflect = cos_o * cos_i > 0
        etap = torch.where(reflect, 1.0, torch.where(cos_o > 0, self.eta, 1.0 / self.eta))
        wm = wi * etap[:, None] + wo
        ok = (cos_i != 0) & (cos_o != 0) & (dot(wm, wm) > 0)
        wm = _up(normalize(wm))
        ok &= ~((dot(wm, wi) * cos_i < 0) | (dot(wm, wo) * cos_o < 0))
        return reflect, etap, wm, ok

    def f(self, wo, wi, radiance=True):
        if self.specular:
            return torch.zeros_like(wo)
        reflect, etap, wm, ok = self._half(wo, wi)
        cos_o, cos_i = wo[:, 2], wi[:, 2]
        F = fresnel_dielectric(dot(wo, wm), self.eta)[0]
        D = mf_D(self.dist, wm)
        G = mf_G(self.dist, wo, wi, wm)
        fr = D * G * F / (4 * cos_i * cos_o).abs()
        denom = (dot(wi, wm) + dot(wo, wm) / etap) ** 2 * cos_i * cos_o
        ft = D * (1 - F) * G * (dot(wi, wm) * dot(wo, wm) / denom).abs()
        if radiance:
            ft = ft / (etap * etap)
        return _safe(torch.where(reflect, fr, ft), ok)[:, None].expand(-1, 3)

    def pdf(self, wo, wi, flags="all"):
        if self.specular:
            return torch.zeros_like(wo[:, 0])
        reflect, etap, wm, ok = self._half(wo, wi)
        R = fresnel_dielectric(dot(wo, wm), self.eta)[0]
        pr = R if flags != "transmission" else torch.zeros_like(R)
        pt = 1 - R if flags != "reflection" else torch.zeros_like(R)
        pm = mf_pdf(self.dist, _up(wo), wm)
        pdf_r = pm / (4 * dot(wo, wm).abs()) * pr / (pr + pt)
        dwm_dwi = dot(wi, wm).abs() / (dot(wi, wm) + dot(wo, wm) / etap) ** 2
        pdf_t = pm * dwm_dwi * pt / (pr + pt)
        return _safe(torch.where(reflect, pdf_r, pdf_t), ok)

    def sample(self, wo, uc, u, radiance=True, flags="all"):
        if self.specular:  # index matched: everything passes straight through (R = 0)
            ok = torch.full_like(uc, flags != "reflection", dtype=torch.bool) & (wo[:, 2] != 0)
            wi = -wo
            return ok, wi, _safe((1.0 / wi[:, 2].abs())[:, None].expand(-1, 3), ok), ok.float()
        wm, pm = mf_sample(self.dist, _up(wo), u)
        cos_om = dot(wo, wm)
        R = fresnel_dielectric(cos_om, self.eta)[0]
        pr = R if flags != "transmission" else torch.zeros_like(R)
        pt = 1 - R if flags != "reflection" else torch.zeros_like(R)
        choose_r = uc < pr / (pr + pt)
        # reflection
        wi_r = _reflect(wo, wm)
        # refraction (pbrt Refract(wo, wm, eta, &etap, &wi))
        flip = cos_om < 0
        e = torch.where(flip, 1.0 / self.eta, torch.full_like(cos_om, self.eta))
        n = torch.where(flip[:, None], -wm, wm)
        c = cos_om.abs()
        sin2_t = (1 - c * c).clamp_min(0) / (e * e)
        cos_t = torch.sqrt((1 - sin2_t).clamp_min(0))
        wi_t = -wo / e[:, None] + n * (c / e - cos_t)[:, None]
        wi = torch.where(choose_r[:, None], wi_r, wi_t)
        cos_o, cos_i = wo[:, 2], wi[:, 2]
        D = mf_D(self.dist, wm)
        G = mf_G(self.dist, wo, wi, wm)
        f_r = D * G * R / (4 * cos_i * cos_o).abs()
        pdf_r = pm / (4 * cos_om.abs()) * pr / (pr + pt)
        denom = (dot(wi, wm) + cos_om / e) ** 2
        f_t = (1 - R) * D * G * (dot(wi, wm) * cos_om / (cos_i * cos_o * denom)).abs()
        if radiance:
            f_t = f_t / (e * e)
        pdf_t = pm * dot(wi, wm).abs() / denom * pt / (pr + pt)
        ok_r = choose_r & _same(wo, wi)
        ok_t = ~choose_r & (sin2_t < 1) & ~_same(wo, wi) & (cos_i != 0)
        ok = (ok_r | ok_t) & (pm > 0) & (cos_o != 0)
        f = torch.where(choose_r, f_r, f_t)
        pdf = torch.where(choose_r, pdf_r, pdf_t)
        ok &= (pdf > 0) & (f > 0)
        return ok, wi, _safe(f[:, None].expand(-1, 3), ok), _safe(pdf, ok)


class Conductor:
    """pbrt ConductorBxDF (GGX, alpha >= ALPHA_MIN); complex IOR per item (N,3) and a reflectance tint."""

    def __init__(self, alpha: Tensor, eta: Tensor, k: Tensor):
        a = alpha.clamp_min(ALPHA_MIN)
        self.dist = (torch.full_like(a, GGX, dtype=torch.long), a, a, torch.ones_like(a, dtype=torch.bool))
        self.eta, self.k = eta, k
        self.specular = False

    def f(self, wo, wi, radiance=True):
        ok = _same(wo, wi)
        wm = _up(normalize(wo + wi))
        F = fresnel_conductor(dot(wo, wm).abs(), self.eta, self.k)
        value = mf_D(self.dist, wm) * mf_G(self.dist, _up(wo), _up(wi), wm) / (4 * wo[:, 2] * wi[:, 2]).abs()
        return _safe(F * value[:, None], ok)

    def pdf(self, wo, wi, flags="all"):
        ok = _same(wo, wi) & (flags != "transmission")
        wm = _up(normalize(wo + wi))
        return _safe(mf_pdf(self.dist, _up(wo), wm) / (4 * dot(wo, wm).abs()), ok)

    def sample(self, wo, uc, u, radiance=True, flags="all"):
        wm, pm = mf_sample(self.dist, _up(wo), u)
        wi = _reflect(wo, wm)
        ok = _same(wo, wi) & (pm > 0) & (flags != "transmission")
        pdf = pm / (4 * dot(wo, wm).abs())
        return ok, wi, self.f(wo, wi) * ok[:, None], _safe(pdf, ok)


class Diffuse:
    """pbrt DiffuseBxDF (Lambertian reflection)."""

    def __init__(self, reflectance: Tensor):
        self.r = reflectance
        self.specular = False

    def f(self, wo, wi, radiance=True):
        return _safe(self.r * (1.0 / math.pi), _same(wo, wi))

    def pdf(self, wo, wi, flags="all"):
        return _safe(wi[:, 2].abs() / math.pi, _same(wo, wi) & (flags != "transmission"))

    def sample(self, wo, uc, u, radiance=True, flags="all"):
        wi = square_to_cosine_hemisphere(u)
        wi = wi * torch.where(wo[:, 2:3] < 0, -1.0, 1.0)
        pdf = wi[:, 2].abs() / math.pi
        ok = (pdf > 0) & (wo[:, 2] != 0) & (flags != "transmission")
        return ok, wi, _safe(self.r * (1.0 / math.pi), ok), _safe(pdf, ok)


def _tr(dz: Tensor, w: Tensor) -> Tensor:
    """pbrt Tr(): transmittance of a slab of height dz along w (sigma_t = 1)."""
    return torch.where(dz.abs() <= FLT_MIN, 1.0, torch.exp(-(dz / w[:, 2]).abs()))


def _hg(cos_theta: Tensor, g: Tensor) -> Tensor:
    denom = 1 + g * g + 2 * g * cos_theta
    return (1 - g * g) / (4 * math.pi * denom * torch.sqrt(denom.clamp_min(1e-12)))


def _hg_sample(wo: Tensor, g: Tensor, u0: Tensor, u1: Tensor):
    """pbrt SampleHenyeyGreenstein: (wi, pdf) about wo (p(wo, wi) = HG(dot(wo, wi), g))."""
    small = g.abs() < 1e-3
    gs = torch.where(small, 0.5, g)
    cos_hg = -1 / (2 * gs) * (1 + gs * gs - ((1 - gs * gs) / (1 + gs - 2 * gs * u0)) ** 2)
    cos_t = torch.where(small, 1 - 2 * u0, cos_hg).clamp(-1, 1)
    sin_t = torch.sqrt((1 - cos_t * cos_t).clamp_min(0))
    phi = 2 * math.pi * u1
    s, t = coordinate_system(wo)
    wi = s * (sin_t * torch.cos(phi))[:, None] + t * (sin_t * torch.sin(phi))[:, None] + wo * cos_t[:, None]
    return wi, _hg(cos_t, g)


# ---------------------------------------------------------------------------------------------------------
# The random walk (pbrt-v4 LayeredBxDF::f with twoSided = true), for reflection pairs (the base is opaque).

@dataclass
class LayerParams:
    """Per-item parameters of the layered stack (tensors of N rows)."""
    coat_alpha: Tensor       # (N,)
    thickness: Tensor        # (N,)
    albedo: Tensor           # (N,3) medium single-scattering albedo (0: absorbing only, pbrt's default)
    g: Tensor                # (N,)
    base_color: Tensor       # (N,3) diffuse reflectance, or conductor reflectance tint (1 for named metals)
    base_alpha: Tensor       # (N,)
    base_eta: Tensor         # (N,3) conductor
    base_k: Tensor           # (N,3) conductor

    def take(self, index: Tensor) -> "LayerParams":
        return LayerParams(**{k: v[index] for k, v in self.__dict__.items()})


def layered_f(p: LayerParams, base: str, coat_eta: float, wo: Tensor, wi: Tensor, n_samples: int,
              max_depth: int) -> Tensor:
    """pbrt's f(wo, wi) (no cosine) for N direction pairs in pbrt's naming (wo: the camera side), both above the
    surface (pbrt's twoSided mirrors pairs below it; callers do). Returns (N,3). All walks of all items run
    together, in chunks of CHUNK_ROWS walks."""
    n = len(wo)
    out = torch.zeros(n, 3, dtype=wo.dtype, device=wo.device)
    per = max(1, CHUNK_ROWS // n_samples)
    for a in range(0, n, per):
        sl = slice(a, min(n, a + per))
        out[sl] = _layered_f_chunk(p.take(torch.arange(sl.start, sl.stop, device=wo.device)), base, coat_eta,
                                   wo[sl], wi[sl], n_samples, max_depth)
    return out


class _Walks:
    """State of the live walks (one row each) and the interfaces at their parameters; `compact` drops dead rows."""

    def __init__(self, **state):
        self.__dict__.update(state)

    def interfaces(self, base: str, coat_eta: float):
        q = self.q
        self.base, self.coat_eta = base, coat_eta
        self.tint = q.base_color if base == "conductor" else torch.ones_like(q.base_color)
        self.thick = q.thickness.clamp_min(FLT_MIN)
        self.has_medium = q.albedo.amax(1) > 0
        return self

    def top_of(self, idx: Tensor) -> Dielectric:
        return Dielectric(self.coat_eta, self.q.coat_alpha[idx])

    def bottom_of(self, idx: Tensor):
        q = self.q
        if self.base == "conductor":
            return Conductor(q.base_alpha[idx], q.base_eta[idx], q.base_k[idx])
        return Diffuse(q.base_color[idx])

    def compact(self, keep: Tensor, base: str, coat_eta: float) -> "_Walks":
        state = {k: (v.take(keep) if isinstance(v, LayerParams) else v[keep]) for k, v in self.__dict__.items()
                 if k in self.FIELDS}
        return _Walks(**state).interfaces(base, coat_eta)

    FIELDS = ("q", "row", "key", "alive", "w", "beta", "z", "wi", "wis", "wis_w", "pdf_i")


def _layered_f_chunk(p: LayerParams, base: str, coat_eta: float, wo, wi, n_samples: int, max_depth: int):
    n = len(wo)
    same = _same(wo, wi)
    top = Dielectric(coat_eta, p.coat_alpha)
    # Entrance reflection at the top (twoSided: the caller mirrored wo to z > 0, so the walk enters at the top).
    f_entr = top.f(wo, wi) * same[:, None]
    if n_samples <= 0:
        return f_entr
    # Repeat every item per sample: rows = items x samples; sample s gets its own key.
    rep = torch.arange(n, device=wo.device).repeat_interleave(n_samples)
    s_idx = torch.arange(n_samples, device=wo.device).repeat(n)
    q = p.take(rep)
    key = _mix32(direction_pair_key(wo, wi)[rep] ^ _mix32(s_idx.to(torch.int64) + 0x632BE5AB))
    rng = _Rng(key)
    top = Dielectric(coat_eta, q.coat_alpha)
    exit_spec = top.specular
    m = len(rep)
    f = torch.zeros(m, 3, dtype=wo.dtype, device=wo.device)

    # Transmission through the entrance, and the "virtual light" sample through the exit (importance transport).
    ok_o, w, fo, pdf_o = top.sample(wo[rep], rng(), torch.stack([rng(), rng()], 1), True, "transmission")
    ok_i, wis, fi, pdf_i = top.sample(wi[rep], rng(), torch.stack([rng(), rng()], 1), False, "transmission")
    alive = ok_o & ok_i & same[rep] & (w[:, 2] != 0) & (wis[:, 2] != 0)
    keep = torch.nonzero(alive)[:, 0]
    st = _Walks(q=q, row=torch.arange(m, device=wo.device), key=key, alive=alive, w=w,
                beta=_safe(fo * w[:, 2:3].abs() / pdf_o[:, None], alive), z=q.thickness.clamp_min(FLT_MIN),
                wi=wi[rep], wis=wis, wis_w=_safe(fi / pdf_i[:, None], alive), pdf_i=pdf_i)
    st = st.compact(keep, base, coat_eta)
    counter = rng.counter

    def add(value: Tensor, mask: Tensor):
        f.index_add_(0, st.row, _safe(value, mask))

    for depth in range(max_depth):
        if len(st.row) == 0:
            break
        rng = _Rng(st.key)
        rng.counter = counter
        r_rr, r_dz = rng(), rng()
        u_ph = torch.stack([rng(), rng()], 1)
        r_uc, u_if = rng(), torch.stack([rng(), rng()], 1)
        counter = rng.counter
        alive, w, beta, z, thick = st.alive, st.w, st.beta, st.z, st.thick
        wis, wi_r = st.wis, st.wi
        # Russian roulette (pbrt: after depth 3 when max beta < 0.25).
        if depth > 3:
            bmax = beta.amax(1)
            rr = alive & (bmax < 0.25)
            qq = (1 - bmax).clamp_min(0)
            alive = alive & ~(rr & (r_rr < qq))
            beta = torch.where((rr & alive)[:, None], beta / (1 - qq).clamp_min(1e-30)[:, None], beta)
        # Medium: absorption only (advance to the other interface) or scattering (pbrt, albedo != 0).
        scatter = torch.zeros_like(alive)
        no_med = alive & ~st.has_medium
        beta = torch.where(no_med[:, None], beta * _tr(thick, w)[:, None], beta)
        z = torch.where(no_med, torch.where(z >= thick, torch.zeros_like(z), thick), z)
        if bool(st.has_medium.any()):
            dz = -torch.log1p(-r_dz) * w[:, 2].abs()
            zp = torch.where(w[:, 2] > 0, z + dz, z - dz)
            scatter = alive & st.has_medium & (zp > 0) & (zp < thick)
            z = torch.where(alive & st.has_medium & ~scatter, torch.minimum(zp.clamp_min(0), thick), z)
        if bool(scatter.any()):
            # NEE along wis from the scattering point, then sample the phase function.
            ph = _hg(dot(-w, -wis), st.q.g)
            wt = torch.ones_like(ph) if exit_spec else power_heuristic(st.pdf_i, ph)
            add(beta * st.q.albedo * (ph * wt * _tr(zp - thick, wis))[:, None] * st.wis_w, scatter)
            w_new, ph_pdf = _hg_sample(-w, st.q.g, u_ph[:, 0], u_ph[:, 1])
            ok = scatter & (ph_pdf > 0) & (w_new[:, 2] != 0)
            beta = torch.where(ok[:, None], beta * st.q.albedo, beta)  # p / pdf = 1 for HG sampling
            w = torch.where(ok[:, None], w_new, w)
            z = torch.where(ok, zp, z)
            ix = torch.nonzero(ok & (w[:, 2] > 0) & (z < thick))[:, 0]
            if not exit_spec and len(ix):
                top, wx = st.top_of(ix), -w[ix]
                wt = power_heuristic(ph_pdf[ix], top.pdf(wx, wi_r[ix], "transmission"))
                value = beta[ix] * _tr(zp[ix] - thick[ix], -wx)[:, None] * top.f(wx, wi_r[ix]) * wt[:, None]
                f.index_add_(0, st.row[ix], _safe(value, wt >= 0))
        # Interfaces: each live walk is at the exit (top, seen from inside) or at the base.
        iface = alive & ~scatter
        ie = torch.nonzero(iface & (z >= thick))[:, 0]
        ib = torch.nonzero(iface & (z < thick))[:, 0]
        beta, w, alive = beta.clone(), w.clone(), alive.clone()
        if len(ie):  # reflection at the exit interface
            ok, w_e, f_e, pdf_e = st.top_of(ie).sample(-w[ie], r_uc[ie], u_if[ie], True, "reflection")
            ok &= w_e[:, 2] != 0
            beta[ie] = _safe(beta[ie] * f_e * (w_e[:, 2].abs() / pdf_e)[:, None], ok)
            w[ie], alive[ie] = w_e, ok
        if len(ib):  # base: NEE along the presampled wis, sample the base, NEE through the exit
            bottom, top = st.bottom_of(ib), st.top_of(ib)
            wb, wis_b, beta_b, tint, thick_b, wi_b = -w[ib], wis[ib], beta[ib], st.tint[ib], thick[ib], wi_r[ib]
            pdf_i = st.pdf_i[ib]
            wt = torch.ones_like(pdf_i) if exit_spec else power_heuristic(pdf_i, bottom.pdf(wb, -wis_b))
            nee = bottom.f(wb, -wis_b) * tint * (wis_b[:, 2].abs() * wt * _tr(thick_b, wis_b))[:, None] * st.wis_w[ib]
            f.index_add_(0, st.row[ib], _safe(beta_b * nee, pdf_i > 0))
            ok, w_b, f_b, pdf_b = bottom.sample(wb, r_uc[ib], u_if[ib], True, "reflection")
            ok &= w_b[:, 2] != 0
            beta_b = _safe(beta_b * f_b * tint * (w_b[:, 2].abs() / pdf_b)[:, None], ok)
            beta[ib], w[ib], alive[ib] = beta_b, w_b, ok
            if not exit_spec:
                wt = power_heuristic(pdf_b, top.pdf(-w_b, wi_b, "transmission"))
                value = beta_b * _tr(thick_b, w_b)[:, None] * top.f(-w_b, wi_b) * wt[:, None]
                f.index_add_(0, st.row[ib], _safe(value, ok))
        st.alive, st.w, st.beta, st.z = alive, w, beta, z
        if int(alive.sum()) < 0.75 * len(alive):
            st = st.compact(torch.nonzero(alive)[:, 0], base, coat_eta)
    walks = f.view(n, n_samples, 3).sum(1) / n_samples
    return f_entr + walks


# ---------------------------------------------------------------------------------------------------------
# The material: parameters (constants or textures), eval / pdf / sample, parameter maps.

PARAMETER_CHANNELS = ("base_r", "base_g", "base_b", "base_alpha", "coat_alpha", "thickness", "albedo_r", "albedo_g",
                      "albedo_b", "normal_x", "normal_y", "normal_z")


class LayeredBSDF:
    """Dielectric coat over a conductor or diffuse base (pbrt-v4 coatedconductor / coateddiffuse), as a TorchBSDF.

    base: "conductor" or "diffuse". Parameters may be textures (render.scene.types.Texture): base_color,
    base_alpha, coat_alpha, albedo, thickness, normalmap (tangent-space RGB in [0,1], z up). For a conductor base,
    base_eta / base_k are RGB complex IOR (e.g. from mitsuba_tables.CONDUCTORS) and base_color a reflectance tint.
    """

    name = "layered"

    def __init__(self, base: str = "conductor", coat_eta: float = 1.5, coat_alpha: Param = 0.0,
                 thickness: Param = 0.01, albedo: Param = 0.0, g: float = 0.0, base_color: Param = 1.0,
                 base_alpha: Param = 0.0, base_eta=None, base_k=None, normalmap: Optional[Texture] = None,
                 max_depth: int = 10, n_samples: int = 1, remap_roughness: bool = False,
                 reflectance_base: bool = False, twosided: bool = False, device="cpu"):
        if base not in ("conductor", "diffuse"):
            raise ValueError(f"base must be 'conductor' or 'diffuse', got {base!r}")
        if coat_eta <= 0:
            raise ValueError(f"coat IOR must be positive, got {coat_eta}")
        if max_depth < 1 or n_samples < 1:
            raise ValueError(f"max_depth and n_samples must be >= 1, got {max_depth}, {n_samples}")
        self.base, self.coat_eta, self.g = base, float(coat_eta), float(g)
        self.max_depth, self.n_samples = int(max_depth), int(n_samples)
        self.remap_roughness, self.reflectance_base = bool(remap_roughness), bool(reflectance_base)
        self.twosided = bool(twosided)  # read by the scene compiler: both sides shade as the front (pbrt's coated*)
        if base_eta is None or base_k is None:
            base_eta, base_k = mitsuba_tables.CONDUCTORS["Cu"]  # pbrt's coatedconductor default metal
        self.base_eta = torch.as_tensor(np.asarray(base_eta, np.float32).reshape(-1)).expand(3).clone()
        self.base_k = torch.as_tensor(np.asarray(base_k, np.float32).reshape(-1)).expand(3).clone()
        self.params = {"base_color": base_color, "base_alpha": base_alpha, "coat_alpha": coat_alpha,
                       "thickness": thickness, "albedo": albedo}
        self.normalmap = normalmap
        textures = [v for v in self.params.values() if isinstance(v, Texture)]
        if normalmap is not None:
            textures.append(normalmap)
        self._tex_ids = {id(t): i for i, t in enumerate(textures)}
        self._textures = textures
        self.device = torch.device("cpu")
        self._table = TextureTable(textures, "cpu")
        self.to(device)

    def to(self, device) -> "LayeredBSDF":
        device = torch.device(device)
        if device != self.device:
            self._table = TextureTable(self._textures, device)
        self.device = device
        self.base_eta, self.base_k = self.base_eta.to(device), self.base_k.to(device)
        return self

    # ---- parameters
    def _value(self, name_or_param, uv: Tensor, channels: int) -> Tensor:
        v = self.params[name_or_param] if isinstance(name_or_param, str) else name_or_param
        n = len(uv)
        if isinstance(v, Texture):
            out = self._table.eval(self._tex_ids[id(v)], uv)
            return out[:, 0] if channels == 1 else out
        arr = torch.as_tensor(np.asarray(v, np.float32).reshape(-1), device=uv.device)
        if channels == 1:
            return arr[0].expand(n).clone()
        return arr.expand(3).expand(n, 3).clone()

    def layer_params(self, uv: Tensor) -> LayerParams:
        """The exact parameter set at uv (N,2)."""
        n = len(uv)
        coat_alpha, base_alpha = self._value("coat_alpha", uv, 1), self._value("base_alpha", uv, 1)
        if self.remap_roughness:
            coat_alpha, base_alpha = coat_alpha.clamp_min(0).sqrt(), base_alpha.clamp_min(0).sqrt()
        base_color = self._value("base_color", uv, 3)
        base_eta, base_k = self.base_eta.expand(n, 3), self.base_k.expand(n, 3)
        if self.reflectance_base and self.base == "conductor":
            r = base_color.clamp(0, 0.9999)
            base_eta, base_k = torch.ones_like(r), 2 * r.sqrt() / (1 - r).sqrt()
            base_color = torch.ones_like(r)
        return LayerParams(coat_alpha=coat_alpha, thickness=self._value("thickness", uv, 1),
                           albedo=self._value("albedo", uv, 3), g=torch.full((n,), self.g, device=uv.device),
                           base_color=base_color, base_alpha=base_alpha, base_eta=base_eta, base_k=base_k)

    def shading_normal(self, uv: Tensor) -> Tensor:
        """(N,3) unit normal in the local frame from the normal map ((0,0,1) without one)."""
        if self.normalmap is None:
            return torch.tensor([0.0, 0.0, 1.0], device=uv.device).expand(len(uv), 3)
        n = self._value(self.normalmap, uv, 3) * 2 - 1
        n = torch.where(n[:, 2:3] > 1e-3, n, torch.tensor([0.0, 0.0, 1.0], device=uv.device).expand_as(n))
        return normalize(n)

    def parameters_at(self, uv: Tensor) -> Tensor:
        """(N, C) parameter vector at uv, channels PARAMETER_CHANNELS (the neural encoder's input)."""
        p = self.layer_params(uv)
        return torch.cat([p.base_color, p.base_alpha[:, None], p.coat_alpha[:, None], p.thickness[:, None],
                          p.albedo, self.shading_normal(uv)], 1)

    def parameter_textures(self, resolution: int) -> Tensor:
        """(C, R, R) parameter maps sampled at texel centres (row j at v = (j + 0.5) / R), channels
        PARAMETER_CHANNELS."""
        t = (torch.arange(resolution, device=self.device, dtype=torch.float32) + 0.5) / resolution
        vv, uu = torch.meshgrid(t, t, indexing="ij")
        uv = torch.stack([uu.reshape(-1), vv.reshape(-1)], 1)
        return self.parameters_at(uv).T.reshape(-1, resolution, resolution)

    # ---- frames (normal map)
    def _frame(self, uv: Tensor):
        """Perturbed shading frame (s, t, n) in local coordinates (Gram-Schmidt of x against n), or None."""
        if self.normalmap is None:
            return None
        n = self.shading_normal(uv)
        x = torch.tensor([1.0, 0.0, 0.0], device=uv.device).expand_as(n)
        s = normalize(x - n * dot(x, n)[:, None])
        t = torch.linalg.cross(n, s)
        return s, t, n

    @staticmethod
    def _to(frame, v):
        s, t, n = frame
        return torch.stack([dot(v, s), dot(v, t), dot(v, n)], 1)

    @staticmethod
    def _from(frame, v):
        s, t, n = frame
        return s * v[:, :1] + t * v[:, 1:2] + n * v[:, 2:3]

    # ---- TorchBSDF
    def eval(self, uv: Tensor, wi: Tensor, wo: Tensor, n_samples: Optional[int] = None) -> Tensor:
        """(N,3) f(wi, wo) |cos wo| by n_samples random walks (default: the material's), deterministic per (wi, wo)."""
        n_samples = self.n_samples if n_samples is None else int(n_samples)
        frame = self._frame(uv)
        wi_l, wo_l = (wi, wo) if frame is None else (self._to(frame, wi), self._to(frame, wo))
        # One-sided as Mitsuba's BSDFs (wrap in `twosided` for pbrt's two-sided coat): zero unless both directions
        # are above the geometric and the normal-mapped surface, which also keeps pdf > 0 wherever eval > 0.
        ok = (wi[:, 2] > 0) & (wo[:, 2] > 0) & (wi_l[:, 2] > 0) & (wo_l[:, 2] > 0)
        f = layered_f(self.layer_params(uv), self.base, self.coat_eta, wi_l, wo_l, n_samples, self.max_depth)
        return _safe(f * wo[:, 2:3].abs(), ok)

    def _lobes(self, uv: Tensor, wi_l: Tensor):
        """Sampling mixture in the perturbed frame: (weights (N,3), coat dist, base dist or None)."""
        p = self.layer_params(uv)
        cos_i = wi_l[:, 2].abs()
        if self.coat_eta == 1.0:
            F = torch.zeros_like(cos_i)
        else:
            F = fresnel_dielectric(cos_i, self.coat_eta)[0]
        a_c = p.coat_alpha.clamp_min(ALPHA_MIN)
        # Coat reflection, then the base lobe (widened by the two crossings of the rough coat), then cosine.
        w_coat = (1 - COSINE_LOBE) * F
        w_base = (1 - COSINE_LOBE) * (1 - F)
        weights = torch.stack([w_coat, w_base, torch.full_like(F, COSINE_LOBE)], 1)
        coat = (torch.full_like(a_c, GGX, dtype=torch.long), a_c, a_c, torch.ones_like(a_c, dtype=torch.bool))
        base = None
        if self.base == "conductor":
            a_b = torch.sqrt(p.base_alpha.clamp_min(ALPHA_MIN) ** 2 + 2 * a_c * a_c).clamp(max=1.0)
            base = (coat[0], a_b, a_b, coat[3])
        return weights, coat, base

    @staticmethod
    def _ggx_reflection_pdf(dist, wi, wo):
        h = normalize(wi + wo)
        ok = (wi[:, 2] > 0) & (wo[:, 2] > 0) & (dot(wo, h) > 0)
        return _safe(mf_pdf(dist, wi, h) / (4 * dot(wo, h)), ok)

    def _pdf_local(self, uv, wi_l, wo_l):
        weights, coat, base = self._lobes(uv, wi_l)
        cos_pdf = square_to_cosine_hemisphere_pdf(wo_l) * (wo_l[:, 2] > 0)
        pdf = weights[:, 0] * self._ggx_reflection_pdf(coat, wi_l, wo_l) + weights[:, 2] * cos_pdf
        pdf = pdf + weights[:, 1] * (self._ggx_reflection_pdf(base, wi_l, wo_l) if base is not None else cos_pdf)
        return _safe(pdf, wi_l[:, 2] > 0)

    def pdf(self, uv: Tensor, wi: Tensor, wo: Tensor) -> Tensor:
        frame = self._frame(uv)
        wi_l, wo_l = (wi, wo) if frame is None else (self._to(frame, wi), self._to(frame, wo))
        return _safe(self._pdf_local(uv, wi_l, wo_l), (wi[:, 2] > 0) & (wo[:, 2] > 0))

    def sample_direction(self, uv: Tensor, wi: Tensor, u: Tensor, u_lobe: Tensor) -> tuple[Tensor, Tensor]:
        """(wo, pdf) from the analytic mixture (no random walk): pdf 0 marks an invalid sample."""
        frame = self._frame(uv)
        wi_l = wi if frame is None else self._to(frame, wi)
        weights, coat, base = self._lobes(uv, wi_l)
        wi_up = _up(wi_l)
        wo_c = _reflect(wi_l, mf_sample(coat, wi_up, u)[0])
        wo_b = _reflect(wi_l, mf_sample(base, wi_up, u)[0]) if base is not None else square_to_cosine_hemisphere(u)
        wo_u = square_to_cosine_hemisphere(u)
        c0 = weights[:, 0]
        c1 = c0 + weights[:, 1]
        wo_l = torch.where((u_lobe < c0)[:, None], wo_c, torch.where((u_lobe < c1)[:, None], wo_b, wo_u))
        wo = wo_l if frame is None else self._from(frame, wo_l)
        pdf = _safe(self._pdf_local(uv, wi_l, wo_l), (wi[:, 2] > 0) & (wo[:, 2] > 0) & (wo_l[:, 2] > 0))
        return torch.where((pdf > 0)[:, None], wo, 0.0), pdf

    def sample(self, uv: Tensor, wi: Tensor, u: Tensor, u_lobe: Tensor, n_samples: Optional[int] = None):
        """(wo, weight = eval / pdf, pdf); the value is the random-walk estimate at (wi, wo)."""
        wo, pdf = self.sample_direction(uv, wi, u, u_lobe)
        ok = pdf > 0
        value = self.eval(uv, wi, torch.where(ok[:, None], wo, wi), n_samples)
        return wo, _safe(value / pdf.clamp_min(1e-30)[:, None], ok), pdf

    def albedo(self, uv: Tensor) -> Tensor:
        """Base colour for the albedo AOV (conductor: normal-incidence Fresnel times the tint)."""
        p = self.layer_params(uv)
        if self.base == "diffuse":
            return p.base_color
        one = torch.ones(len(uv), device=uv.device)
        return fresnel_conductor(one, p.base_eta, p.base_k) * p.base_color


# ---------------------------------------------------------------------------------------------------------
# XML: <bsdf type="layered"> (Mitsuba-style names) and pbrt-v4's coatedconductor / coateddiffuse (pbrt names and
# defaults: materials.cpp; roughness remapped to alpha = sqrt(roughness) unless remaproughness is false).

def _scalar_or_texture(r, name: str, default: float):
    if name not in r.o.props:
        r.prop(name, ("float",))  # records the name for "expected: ..." hints
        return float(default)
    return r.alpha(name)  # a texture, or a float >= 0


def _common(r, params: dict) -> dict:
    md = r.int("maxdepth", 10) if "maxdepth" in r.o.props else r.int("max_depth", 10)
    ns = r.int("nsamples", 1) if "nsamples" in r.o.props else r.int("n_samples", 1)
    for name, v in (("max_depth", md), ("n_samples", ns)):
        if v < 1:
            key = name if name in r.o.props else name.replace("_", "")
            raise r.ld.err(r.o.props[key].el, f"{key} must be >= 1, got {v}")
    params.update(max_depth=md, n_samples=ns, thickness=_scalar_or_texture(r, "thickness", 0.01),
                  albedo=r.color("albedo", 0.0), g=r.float("g", 0.0))
    if not -1 < params["g"] < 1:
        raise r.ld.err(r.o.props["g"].el, f"g must lie in (-1, 1), got {params['g']}")
    p = r.prop("normalmap", ("string", "object", "ref"))
    if p is not None:
        if p.kind == "string":
            img = r.ld.image(r, "normalmap", raw=True)
            if img.shape[-1] != 3:
                raise r.ld.err(p.el, f"normal map must have 3 channels, got {img.shape[-1]}")
            params["normalmap"] = Texture("bitmap", {"filter_type": "bilinear", "wrap_mode": "repeat", "raw": True,
                                                     "filename": p.value}, image=img)
        else:
            params["normalmap"] = r.object_prop("normalmap", ("texture",))
    return params


def _eta(r, name: str, default: float) -> float:
    if name not in r.o.props:
        r.prop(name, ("float",))
        return default
    v = r.ior(name, "bk7")
    if v <= 0:
        raise r.ld.err(r.o.props[name].el, f"{name} must be positive, got {v}")
    return v


def _conductor_ior(r, prefix: str, params: dict) -> None:
    names = (prefix + "eta", prefix + "k")
    if "material" in r.o.props and any(n in r.o.props for n in names):
        raise r.ld.err(r.o.props["material"].el, f"give either material or {names[0]}/{names[1]}, not both")
    if any(n in r.o.props for n in names):
        params["base_eta"] = r.rgb(names[0], 0.0)
        params["base_k"] = r.rgb(names[1], 1.0)
        return
    material = r.string("material", "Cu")
    if material not in mitsuba_tables.CONDUCTORS:
        raise r.ld.err(r.o.props["material"].el, f"unknown conductor material '{material}' "
                       f"(expected one of: {', '.join(mitsuba_tables.CONDUCTORS)})")
    params["base_eta"], params["base_k"] = (np.asarray(v, np.float32) for v in mitsuba_tables.CONDUCTORS[material])


def parse_layered(r) -> dict:
    base = r.choice("base", "conductor", ("conductor", "diffuse"))
    params = {"base": base, "coat_eta": _eta(r, "coat_eta", 1.5),
              "coat_alpha": _scalar_or_texture(r, "coat_alpha", 0.0),
              "base_alpha": _scalar_or_texture(r, "base_alpha", 0.0),
              "base_color": r.color("base_color", 1.0 if base == "conductor" else 0.5)}
    if base == "conductor":
        _conductor_ior(r, "", params)
    return _common(r, params)


def parse_coatedconductor(r) -> dict:
    params = {"base": "conductor", "twosided": True, "coat_eta": _eta(r, "interface.eta", 1.5),
              "coat_alpha": _scalar_or_texture(r, "interface.roughness", 0.0),
              "base_alpha": _scalar_or_texture(r, "conductor.roughness", 0.0),
              "remap_roughness": r.bool("remaproughness", True)}
    if "reflectance" in r.o.props:
        if any(n in r.o.props for n in ("conductor.eta", "conductor.k", "material")):
            raise r.ld.err(r.o.props["reflectance"].el, "give either reflectance or conductor.eta/conductor.k")
        params["base_color"], params["reflectance_base"] = r.color("reflectance", 0.5), True
    else:
        r.prop("reflectance", ("rgb",))
        _conductor_ior(r, "conductor.", params)
    return _common(r, params)


def parse_coateddiffuse(r) -> dict:
    params = {"base": "diffuse", "twosided": True, "coat_eta": _eta(r, "eta", 1.5),
              "coat_alpha": _scalar_or_texture(r, "roughness", 0.0), "base_alpha": 0.0,
              "base_color": r.color("reflectance", 0.5), "remap_roughness": r.bool("remaproughness", True)}
    return _common(r, params)


def make_layered(bsdf: BSDF, where: str) -> LayeredBSDF:
    try:
        return LayeredBSDF(**bsdf.params)
    except ValueError as e:
        raise UserError(f"{where}: bsdf '{bsdf.type}': {e}") from None


register_torch_bsdf("layered", make_layered, parse_layered)
register_torch_bsdf("coatedconductor", make_layered, parse_coatedconductor)
register_torch_bsdf("coateddiffuse", make_layered, parse_coateddiffuse)


__all__ = ["LayeredBSDF", "LayerParams", "layered_f", "direction_pair_key", "PARAMETER_CHANNELS", "ALPHA_MIN",
           "Dielectric", "Conductor", "Diffuse"]
