"""NeuralBSDF: a baked neural material behind the TorchBSDF protocol (eval / pdf / sample / albedo / to).

eval is the decoder's f |cos wo|; sample and pdf are the sampler network's analytic lobe mixture, so MIS with
light sampling stays exact. Reflection only: 0 where wi or wo is below the surface (twosided wraps it).
Filtering (§4.1): `footprint` (N,) is the ray footprint's width in uv units (the path integrator passes it for
primary hits); the pyramid level is log2(footprint x resolution), chosen stochastically between the two nearest
levels. An explicit `lod` (N,) overrides it; neither = the finest level.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..core.warp import square_to_cosine_hemisphere, square_to_cosine_hemisphere_pdf
from .model import NeuralMaterialModel, bilinear_quads, texel_quads
from .radmat import load_radmat

ALBEDO_DIRECTIONS = 64


class NeuralBSDF:
    """sampling: "learned" (the sampler network's lobe mixture) or "cosine" (the baseline of `bench neural`)."""

    def __init__(self, model: NeuralMaterialModel, metadata: dict | None = None, name: str = "neural",
                 sampling: str = "learned"):
        if sampling not in ("learned", "cosine"):
            raise ValueError(f"sampling: expected learned or cosine, got {sampling!r}")
        self.model = model.eval()
        self.metadata = metadata or {}
        self.name = name
        self.sampling = sampling
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.model.brdf.freeze()
        finest = self.model.pyramid.levels[0]
        self._quads = texel_quads(finest.detach())   # the finest level, for one-gather bilinear lookups

    @classmethod
    def load(cls, path: Path, device="cpu", sampling: str = "learned") -> "NeuralBSDF":
        model, meta = load_radmat(path, device)
        return cls(model, meta, name=Path(path).stem, sampling=sampling)

    @property
    def device(self):
        return self.model.pyramid.levels[0].device

    def to(self, device) -> "NeuralBSDF":
        return NeuralBSDF(self.model.to(device), self.metadata, self.name, self.sampling)

    uses_footprint = True

    def latent(self, uv: torch.Tensor, lod: torch.Tensor | None = None, footprint: torch.Tensor | None = None):
        if lod is None and footprint is not None:
            lod = torch.log2((footprint * self.model.cfg.resolution).clamp_min(1.0))
        if lod is None:
            h, w, _ = self.model.pyramid.levels[0].shape
            return bilinear_quads(self._quads, h, w, uv)
        # The level choice's uniform is a hash of uv, so eval, pdf and sample of one shading point agree.
        u = torch.remainder(torch.sin(uv[:, 0] * 12.9898 + uv[:, 1] * 78.233) * 43758.5453, 1.0)
        return self.model.pyramid.lookup(uv, lod, u)

    def eval(self, uv, wi, wo, lod=None, footprint=None) -> torch.Tensor:
        with torch.inference_mode():
            return self.model.brdf.evaluate(self.latent(uv, lod, footprint), wi, wo)

    def pdf(self, uv, wi, wo, lod=None, footprint=None) -> torch.Tensor:
        if self.sampling == "cosine":
            return torch.where(wi[:, 2] > 0, square_to_cosine_hemisphere_pdf(wo), torch.zeros_like(wi[:, 2]))
        with torch.inference_mode():
            lobes = self.model.sampler.lobes(self.latent(uv, lod, footprint), wi, fused=True)
            return torch.where(wi[:, 2] > 0, lobes.pdf(wi, wo), torch.zeros_like(wi[:, 2]))

    def sample(self, uv, wi, u, u_lobe, lod=None, footprint=None):
        """Returns (wo, weight = eval / pdf, pdf); pdf 0 for an invalid sample, weight 0 also for wo below."""
        with torch.inference_mode():
            latent = self.latent(uv, lod, footprint)
            if self.sampling == "cosine":
                wo = square_to_cosine_hemisphere(u)
                pdf = torch.where(wi[:, 2] > 0, square_to_cosine_hemisphere_pdf(wo), torch.zeros_like(wi[:, 2]))
            else:
                lobes = self.model.sampler.lobes(latent, wi, fused=True)
                wo, valid = lobes.sample(wi, u, u_lobe)
                valid &= wi[:, 2] > 0
                pdf = torch.where(valid, lobes.pdf(wi, wo), torch.zeros_like(wi[:, 2]))
            value = self.model.brdf.evaluate(latent, wi, wo)
            ok = (pdf > 0) & (wo[:, 2] > 0)
            weight = torch.where(ok[:, None], value / pdf.clamp_min(1e-30)[:, None], torch.zeros_like(value))
            return wo, weight, pdf

    def albedo(self, uv, lod=None) -> torch.Tensor:
        """Directional albedo at normal incidence, integrated over 64 stratified cosine-distributed wo."""
        k = int(math.sqrt(ALBEDO_DIRECTIONS))
        g = (torch.arange(k, device=uv.device, dtype=uv.dtype) + 0.5) / k
        u = torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        wo = square_to_cosine_hemisphere(u)                                   # (K,3), pdf cos/pi
        n, m = len(uv), len(wo)
        with torch.inference_mode():
            latent = self.latent(uv, lod).repeat_interleave(m, 0)
            wi = uv.new_tensor([0.0, 0.0, 1.0]).expand(n * m, 3)
            f = self.model.brdf.evaluate(latent, wi, wo.repeat(n, 1))
            w = (math.pi / wo[:, 2].clamp_min(1e-6)).repeat(n)
            return (f * w[:, None]).reshape(n, m, 3).mean(1).clamp(0, 1)

    def memory_bytes(self) -> dict:
        """Bytes as stored in the .radmat: float16 latents, float32 network weights."""
        lat = sum(p.numel() * 2 for p in self.model.pyramid.parameters())
        net = sum(p.numel() * 4 for n, p in self.model.named_parameters() if not n.startswith(("pyramid", "encoder")))
        return {"latent_bytes": lat, "weight_bytes": net}


# ---------------------------------------------------------------------------------------------------------
# <bsdf type="neural"><string name="filename" value="brass.radmat"/></bsdf>; optional
# <string name="sampling" value="cosine"/> replaces the learned sampler by cosine sampling (a baseline).

def _parse(r) -> dict:
    """Reads `filename` (resolved like every scene file) and checks the .radmat loads, so a bad file is reported
    at its XML element."""
    from ..errors import UserError

    path = r.ld.path(r, "filename")
    try:
        load_radmat(path)
    except UserError as e:
        raise r.ld.err(r.o.props["filename"].el, str(e)) from None
    return {"filename": str(path), "sampling": r.choice("sampling", "learned", ("learned", "cosine"))}


def _factory(bsdf, where: str) -> NeuralBSDF:
    return NeuralBSDF.load(Path(bsdf.params["filename"]), sampling=bsdf.params.get("sampling", "learned"))


def _register() -> None:
    from ..bsdfs.torch_bsdf import register_torch_bsdf

    register_torch_bsdf("neural", _factory, _parse)


_register()
