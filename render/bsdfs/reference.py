"""Pure-torch reference of every BSDF in cuda/include/radiant/bsdf.h: same math, same order, vectorized with masks.

`bsdf_eval_reference`, `bsdf_pdf_reference` and `bsdf_sample_reference` have the signatures of the kernel
wrappers in render/bsdfs/kernels.py and run in float32 (or float64 when given float64 inputs, used to compute
roughplastic's tables). Directions are in the local shading frame (z = normal, wi and wo point away).
"""

from __future__ import annotations

import math

import torch

from ..core.warp import (safe_sqrt, square_to_cosine_hemisphere, square_to_cosine_hemisphere_pdf,
                         square_to_uniform_disk_concentric)
from .layout import FIELDS, FLAGS, ROUGH_TRANSMITTANCE_RES, TYPES

BECKMANN, GGX = 0, 1
INV_PI = 1.0 / math.pi
INV_SQRT_PI = 1.0 / math.sqrt(math.pi)


# ---------------------------------------------------------------------------------------------------------
# Small vector helpers on (..., 3) tensors.

def dot(a, b):
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def normalize(a):
    return a * (1.0 / torch.sqrt(dot(a, a)))[..., None]


def cross(a, b):
    return torch.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1], a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                        a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], -1)


def vec3(x, y, z):
    return torch.stack([x, y, z], -1)


def mulsign(x, y):
    s = torch.where(y >= 0, 1.0, -1.0).to(y.dtype)
    return x * (s[..., None] if x.dim() > y.dim() else s)


def _where3(mask, a, b):
    return torch.where(mask[..., None], a, b)


# ---------------------------------------------------------------------------------------------------------
# Fresnel (fresnel.h)

def fresnel_dielectric(cos_i, eta):
    """Returns (r, cos_t, eta_it, eta_ti); eta may be a tensor broadcastable to cos_i."""
    eta = torch.as_tensor(eta, dtype=cos_i.dtype, device=cos_i.device).expand_as(cos_i)
    outside = cos_i >= 0
    rcp_eta = 1.0 / eta
    eta_it = torch.where(outside, eta, rcp_eta)
    eta_ti = torch.where(outside, rcp_eta, eta)
    cos_t_sqr = 1.0 - (1.0 - cos_i * cos_i) * (eta_ti * eta_ti)
    cos_i_abs = cos_i.abs()
    cos_t_abs = safe_sqrt(cos_t_sqr)
    index_matched = eta == 1.0
    special = index_matched | (cos_i_abs == 0)
    a_s = (cos_i_abs - eta_it * cos_t_abs) / (cos_i_abs + eta_it * cos_t_abs)
    a_p = (cos_t_abs - eta_it * cos_i_abs) / (cos_t_abs + eta_it * cos_i_abs)
    r = 0.5 * (a_s * a_s + a_p * a_p)
    r = torch.where(special, torch.where(index_matched, 0.0, 1.0).to(r.dtype), r)
    cos_t = torch.where(cos_i >= 0, -cos_t_abs, cos_t_abs)
    return r, cos_t, eta_it, eta_ti


def fresnel_conductor(cos_i, eta, k):
    """cos_i (N,), eta/k (N,3) -> (N,3)."""
    cos_i = cos_i[..., None]
    cos2 = cos_i * cos_i
    sin2 = 1.0 - cos2
    sin4 = sin2 * sin2
    temp1 = eta * eta - k * k - sin2
    a2pb2 = safe_sqrt(temp1 * temp1 + 4.0 * k * k * eta * eta)
    a = safe_sqrt(0.5 * (a2pb2 + temp1))
    term1 = a2pb2 + cos2
    term2 = 2.0 * cos_i * a
    r_s = (term1 - term2) / (term1 + term2)
    term3 = a2pb2 * cos2 + sin4
    term4 = term2 * sin2
    r_p = r_s * (term3 - term4) / (term3 + term4)
    return 0.5 * (r_s + r_p)


