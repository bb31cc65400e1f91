"""Materials evaluated by torch code instead of the fused kernel (layered reference, neural): protocol + registry.

All directions are in the local shading frame (z = shading normal, wi and wo point away from the surface), batched:

    value = bsdf.eval(uv, wi, wo)          # (N,3) f(wi, wo) * |cos wo|; 0 where wo is on the wrong side
    pdf = bsdf.pdf(uv, wi, wo)             # (N,)  solid-angle density of sample()
    wo, weight, pdf = bsdf.sample(uv, wi, u, u_lobe)   # weight = eval / pdf (0 for an invalid sample)
    albedo = bsdf.albedo(uv)               # (N,3) for the albedo AOV

The scene loader builds them from XML through the registry: a plugin name maps to `parse` (reads the element's
parameters with the loader's Reader, returns the BSDF params dict; unknown parameters are errors as for every
plugin) and `factory` (scene BSDF -> TorchBSDF). Scene rows of such materials get type id DEFERRED_TYPE + index
into SceneData.torch_bsdfs; the torch integrator (render/integrators/path.py) calls `eval`/`pdf`/`sample` once per
material per bounce (see `dispatch`). Modules register themselves on import; PLUGIN_MODULES says which module
defines which plugin, so that the loader imports them only when a scene uses them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Optional, Protocol, runtime_checkable

import torch
from torch import Tensor

# Plugin name -> module that calls register_torch_bsdf for it (imported on first use).
PLUGIN_MODULES = {
    "layered": "render.bsdfs.layered",
    "coatedconductor": "render.bsdfs.layered",
    "coateddiffuse": "render.bsdfs.layered",
    "neural": "render.neural.material",
}


@runtime_checkable
class TorchBSDF(Protocol):
    """A reflection material evaluated by torch, batched over N queries (see the module docstring)."""
    name: str

    def eval(self, uv: Tensor, wi: Tensor, wo: Tensor) -> Tensor: ...

    def pdf(self, uv: Tensor, wi: Tensor, wo: Tensor) -> Tensor: ...

    def sample(self, uv: Tensor, wi: Tensor, u: Tensor, u_lobe: Tensor) -> tuple[Tensor, Tensor, Tensor]: ...

    def albedo(self, uv: Tensor) -> Tensor: ...

    def to(self, device) -> "TorchBSDF": ...


@dataclass
class TorchBSDFPlugin:
    name: str
    factory: Callable[[Any, str], TorchBSDF]      # (scene BSDF, where-string for errors) -> TorchBSDF
    parse: Optional[Callable[[Any], dict]] = None  # (loader Reader) -> params dict; None: no parameters


_REGISTRY: dict[str, TorchBSDFPlugin] = {}


def register_torch_bsdf(name: str, factory: Callable[[Any, str], TorchBSDF],
                        parse: Optional[Callable[[Any], dict]] = None) -> None:
    """Make `<bsdf type="name">` load as a TorchBSDF built by factory(bsdf, where)."""
    _REGISTRY[name] = TorchBSDFPlugin(name, factory, parse)


def torch_bsdf_plugin(name: str) -> Optional[TorchBSDFPlugin]:
    """The registered plugin for an XML bsdf type, importing its module on first use; None if not a torch BSDF."""
    if name not in _REGISTRY and name in PLUGIN_MODULES:
        try:
            importlib.import_module(PLUGIN_MODULES[name])
        except ModuleNotFoundError as e:
            if not PLUGIN_MODULES[name].startswith(e.name or "\0"):
                raise
    return _REGISTRY.get(name)


def is_torch_bsdf(name: str) -> bool:
    return torch_bsdf_plugin(name) is not None


def load_torch_material(path, bsdf_id: Optional[str] = None, device="cpu") -> TorchBSDF:
    """The torch material of a scene file (e.g. scenes/materials/brass.xml): the one with id `bsdf_id`, or the only
    one the scene uses. A scene without it, or with several and no id, is a UserError naming the file."""
    from ..errors import UserError
    from ..scene import load_scene

    scene = load_scene(path)
    found: dict[str, Any] = {}
    for b in list(scene.bsdfs.values()) + [s.bsdf for s in scene.shapes]:
        inner = b.nested[0] if b.type == "twosided" and len(b.nested) == 1 else b
        if torch_bsdf_plugin(inner.type) is not None:
            found.setdefault(b.id or inner.id or f"<unnamed {inner.type}>", b)
    if bsdf_id is not None:
        if bsdf_id not in found:
            raise UserError(f"{path}: no layered/neural bsdf with id '{bsdf_id}' (found: {', '.join(found) or 'none'})")
        chosen = found[bsdf_id]
    elif len(found) == 1:
        bsdf_id, chosen = next(iter(found.items()))
    else:
        raise UserError(f"{path}: expected one layered/neural bsdf, found {len(found)}"
                        + (f" ({', '.join(found)}); pick one by id" if found else ""))
    inner = chosen.nested[0] if chosen.type == "twosided" else chosen
    return torch_bsdf_plugin(inner.type).factory(inner, f"{path}: bsdf '{bsdf_id}'").to(device)


def flip_to_front(wi: Tensor, wo: Optional[Tensor], twosided: Tensor):
    """Mitsuba's twosided: where `twosided` and wi is below the surface, mirror wi (and wo) to the front.
    Returns (flip mask, wi, wo)."""
    flip = twosided & (wi[:, 2] < 0)
    sign = torch.where(flip, -1.0, 1.0).to(wi.dtype)[:, None]
    scale = torch.cat([torch.ones_like(sign), torch.ones_like(sign), sign], 1)
    return flip, wi * scale, (wo * scale if wo is not None else None)


def dispatch(bsdfs: list[TorchBSDF], which: Tensor, fn: Callable[[TorchBSDF, Tensor], tuple], n: int,
             outputs: tuple[tuple[int, ...], ...], device, dtype=torch.float32) -> tuple[Tensor, ...]:
    """Run fn(bsdf, selection) once per material over the items `which == index` and scatter the results.

    outputs: trailing shape of each returned tensor (e.g. ((3,), ()) for eval and pdf). Items whose `which` is
    negative stay zero."""
    out = tuple(torch.zeros((n,) + shape, device=device, dtype=dtype) for shape in outputs)
    for k, bsdf in enumerate(bsdfs):
        sel = torch.nonzero(which == k)[:, 0]
        if len(sel) == 0:
            continue
        res = fn(bsdf, sel)
        res = res if isinstance(res, tuple) else (res,)
        for o, r in zip(out, res):
            o[sel] = r.to(dtype)
    return out


__all__ = ["TorchBSDF", "TorchBSDFPlugin", "register_torch_bsdf", "torch_bsdf_plugin", "is_torch_bsdf",
           "load_torch_material",
           "flip_to_front", "dispatch", "PLUGIN_MODULES"]
