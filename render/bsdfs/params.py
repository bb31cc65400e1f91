"""Packs Mitsuba-named BSDF properties into the float32 parameter rows of bsdf_params.h (Mitsuba 3 defaults)."""

from __future__ import annotations

import functools

import numpy as np
import torch

from ..scene.mitsuba_tables import CONDUCTORS
from ..scene.mitsuba_tables import IORS as IOR_TABLE
from .layout import FIELDS, PARAM_COUNT, ROUGH_TRANSMITTANCE_RES, TYPES

# Mitsuba's named IORs (include/mitsuba/render/ior.h) and conductors, generated from Mitsuba itself.

_COMMON = {"twosided"}
_MICROFACET = {"distribution", "alpha", "alpha_u", "alpha_v", "sample_visible"}
ALLOWED = {
    "diffuse": {"reflectance"},
    "conductor": {"eta", "k", "material", "specular_reflectance"},
    "roughconductor": {"eta", "k", "material", "specular_reflectance"} | _MICROFACET,
    "dielectric": {"int_ior", "ext_ior", "specular_reflectance", "specular_transmittance"},
    "thindielectric": {"int_ior", "ext_ior", "specular_reflectance", "specular_transmittance"},
    "roughdielectric": {"int_ior", "ext_ior", "specular_reflectance", "specular_transmittance"} | _MICROFACET,
    "plastic": {"int_ior", "ext_ior", "diffuse_reflectance", "specular_reflectance", "nonlinear", "diffuse_mean",
                "specular_mean"},
    "roughplastic": {"int_ior", "ext_ior", "diffuse_reflectance", "specular_reflectance", "nonlinear",
                     "diffuse_mean", "specular_mean"} | _MICROFACET,
}
TRANSMISSIVE = {"dielectric", "thindielectric", "roughdielectric"}


def lookup_ior(value, name: str) -> float:
    if isinstance(value, str):
        key = value.lower()
        if key not in IOR_TABLE:
            raise ValueError(f"{name}: unknown IOR name {value!r} (known: {', '.join(sorted(IOR_TABLE))})")
        return IOR_TABLE[key]
    v = float(value)
    if not v > 0:
        raise ValueError(f"{name}: expected a positive index of refraction, got {value!r}")
    return v


def _rgb(value, name: str) -> list[float]:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3 or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected a float or 3 finite RGB values, got {value!r}")
    return arr.tolist()


def _microfacet(props: dict, type_name: str) -> tuple[int, float, float, bool]:
    distr = str(props.get("distribution", "beckmann")).lower()
    if distr not in ("beckmann", "ggx"):
        raise ValueError(f"{type_name}: distribution must be 'beckmann' or 'ggx', got {distr!r}")
    if "alpha" in props and ("alpha_u" in props or "alpha_v" in props):
        raise ValueError(f"{type_name}: specify either alpha or alpha_u/alpha_v")
    if ("alpha_u" in props) != ("alpha_v" in props):
        raise ValueError(f"{type_name}: both alpha_u and alpha_v must be given")
    au = float(props.get("alpha_u", props.get("alpha", 0.1)))
    av = float(props.get("alpha_v", props.get("alpha", 0.1)))
    if not (au > 0 and av > 0):
        raise ValueError(f"{type_name}: alpha must be positive, got ({au}, {av})")
    au, av = max(au, 1e-4), max(av, 1e-4)  # Mitsuba MicrofacetDistribution::configure()
    return (0 if distr == "beckmann" else 1), au, av, bool(props.get("sample_visible", True))