def fresnel_diffuse_reflectance(eta: float) -> float:
    """Hemispherical average of dielectric Fresnel (Egan-Hilgeman for eta < 1, d'Eon-Irving otherwise)."""
    e = torch.tensor(eta, dtype=torch.float32)
    inv = 1.0 / e
    approx1 = 0.0636 * inv + (e * (e * -1.4399 + 0.7099) + 0.6681)
    approx2 = ((((-1.36881 * inv + 4.98554) * inv - 7.80989) * inv + 6.75335) * inv - 3.4793) * inv + 0.919317
    return float(approx1 if eta < 1.0 else approx2)


def reflect(wi, m):
    return m * (2.0 * dot(wi, m))[..., None] - wi


def reflect_local(wi):
    return vec3(-wi[..., 0], -wi[..., 1], wi[..., 2])


def refract(wi, m, cos_t, eta_ti):
    return m * (dot(wi, m) * eta_ti + cos_t)[..., None] - wi * eta_ti[..., None]


def refract_local(wi, cos_t, eta_ti):
    return vec3(-eta_ti * wi[..., 0], -eta_ti * wi[..., 1], cos_t)


# ---------------------------------------------------------------------------------------------------------
# Microfacet distributions (microfacet.h). `dist` is (type, alpha_u, alpha_v, sample_visible), each (N,).

def erfinv_approx(x):
    """Giles 2010 single-precision erfinv (the kernels' version, not torch.erfinv, so that both agree)."""
    w = -torch.log((1.0 - x) * (1.0 + x))
    w1 = w - 2.5
    p1 = torch.full_like(x, 2.81022636e-08)
    for c in (3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087, -0.00125372503, -0.00417768164,
              0.246640727, 1.50140941):
        p1 = c + p1 * w1
    w2 = torch.sqrt(w) - 3.0
    p2 = torch.full_like(x, -0.000200214257)
    for c in (0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773, -0.0076224613, 0.00943887047,
              1.00167406, 2.83297682):
        p2 = c + p2 * w2
    return torch.where(w < 5.0, p1, p2) * x


def mf_D(dist, m):
    typ, au, av, _ = dist
    cos_theta = m[..., 2]
    cos2 = cos_theta * cos_theta
    ax = m[..., 0] / au
    ay = m[..., 1] / av
    beck = torch.exp(-(ax * ax + ay * ay) / cos2) / (math.pi * au * av * (cos2 * cos2))
    t = ax * ax + ay * ay + m[..., 2] * m[..., 2]
    ggx = 1.0 / (math.pi * au * av * (t * t))
    result = torch.where(typ == BECKMANN, beck, ggx)
    return torch.where(result * cos_theta > 1e-20, result, torch.zeros_like(result))


def mf_smith_g1(dist, v, m):
    typ, au, av, _ = dist
    xy_alpha_2 = (au * v[..., 0]) * (au * v[..., 0]) + (av * v[..., 1]) * (av * v[..., 1])
    tan_theta_alpha_2 = xy_alpha_2 / (v[..., 2] * v[..., 2])
    a = 1.0 / torch.sqrt(tan_theta_alpha_2)
    a2 = a * a
    beck = torch.where(a >= 1.6, torch.ones_like(a), (3.535 * a + 2.181 * a2) / (1.0 + 2.276 * a + 2.577 * a2))
    ggx = 2.0 / (1.0 + torch.sqrt(1.0 + tan_theta_alpha_2))
    result = torch.where(typ == BECKMANN, beck, ggx)
    result = torch.where(xy_alpha_2 == 0, torch.ones_like(result), result)
    return torch.where(dot(v, m) * v[..., 2] <= 0, torch.zeros_like(result), result)


def mf_G(dist, wi, wo, m):
    return mf_smith_g1(dist, wi, m) * mf_smith_g1(dist, wo, m)