def pack_bsdf(type_name: str, **props) -> torch.Tensor:
    """One packed row (PARAM_COUNT,) float32 for a BSDF of Mitsuba plugin `type_name` with Mitsuba property names.

    Spectra are floats or RGB triples (textures are resolved by the caller). `twosided=True` stands for wrapping
    the BSDF in Mitsuba's `twosided`. For plastic/roughplastic with textured reflectances pass `diffuse_mean` /
    `specular_mean` (the texture means Mitsuba uses for the specular sampling weight).
    """
    if type_name not in TYPES:
        raise ValueError(f"unknown BSDF type {type_name!r} (known: {', '.join(TYPES)})")
    unknown = set(props) - ALLOWED[type_name] - _COMMON
    if unknown:
        raise ValueError(f"{type_name}: unknown parameter(s) {', '.join(sorted(unknown))}")
    row = np.zeros(PARAM_COUNT, dtype=np.float64)

    def put(name, value):
        off, width, _ = FIELDS[name]
        row[off:off + width] = value

    put("type", TYPES[type_name])
    twosided = bool(props.get("twosided", False))
    if twosided and type_name in TRANSMISSIVE:
        raise ValueError(f"{type_name}: twosided is only for reflection BSDFs")
    put("twosided", float(twosided))
    put("alpha_u", 0.1)
    put("alpha_v", 0.1)
    put("eta", 1.0)
    put("specular_reflectance", [1.0] * 3)
    put("specular_transmittance", [1.0] * 3)
    put("sample_visible", 1.0)
    put("conductor_k", [1.0] * 3)  # Mitsuba's material="none": a perfect mirror (eta 0, k 1)

    if type_name == "diffuse":
        put("diffuse_reflectance", _rgb(props.get("reflectance", 0.5), "reflectance"))
    if type_name in ("conductor", "roughconductor"):
        material = props.get("material", "none")
        if material != "none" and ("eta" in props or "k" in props):
            raise ValueError(f"{type_name}: specify either (eta, k) or material, not both")
        if "eta" in props or "k" in props or material == "none":
            put("conductor_eta", _rgb(props.get("eta", 0.0), "eta"))
            put("conductor_k", _rgb(props.get("k", 1.0), "k"))
        else:
            if material not in CONDUCTORS:
                raise ValueError(f"{type_name}: unknown material {material!r} (known: {', '.join(CONDUCTORS)})")
            eta, k = CONDUCTORS[material]
            put("conductor_eta", list(eta))
            put("conductor_k", list(k))
    if "specular_reflectance" in props:
        put("specular_reflectance", _rgb(props["specular_reflectance"], "specular_reflectance"))
    if "specular_transmittance" in props:
        put("specular_transmittance", _rgb(props["specular_transmittance"], "specular_transmittance"))
    if type_name in TRANSMISSIVE or type_name in ("plastic", "roughplastic"):
        default_int = "polypropylene" if "plastic" in type_name else "bk7"
        int_ior = lookup_ior(props.get("int_ior", default_int), "int_ior")
        ext_ior = lookup_ior(props.get("ext_ior", "air"), "ext_ior")
        if int_ior == ext_ior and type_name != "dielectric":
            raise ValueError(f"{type_name}: int_ior and ext_ior must differ")
        put("eta", int_ior / ext_ior)
    if type_name.startswith("rough"):
        distr, au, av, visible = _microfacet(props, type_name)
        if type_name == "roughplastic" and au != av:
            raise ValueError("roughplastic: anisotropic roughness is not supported (as in Mitsuba)")
        put("distribution", distr)
        put("alpha_u", au)
        put("alpha_v", av)
        put("sample_visible", float(visible))
    if type_name in ("plastic", "roughplastic"):
        diffuse = _rgb(props.get("diffuse_reflectance", 0.5), "diffuse_reflectance")
        put("diffuse_reflectance", diffuse)
        put("nonlinear", float(bool(props.get("nonlinear", False))))
        d_mean = float(props.get("diffuse_mean", np.mean(diffuse)))
        s_mean = float(props.get("specular_mean", np.mean(row[FIELDS["specular_reflectance"][0]:][:3])))
        put("specular_sampling_weight", s_mean / (d_mean + s_mean))
        eta = float(row[FIELDS["eta"][0]])
        if type_name == "plastic":
            from .reference import fresnel_diffuse_reflectance

            put("internal_reflectance", fresnel_diffuse_reflectance(1.0 / eta))
        else:
            table, internal = roughplastic_tables(int(row[FIELDS["distribution"][0]]),
                                                  float(np.float32(row[FIELDS["alpha_u"][0]])), float(np.float32(eta)))
            put("external_transmittance", table)
            put("internal_reflectance", internal)
    return torch.from_numpy(row.astype(np.float32))