def mf_pdf(dist, wi, m):
    result = mf_D(dist, m)
    vis = mf_smith_g1(dist, wi, m) * dot(wi, m).abs() / wi[..., 2]
    return torch.where(dist[3], result * vis, result * m[..., 2])


def _sample_visible_11_ggx(cos_theta_i, u):
    """Heitz 2018 through a concentric disk, as slopes (microfacet.h sample_visible_11_ggx)."""
    p = square_to_uniform_disk_concentric(u)
    px, py = p[..., 0], p[..., 1]
    s = 0.5 * (1.0 + cos_theta_i)
    h = safe_sqrt(1.0 - px * px)
    py = h + s * (py - h)
    z = safe_sqrt(1.0 - (px * px + py * py))
    sin_theta_i = safe_sqrt(1.0 - cos_theta_i * cos_theta_i)
    norm = 1.0 / (sin_theta_i * py + cos_theta_i * z)
    return (cos_theta_i * py - sin_theta_i * z) * norm, px * norm


def _sample_visible_11_beckmann(cos_theta_i, u):
    tan_theta_i = safe_sqrt(1.0 - cos_theta_i * cos_theta_i) / cos_theta_i
    cot_theta_i = 1.0 / tan_theta_i
    maxval = torch.erf(cot_theta_i)
    ux = torch.clamp(u[..., 0], 1e-6, 1.0 - 1e-6)
    uy = torch.clamp(u[..., 1], 1e-6, 1.0 - 1e-6)
    x = maxval - (maxval + 1.0) * torch.erf(torch.sqrt(-torch.log(ux)))
    ux = ux * (1.0 + maxval + INV_SQRT_PI * tan_theta_i * torch.exp(-cot_theta_i * cot_theta_i))
    for _ in range(3):
        slope = erfinv_approx(x)
        value = 1.0 + x + INV_SQRT_PI * tan_theta_i * torch.exp(-slope * slope) - ux
        derivative = 1.0 - slope * tan_theta_i
        x = x - value / derivative
    return erfinv_approx(x), erfinv_approx(2.0 * uy - 1.0)


def _sample_all_normals(typ, au, av, u1, u2):
    """All-normals sampling of D(m) cos(m) (Walter et al. 2007 eqs. 28, 35; anisotropic azimuth)."""
    iso = au == av
    phi = 2.0 * math.pi * u2
    ratio = av / au
    tmp = ratio * torch.tan(2.0 * math.pi * u2)
    cos_phi_a = 1.0 / torch.sqrt(tmp * tmp + 1.0)
    cos_phi_a = torch.where((u2 - 0.5).abs() - 0.25 < 0, -cos_phi_a, cos_phi_a)
    sin_phi_a = cos_phi_a * tmp
    cu, sv = cos_phi_a / au, sin_phi_a / av
    sin_phi = torch.where(iso, torch.sin(phi), sin_phi_a)
    cos_phi = torch.where(iso, torch.cos(phi), cos_phi_a)
    alpha_2 = torch.where(iso, au * au, 1.0 / (cu * cu + sv * sv))
    cos_beck = 1.0 / torch.sqrt(1.0 - alpha_2 * torch.log(1.0 - u1))
    tan_theta_m_2 = alpha_2 * u1 / (1.0 - u1)
    cos_ggx = 1.0 / torch.sqrt(1.0 + tan_theta_m_2)
    cos_theta = torch.where(typ == BECKMANN, cos_beck, cos_ggx)
    sin_theta = safe_sqrt(1.0 - cos_theta * cos_theta)
    return vec3(cos_phi * sin_theta, sin_phi * sin_theta, cos_theta)


def mf_sample(dist, wi, u):
    """Microfacet normal m for upper-hemisphere wi, and pdf(wi, m)."""
    typ, au, av, visible = dist
    u1, u2 = u[..., 0], u[..., 1]
    need_all = not bool(visible.all())
    need_ggx = bool((typ == GGX).any()) and bool(visible.any())
    need_beck = bool((typ == BECKMANN).any()) and bool(visible.any())
    m_all = m_ggx = m_beck = torch.zeros_like(wi)
    if need_all:
        m_all = _sample_all_normals(typ, au, av, u1, u2)
    # Visible normals (Heitz & d'Eon 2014, algorithm 1): stretch, sample unit-roughness slopes, rotate, unstretch.
    wi_p = normalize(vec3(au * wi[..., 0], av * wi[..., 1], wi[..., 2]))
    sin_theta_2 = wi_p[..., 0] * wi_p[..., 0] + wi_p[..., 1] * wi_p[..., 1]
    inv = 1.0 / torch.sqrt(sin_theta_2)
    degenerate = sin_theta_2 <= 4.0 * 5.9604645e-8
    cphi = torch.where(degenerate, torch.ones_like(inv), torch.clamp(wi_p[..., 0] * inv, -1.0, 1.0))
    sphi = torch.where(degenerate, torch.zeros_like(inv), torch.clamp(wi_p[..., 1] * inv, -1.0, 1.0))

    def unstretch(slx, sly):
        sx = (cphi * slx - sphi * sly) * au
        sy = (sphi * slx + cphi * sly) * av
        return normalize(vec3(-sx, -sy, torch.ones_like(sx)))

    if need_ggx:
        m_ggx = unstretch(*_sample_visible_11_ggx(wi_p[..., 2], u))
    if need_beck:
        m_beck = unstretch(*_sample_visible_11_beckmann(wi_p[..., 2], u))
    m_vis = _where3(typ == GGX, m_ggx, m_beck)

    m = _where3(visible, m_vis, m_all)
    return m, mf_pdf(dist, wi, m)


# ---------------------------------------------------------------------------------------------------------
# Parameter rows

class Rows:
    """Named views of gathered parameter rows (N, P)."""

    def __init__(self, rows: torch.Tensor):
        self.rows = rows
        for name, (offset, width, _) in FIELDS.items():
            v = rows[:, offset:offset + width]
            setattr(self, name, v[:, 0] if width == 1 else v)
        self.type = self.type.round().long()
        self.distribution = self.distribution.round().long()
        for flag in ("twosided", "sample_visible", "nonlinear"):
            setattr(self, flag, getattr(self, flag) != 0)

    def dist(self, scale=None):
        au, av = self.alpha_u, self.alpha_v
        if scale is not None:
            au, av = au * scale, av * scale
        return (self.distribution, au, av, self.sample_visible)


def gather_rows(params: torch.Tensor, n: int, index=None) -> torch.Tensor:
    if index is not None:
        return params[index.long()]
    if params.shape[0] == 1:
        return params.expand(n, -1)
    return params


def lerp_table(table, x):
    """table (N, R) over [0, 1], x (N,) (Mitsuba roughplastic lerp_gather)."""
    res = table.shape[-1]
    x = torch.nan_to_num(x.clamp(0.0, 1.0)) * float(res - 1)
    index = torch.clamp(x.long(), max=res - 2)  # truncation toward zero, like the C++ int cast
    w = x - index.to(x.dtype)
    v0 = table.gather(1, index[:, None])[:, 0]
    v1 = table.gather(1, (index + 1)[:, None])[:, 0]
    return v0 + w * (v1 - v0)


def _coated_diffuse(p: Rows, internal):
    d = p.diffuse_reflectance
    nonlinear = d / (1.0 - d * internal[:, None])
    linear = d * (1.0 / (1.0 - internal))[:, None]
    return _where3(p.nonlinear, nonlinear, linear)


def _plastic_prob_specular(p: Rows, f_i):
    ps = f_i * p.specular_sampling_weight
    pd = (1.0 - f_i) * (1.0 - p.specular_sampling_weight)
    return ps / (ps + pd)


def _roughplastic_prob_specular(p: Rows, cos_i):
    t_i = lerp_table(p.external_transmittance, cos_i)
    ps = (1.0 - t_i) * p.specular_sampling_weight
    pd = t_i * (1.0 - p.specular_sampling_weight)
    return ps / (ps + pd)