def pack_bsdfs(rows) -> torch.Tensor:
    """Stacks packed rows into a material table (M, PARAM_COUNT)."""
    return torch.stack([torch.as_tensor(r, dtype=torch.float32) for r in rows])


# ---------------------------------------------------------------------------------------------------------
# roughplastic: Mitsuba precomputes, per material, the rough coat's transmittance at 64 cosines and the
# internal (cosine-weighted) reflectance by Gauss-Legendre quadrature over visible normals
# (microfacet.h eval_transmittance / eval_reflectance). We compute the same integrals the same way, in float64,
# with our visible-normal sampler as the quadrature map (so values agree with Mitsuba's to quadrature accuracy).

def _gauss_legendre_grid(res: int):
    nodes, weights = np.polynomial.legendre.leggauss(res)
    nx, ny = np.meshgrid(nodes, nodes, indexing="ij")
    wx, wy = np.meshgrid(weights, weights, indexing="ij")
    u = torch.from_numpy(np.stack([nx.ravel(), ny.ravel()], -1) * 0.5 + 0.5)
    w = torch.from_numpy((wx * wy).ravel())
    return u, w


def _coat_integral(distribution: int, alpha: float, eta: float, mu: torch.Tensor, transmit: bool) -> torch.Tensor:
    from . import reference as ref

    res = 32 if eta > 1 else 128
    u, w = _gauss_legendre_grid(res)
    k, q = mu.shape[0], u.shape[0]
    wi = torch.stack([torch.sqrt(1 - mu * mu), torch.zeros_like(mu), mu], -1)
    wi = wi[:, None, :].expand(k, q, 3).reshape(-1, 3)
    uu = u[None].expand(k, q, 2).reshape(-1, 2)
    n = wi.shape[0]
    dist = (torch.full((n,), distribution), torch.full((n,), alpha, dtype=torch.float64),
            torch.full((n,), alpha, dtype=torch.float64), torch.ones(n, dtype=torch.bool))
    m, _ = ref.mf_sample(dist, wi, uu)
    f, cos_t, _, eta_ti = ref.fresnel_dielectric(ref.dot(wi, m), eta)
    if transmit:
        wo = ref.refract(wi, m, cos_t, eta_ti)
        val = ref.mf_smith_g1(dist, wo, m) * (1 - f)
        val = torch.where(wo[:, 2] * wi[:, 2] >= 0, torch.zeros_like(val), val)
    else:
        wo = ref.reflect(wi, m)
        val = ref.mf_smith_g1(dist, wo, m) * f
        val = torch.where((wo[:, 2] <= 0) | (wi[:, 2] <= 0), torch.zeros_like(val), val)
    val = torch.nan_to_num(val, nan=0.0)
    return (val.reshape(k, q) * w[None] * 0.25).sum(1)


@functools.lru_cache(maxsize=256)
def roughplastic_tables(distribution: int, alpha: float, eta: float) -> tuple[list[float], float]:
    """(external transmittance at cos_theta = max(1e-6, j/63), internal reflectance) as Mitsuba roughplastic."""
    mu = torch.clamp(torch.linspace(0, 1, ROUGH_TRANSMITTANCE_RES, dtype=torch.float64), min=1e-6)
    ext = _coat_integral(distribution, alpha, eta, mu, transmit=True)
    internal = float((_coat_integral(distribution, alpha, 1.0 / eta, mu, transmit=False) * mu).mean() * 2.0)
    return ext.tolist(), internal


__all__ = ["pack_bsdf", "pack_bsdfs", "lookup_ior", "roughplastic_tables", "IOR_TABLE", "CONDUCTORS"]