def _mf_reflection_pdf(dist, wi, wo, h):
    vis = mf_D(dist, h) * mf_smith_g1(dist, wi, h) / (4.0 * wi[..., 2])
    allm = mf_pdf(dist, wi, h) / (4.0 * dot(wo, h))
    return torch.where(dist[3], vis, allm)


# ---------------------------------------------------------------------------------------------------------
# eval / pdf per type (front side resolved); each returns values for all rows of `p`.

def _eval_front(p: Rows, wi, wo):
    t = p.type
    cos_i, cos_o = wi[..., 2], wo[..., 2]
    both_up = (cos_i > 0) & (cos_o > 0)
    out = torch.zeros_like(wi)

    def put(type_name, mask, value):
        nonlocal out
        out = _where3((t == TYPES[type_name]) & mask, value, out)

    put("diffuse", both_up, p.diffuse_reflectance * (INV_PI * cos_o)[:, None])

    dist = p.dist()
    h = normalize(wo + wi)
    d = mf_D(dist, h)
    g = mf_G(dist, wi, wo, h)
    value = d * g / (4.0 * cos_i)
    f = fresnel_conductor(dot(wi, h), p.conductor_eta, p.conductor_k)
    put("roughconductor", both_up & (d != 0), f * p.specular_reflectance * value[:, None])

    # roughdielectric
    is_reflect = cos_i * cos_o > 0
    eta = torch.where(cos_i > 0, p.eta, 1.0 / p.eta)
    inv_eta = torch.where(cos_i > 0, 1.0 / p.eta, p.eta)
    m = normalize(wi + wo * torch.where(is_reflect, torch.ones_like(eta), eta)[:, None])
    m = mulsign(m, m[..., 2])
    dm = mf_D(dist, m)
    fm = fresnel_dielectric(dot(wi, m), p.eta)[0]
    gm = mf_G(dist, wi, wo, m)
    refl = p.specular_reflectance * (fm * dm * gm / (4.0 * cos_i.abs()))[:, None]
    dim, dom = dot(wi, m), dot(wo, m)
    denom = dim + eta * dom
    tval = ((inv_eta * inv_eta) * (1.0 - fm) * dm * gm * eta * eta * dim * dom / (cos_i * (denom * denom))).abs()
    trans = p.specular_transmittance * tval[:, None]
    put("roughdielectric", cos_i != 0, _where3(is_reflect, refl, trans))

    # plastic
    f_i = fresnel_dielectric(cos_i, p.eta)[0]
    f_o = fresnel_dielectric(cos_o, p.eta)[0]
    inv_eta_2 = 1.0 / (p.eta * p.eta)
    diff = _coated_diffuse(p, p.internal_reflectance)
    put("plastic", both_up,
        diff * (square_to_cosine_hemisphere_pdf(wo) * inv_eta_2 * (1.0 - f_i) * (1.0 - f_o))[:, None])

    # roughplastic
    fh = fresnel_dielectric(dot(wi, h), p.eta)[0]
    spec = p.specular_reflectance * (fh * d * g / (4.0 * cos_i))[:, None]
    t_i = lerp_table(p.external_transmittance, cos_i)
    t_o = lerp_table(p.external_transmittance, cos_o)
    put("roughplastic", both_up, spec + diff * (INV_PI * inv_eta_2 * cos_o * t_i * t_o)[:, None])
    return out


def _pdf_front(p: Rows, wi, wo):
    t = p.type
    cos_i, cos_o = wi[..., 2], wo[..., 2]
    both_up = (cos_i > 0) & (cos_o > 0)
    out = torch.zeros_like(cos_i)

    def put(type_name, mask, value):
        nonlocal out
        out = torch.where((t == TYPES[type_name]) & mask, value, out)

    put("diffuse", both_up, square_to_cosine_hemisphere_pdf(wo))
    dist = p.dist()
    h = normalize(wo + wi)
    refl_pdf = _mf_reflection_pdf(dist, wi, wo, h)
    put("roughconductor", both_up & (dot(wi, h) > 0) & (dot(wo, h) > 0), refl_pdf)

    is_reflect = cos_i * cos_o > 0
    eta = torch.where(cos_i > 0, p.eta, 1.0 / p.eta)
    m = normalize(wi + wo * torch.where(is_reflect, torch.ones_like(eta), eta)[:, None])
    m = mulsign(m, m[..., 2])
    dim, dom = dot(wi, m), dot(wo, m)
    ok = (cos_i != 0) & (dim * cos_i > 0) & (dom * cos_o > 0)
    denom = dim + eta * dom
    dwh_dwo = torch.where(is_reflect, 1.0 / (4.0 * dom), (eta * eta * dom) / (denom * denom))
    scale = torch.where(p.sample_visible, torch.ones_like(cos_i), 1.2 - 0.2 * torch.sqrt(cos_i.abs()))
    prob = mf_pdf(p.dist(scale), mulsign(wi, cos_i), m)
    f = fresnel_dielectric(dim, p.eta)[0]
    prob = prob * torch.where(is_reflect, f, 1.0 - f)
    put("roughdielectric", ok, prob * dwh_dwo.abs())

    f_i = fresnel_dielectric(cos_i, p.eta)[0]
    put("plastic", both_up, square_to_cosine_hemisphere_pdf(wo) * (1.0 - _plastic_prob_specular(p, f_i)))

    ps = _roughplastic_prob_specular(p, cos_i)
    put("roughplastic", both_up, refl_pdf * ps + (1.0 - ps) * square_to_cosine_hemisphere_pdf(wo))
    return out


def _flip(p: Rows, wi, wo=None):
    flip = p.twosided & (wi[..., 2] < 0)
    sign = torch.where(flip, -1.0, 1.0).to(wi.dtype)
    wi = vec3(wi[..., 0], wi[..., 1], wi[..., 2] * sign)
    if wo is not None:
        wo = vec3(wo[..., 0], wo[..., 1], wo[..., 2] * sign)
    return flip, wi, wo


def bsdf_eval_reference(params, wi, wo, index=None):
    """(N,3) BSDF value times |cos wo| for each item (same contract as kernels.bsdf_eval)."""
    p = Rows(gather_rows(params, wi.shape[0], index))
    _, wi, wo = _flip(p, wi, wo)
    return _eval_front(p, wi, wo)


def bsdf_pdf_reference(params, wi, wo, index=None):
    p = Rows(gather_rows(params, wi.shape[0], index))
    _, wi, wo = _flip(p, wi, wo)
    return _pdf_front(p, wi, wo)


# ---------------------------------------------------------------------------------------------------------
# sample

def _sample_front(p: Rows, wi, u1, u2):
    n = wi.shape[0]
    t = p.type
    cos_i = wi[..., 2]
    zeros3 = torch.zeros_like(wi)
    wo = zeros3.clone()
    weight = zeros3.clone()
    pdf = torch.zeros_like(cos_i)
    eta_out = torch.ones_like(cos_i)
    flags = torch.zeros(n, dtype=torch.int32, device=wi.device)
    valid = torch.zeros(n, dtype=torch.bool, device=wi.device)

    def put(mask, wo_, weight_, pdf_, flags_, eta_=None, valid_=None):
        nonlocal wo, weight, pdf, flags, eta_out, valid
        wo = _where3(mask, wo_, wo)
        weight = _where3(mask, weight_, weight)
        pdf = torch.where(mask, pdf_, pdf)
        flags = torch.where(mask, flags_, flags)
        if eta_ is not None:
            eta_out = torch.where(mask, eta_, eta_out)
        valid = torch.where(mask, valid_ if valid_ is not None else torch.ones_like(valid), valid)

    def fl(name):
        return torch.full((n,), FLAGS[name], dtype=torch.int32, device=wi.device)

    def is_(name):
        return t == TYPES[name]

    up = cos_i > 0
    # diffuse
    wo_c = square_to_cosine_hemisphere(u2)
    pdf_c = square_to_cosine_hemisphere_pdf(wo_c)
    put(is_("diffuse") & up, wo_c, p.diffuse_reflectance, pdf_c, fl("diffuse_reflection"), valid_=pdf_c > 0)

    # conductor
    wr = reflect_local(wi)
    put(is_("conductor") & up, wr, fresnel_conductor(cos_i, p.conductor_eta, p.conductor_k) * p.specular_reflectance,
        torch.ones_like(cos_i), fl("delta_reflection"))

    # dielectric
    r, cos_t, eta_it, eta_ti = fresnel_dielectric(cos_i, p.eta)
    sel = u1 <= r
    pdf_d = torch.where(sel, r, 1.0 - r)
    put(is_("dielectric"), _where3(sel, wr, refract_local(wi, cos_t, eta_ti)),
        _where3(sel, p.specular_reflectance, p.specular_transmittance * (eta_ti * eta_ti)[:, None]), pdf_d,
        torch.where(sel, fl("delta_reflection"), fl("delta_transmission")),
        torch.where(sel, torch.ones_like(eta_it), eta_it), pdf_d > 0)

    # thindielectric
    rt = fresnel_dielectric(cos_i.abs(), p.eta)[0]
    rt = rt * (2.0 / (1.0 + rt))
    sel = u1 <= rt
    pdf_t = torch.where(sel, rt, 1.0 - rt)
    put(is_("thindielectric"), _where3(sel, wr, -wi), _where3(sel, p.specular_reflectance, p.specular_transmittance),
        pdf_t, torch.where(sel, fl("delta_reflection"), fl("null")), valid_=pdf_t > 0)

    # plastic
    f_i = fresnel_dielectric(cos_i, p.eta)[0]
    ps = _plastic_prob_specular(p, f_i)
    pd = 1.0 - ps
    spec = u1 < ps
    f_o = fresnel_dielectric(wo_c[..., 2], p.eta)[0]
    inv_eta_2 = 1.0 / (p.eta * p.eta)
    w_diff = _coated_diffuse(p, p.internal_reflectance) * (inv_eta_2 * (1.0 - f_i) * (1.0 - f_o) / pd)[:, None]
    w_spec = p.specular_reflectance * (f_i / ps)[:, None]
    pdf_p = torch.where(spec, ps, pd * pdf_c)
    put(is_("plastic") & up, _where3(spec, wr, wo_c), _where3(spec, w_spec, w_diff), pdf_p,
        torch.where(spec, fl("delta_reflection"), fl("diffuse_reflection")), valid_=spec | (pdf_p > 0))

    # roughconductor
    dist = p.dist()
    m, pdf_m = mf_sample(dist, wi, u2)
    wo_m = reflect(wi, m)
    dom = dot(wo_m, m)
    ok = (pdf_m > 0) & (wo_m[..., 2] > 0) & (dom > 0)
    w_vis = mf_smith_g1(dist, wo_m, m)
    w_all = mf_G(dist, wi, wo_m, m) * dot(wi, m) / (cos_i * m[..., 2])
    w = torch.where(p.sample_visible, w_vis, w_all)
    fc = fresnel_conductor(dot(wi, m), p.conductor_eta, p.conductor_k)
    put(is_("roughconductor") & up, wo_m, fc * p.specular_reflectance * w[:, None], pdf_m / (4.0 * dom),
        fl("glossy_reflection"), valid_=ok & (w > 0))

    # roughdielectric
    scale = torch.where(p.sample_visible, torch.ones_like(cos_i), 1.2 - 0.2 * torch.sqrt(cos_i.abs()))
    m, pdf_m = mf_sample(p.dist(scale), mulsign(wi, cos_i), u2)
    F, cos_t, eta_it, eta_ti = fresnel_dielectric(dot(wi, m), p.eta)
    sel = u1 <= F
    pdf_r = pdf_m * torch.where(sel, F, 1.0 - F)
    wo_r = reflect(wi, m)
    wo_t = refract(wi, m, cos_t, eta_ti)
    wo_rd = _where3(sel, wo_r, wo_t)
    eta_rd = torch.where(sel, torch.ones_like(eta_it), eta_it)
    w_rd = _where3(sel, p.specular_reflectance, p.specular_transmittance * (eta_ti * eta_ti)[:, None])
    dom = dot(wo_rd, m)
    denom = dot(wi, m) + eta_rd * dom
    dwh = torch.where(sel, 1.0 / (4.0 * dom), (eta_rd * eta_rd * dom) / (denom * denom))
    side_ok = torch.where(sel, wo_rd[..., 2] * cos_i > 0, wo_rd[..., 2] * cos_i < 0)
    pdf_rd = pdf_r * dwh.abs()
    g1 = mf_smith_g1(dist, wo_rd, m)
    # Non-visible sampling: eval / pdf (see bsdf.h for the deviation from Mitsuba's weight).
    pdf_nv = _pdf_front(p, wi, wo_rd)
    w_nv = _eval_front(p, wi, wo_rd) * (1.0 / pdf_nv)[:, None]
    vis = p.sample_visible
    ok = (cos_i != 0) & (pdf_m != 0) & (dot(wi, m) * cos_i > 0) & side_ok & torch.where(vis, (g1 > 0) & (pdf_rd > 0), pdf_nv > 0)
    put(is_("roughdielectric") & (cos_i != 0), wo_rd, _where3(vis, w_rd * g1[:, None], w_nv),
        torch.where(vis, pdf_rd, pdf_nv), torch.where(sel, fl("glossy_reflection"), fl("glossy_transmission")),
        eta_rd, ok)

    # roughplastic
    ps = _roughplastic_prob_specular(p, cos_i)
    m, _ = mf_sample(dist, wi, u2)
    spec = u1 < ps
    facing = ~spec | (dot(wi, m) > 0)
    wo_rp = _where3(spec, reflect(wi, m), wo_c)
    pdf_rp = _pdf_front(p, wi, wo_rp)
    w_rp = _eval_front(p, wi, wo_rp) * (1.0 / pdf_rp)[:, None]
    put(is_("roughplastic") & up, wo_rp, w_rp, pdf_rp,
        torch.where(spec, fl("glossy_reflection"), fl("diffuse_reflection")), valid_=(pdf_rp > 0) & facing)

    # Invalid samples: everything zero, eta 1 (bsdf.h invalid_sample()).
    wo = _where3(valid, wo, zeros3)
    weight = _where3(valid, weight, zeros3)
    pdf = torch.where(valid, pdf, torch.zeros_like(pdf))
    eta_out = torch.where(valid, eta_out, torch.ones_like(eta_out))
    flags = torch.where(valid, flags, torch.zeros_like(flags))
    return wo, weight, pdf, eta_out, flags


def bsdf_sample_reference(params, wi, sample1, sample2, index=None):
    """(wo, weight, pdf, eta, flags) as kernels.bsdf_sample."""
    p = Rows(gather_rows(params, wi.shape[0], index))
    flip, wi, _ = _flip(p, wi)
    wo, weight, pdf, eta, flags = _sample_front(p, wi, sample1, sample2)
    wo = vec3(wo[..., 0], wo[..., 1], torch.where(flip, -wo[..., 2], wo[..., 2]))
    return wo, weight, pdf, eta, flags


__all__ = ["bsdf_eval_reference", "bsdf_pdf_reference", "bsdf_sample_reference", "fresnel_dielectric",
           "fresnel_conductor", "fresnel_diffuse_reflectance", "mf_D", "mf_smith_g1", "mf_G", "mf_pdf", "mf_sample",
           "ROUGH_TRANSMITTANCE_RES"]
